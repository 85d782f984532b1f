"""The flow interpreter, sans-I/O: feed it inputs and the time, get back actions and flow events.

    session = FlowSession(flow, context, now)
    outputs = session.start(now)                  # Play / Collect / ... and FlowEvents
    outputs = session.on_input(DigitPressed("1"), now)
    session.next_deadline                         # when to feed Timeout(), or None

The same session runs voice (prompts are Play, input is DTMF or speech) and chat (prompts are
SendMessage, input is TextReceived). Timers, audio, HTTP and flow loading are the edge's job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import lru_cache

from cloudcc.ivr.actions import (
    CallbackResult,
    CallerHungUp,
    CallWebhook,
    Collect,
    CollectMode,
    ContactContext,
    DigitPressed,
    DigitsCollected,
    FlowEvent,
    FlowEventKind,
    FlowLoaded,
    FlowLoadFailed,
    Hangup,
    Input,
    LoadFlow,
    NoInput,
    OfferCallback,
    Output,
    Play,
    PlaybackDone,
    RouteToQueue,
    SendMessage,
    SpeechRecognized,
    StartVoicemail,
    StopPlayback,
    TextReceived,
    Timeout,
    TransferExternal,
    TransferToAgent,
    WebhookOutcome,
    WebhookRequest,
    WebhookResult,
)
from cloudcc.ivr.exceptions import (
    ExpressionError,
    ExpressionEvaluationError,
    ScheduleError,
    SessionStateError,
)
from cloudcc.ivr.expressions import (
    Expression,
    Template,
    Value,
    parse_expression,
    parse_template,
    to_text,
)
from cloudcc.ivr.hours import evaluate_hours
from cloudcc.ivr.model import (
    BranchNode,
    Channel,
    CheckHoursNode,
    Flow,
    FlowNode,
    GetDigitsNode,
    HangupNode,
    MenuNode,
    MenuOption,
    OfferCallbackNode,
    PlayNode,
    Prompt,
    Schedule,
    SetLanguageNode,
    SetPriorityNode,
    SetSkillsNode,
    SetVariableNode,
    TransferAgentNode,
    TransferExternalNode,
    TransferFlowNode,
    TransferQueueNode,
    VoicemailNode,
    WebhookNode,
)
from cloudcc.ivr.validation import known_variables

DEFAULT_MAX_STEPS = 1000
DEFAULT_MAX_STEPS_PER_TURN = 100
CALLBACK_REPLY_TIMEOUT = 10.0
FLOW_LOAD_TIMEOUT = 10.0
WEBHOOK_GRACE = 2.0  # the edge reports a webhook timeout itself; this only guards a lost reply

DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "star": "*",
    "pound": "#",
    "hash": "#",
}

CollectNode = MenuNode | GetDigitsNode | OfferCallbackNode


class SessionState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    PLAYING = "playing"
    COLLECTING = "collecting"
    WAITING_WEBHOOK = "waiting_webhook"
    WAITING_CALLBACK = "waiting_callback"
    WAITING_FLOW = "waiting_flow"
    ENDED = "ended"


_WAITING = {
    SessionState.PLAYING,
    SessionState.COLLECTING,
    SessionState.WAITING_WEBHOOK,
    SessionState.WAITING_CALLBACK,
    SessionState.WAITING_FLOW,
}
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.NEW: frozenset({SessionState.RUNNING}),
    SessionState.RUNNING: frozenset(_WAITING | {SessionState.ENDED}),
    **{s: frozenset({SessionState.RUNNING, SessionState.ENDED}) for s in _WAITING},
    SessionState.ENDED: frozenset(),
}


@lru_cache(maxsize=4096)
def _expression(source: str) -> Expression:
    return parse_expression(source)


@lru_cache(maxsize=4096)
def _template(source: str) -> Template:
    return parse_template(source)


def normalize_words(text: str) -> str:
    """Lower-case words separated by single spaces, punctuation dropped."""
    return " ".join(re.sub(r"[^\w\s'*#-]", " ", text.lower()).split())


def words_to_digits(text: str) -> str | None:
    """``"one two three"`` or ``"1 2 3"`` → ``"123"``; None if anything else is in the text."""
    digits: list[str] = []
    for word in normalize_words(text).replace("-", " ").split():
        if word in DIGIT_WORDS:
            digits.append(DIGIT_WORDS[word])
        elif all(ch in "0123456789*#" for ch in word):
            digits.append(word)
        else:
            return None
    return "".join(digits) or None


class _Collection:
    """Bookkeeping of the input being collected at a menu / get-digits / callback node."""

    __slots__ = ("attempt", "buffer", "node", "waiting_play")

    def __init__(self, node: CollectNode) -> None:
        self.node = node
        self.attempt = 0
        self.buffer = ""
        self.waiting_play: int | None = None


class FlowSession:
    """One contact's walk through a flow (and any flows it jumps to)."""

    def __init__(
        self,
        flow: Flow,
        context: ContactContext,
        now: float,
        *,
        schedules: Mapping[str, Schedule] | None = None,
        variables: Mapping[str, Value] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_steps_per_turn: int = DEFAULT_MAX_STEPS_PER_TURN,
    ) -> None:
        self.flow = flow
        self.context = context
        self.created_at = now
        self.channel = context.channel
        self.language = context.language or flow.language
        self.skills: tuple[str, ...] = ()
        self.priority = 0
        self.schedules: Mapping[str, Schedule] = schedules or {}
        self.variables: dict[str, Value] = {}
        self._nodes: dict[str, FlowNode] = {}
        self._declare(flow)
        if variables:
            self.variables.update(variables)
        self.max_steps = max_steps
        self.max_steps_per_turn = max_steps_per_turn
        self.steps = 0
        self.state = SessionState.NEW
        self.history: list[tuple[SessionState, float]] = [(SessionState.NEW, now)]
        self.current: FlowNode | None = None
        self.end_reason: str | None = None
        self._deadline: float | None = None
        self._out: list[Output] = []
        self._turn_steps = 0
        self._play_seq = 0
        self._request_seq = 0
        self._collection: _Collection | None = None
        self._waiting_play: int | None = None
        self._after_play: Callable[[float], None] | None = None
        self._webhook: tuple[WebhookNode, str] | None = None
        self._callback_node: OfferCallbackNode | None = None
        self._jump: TransferFlowNode | None = None
        self._handling_error = False

    # --- public surface -------------------------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        """UNIX time at which the edge should feed ``Timeout()``; None when no timer runs."""
        return self._deadline

    @property
    def ended(self) -> bool:
        return self.state is SessionState.ENDED

    def start(self, now: float) -> list[Output]:
        """Enter the start node; returns the first actions."""
        if self.state is not SessionState.NEW:
            raise SessionStateError(f"session already started (state {self.state})")
        self._event(FlowEventKind.FLOW_STARTED, now, detail={"language": self.language})
        return self._run(self.flow.start, now)

    def on_input(self, event: Input, now: float) -> list[Output]:
        """Feed one input; returns the actions and events it causes (often none)."""
        if self.state is SessionState.NEW:
            raise SessionStateError("feed inputs only after start()")
        if self.state is SessionState.ENDED:
            return []
        self._out = []
        self._turn_steps = 0
        self._handling_error = False
        if isinstance(event, CallerHungUp):
            self._end(now, "caller_hangup", None)
        elif isinstance(event, Timeout):
            if self._deadline is not None and now >= self._deadline:
                self._on_timeout(now)
        elif self.state is SessionState.PLAYING:
            if isinstance(event, PlaybackDone) and event.play_id == self._waiting_play:
                self._waiting_play = None
                self._transition(SessionState.RUNNING, now)
                after, self._after_play = self._after_play, None
                if after is not None:
                    after(now)
        elif self.state is SessionState.COLLECTING:
            self._on_collect_input(event, now)
        elif self.state is SessionState.WAITING_WEBHOOK and isinstance(event, WebhookResult):
            self._on_webhook_result(event, now)
        elif self.state is SessionState.WAITING_CALLBACK and isinstance(event, CallbackResult):
            self._on_callback_result(event, now)
        elif self.state is SessionState.WAITING_FLOW and isinstance(
            event, FlowLoaded | FlowLoadFailed
        ):
            self._on_flow_loaded(event, now)
        out, self._out = self._out, []
        return out

    # --- state machine --------------------------------------------------------------------

    def _transition(self, new: SessionState, now: float) -> None:
        if new is self.state:
            return
        if new not in TRANSITIONS[self.state]:
            raise SessionStateError(f"illegal session transition {self.state} -> {new}")
        self.state = new
        self.history.append((new, now))

    def _wait(self, state: SessionState, now: float, deadline: float | None) -> None:
        self._transition(state, now)
        self._deadline = deadline

    def _end(self, now: float, reason: str, action: Output | None) -> None:
        if action is not None:
            self._out.append(action)
        self.end_reason = reason
        node = self.current
        self._event(FlowEventKind.FLOW_ENDED, now, node, {"reason": reason})
        self._deadline = None
        self._collection = None
        self._transition(SessionState.ENDED, now)

    # --- events and scope -----------------------------------------------------------------

    def _event(
        self,
        kind: FlowEventKind,
        now: float,
        node: FlowNode | None = None,
        detail: Mapping[str, Value] | None = None,
    ) -> None:
        self._out.append(
            FlowEvent(
                kind=kind,
                at=now,
                tenant_id=self.context.tenant_id,
                contact_id=self.context.contact_id,
                flow_id=self.flow.id,
                node_id=node.id if node else None,
                node_type=node.type if node else None,
                detail=detail or {},
            )
        )

    def _declare(self, flow: Flow) -> None:
        self._nodes = flow.node_map()
        for name in known_variables(flow):
            self.variables.setdefault(name, None)
        for name, decl in flow.variables.items():
            if self.variables.get(name) is None:
                self.variables[name] = decl.default

    def scope(self) -> dict[str, Value]:
        """The names expressions see: flow variables, ``contact`` and ``routing``."""
        scope: dict[str, Value] = dict(self.variables)
        scope["contact"] = self.context.as_value()
        scope["routing"] = {
            "language": self.language,
            "skills": list(self.skills),
            "priority": self.priority,
        }
        return scope

    def _set(self, name: str, value: Value, now: float, node: FlowNode) -> None:
        self.variables[name] = value
        self._event(FlowEventKind.VARIABLE_SET, now, node, {"variable": name, "value": value})

    # --- running nodes --------------------------------------------------------------------

    def _run(self, node_id: str, now: float) -> list[Output]:
        self._transition(SessionState.RUNNING, now)
        self._goto(node_id, now)
        out, self._out = self._out, []
        return out

    def _goto(self, node_id: str, now: float) -> None:
        """Enter nodes until one waits or the flow ends (iterative: no recursion per node)."""
        next_id: str | None = node_id
        while next_id is not None and self.state is SessionState.RUNNING:
            node = self._nodes.get(next_id)
            if node is None:
                next_id = self._fail(now, f"node {next_id!r} does not exist")
                continue
            self.steps += 1
            self._turn_steps += 1
            if self.steps > self.max_steps or self._turn_steps > self.max_steps_per_turn:
                self._event(
                    FlowEventKind.FLOW_ERROR,
                    now,
                    node,
                    {"error": "step budget exceeded", "steps": self.steps},
                )
                self._end(now, "step_budget_exceeded", Hangup("step_budget_exceeded"))
                return
            self.current = node
            self._event(FlowEventKind.NODE_ENTERED, now, node)
            try:
                next_id = self._enter(node, now)
            except (ExpressionError, ScheduleError) as exc:
                next_id = self._fail(now, str(exc))

    def _leave(self, node: FlowNode, output: str, now: float) -> str | None:
        """Emit node-left and return the target of ``output`` (with documented fallbacks)."""
        targets = node.output_targets()
        target = targets.get(output)
        fallback = {"holiday": "closed", "timeout": "error", "failed": "declined"}
        if target is None and output in fallback:
            target = targets.get(fallback[output])
        self._event(FlowEventKind.NODE_LEFT, now, node, {"output": output})
        if target is None:
            return self._fail(now, f"output {output!r} of node {node.id!r} is not connected")
        return target

    def _continue(self, node: FlowNode, output: str, now: float) -> None:
        """Leave a waiting node and run on from its output."""
        self._deadline = None
        self._transition(SessionState.RUNNING, now)
        target = self._leave(node, output, now)
        if target is not None:
            self._goto(target, now)

    def _fail(self, now: float, message: str) -> str | None:
        """Report a runtime error; continue at the flow's on_error node once, else hang up."""
        self._event(FlowEventKind.FLOW_ERROR, now, self.current, {"error": message})
        if self.flow.on_error is not None and not self._handling_error:
            self._handling_error = True
            return self.flow.on_error
        self._end(now, "flow_error", Hangup("flow_error"))
        return None

    def _enter(self, node: FlowNode, now: float) -> str | None:
        """Do what ``node`` does; return the next node id, or None when waiting or ended."""
        if isinstance(node, PlayNode):
            return self._enter_play(node, now)
        if isinstance(node, MenuNode | GetDigitsNode | OfferCallbackNode):
            self._collection = _Collection(node)
            self._start_attempt(now, None)
            return None
        if isinstance(node, SetVariableNode):
            for assignment in node.assignments:
                value = _expression(assignment.value).evaluate(self.scope())
                self._set(assignment.variable, value, now, node)
            return self._leave(node, "next", now)
        if isinstance(node, BranchNode):
            scope = self.scope()
            for i, condition in enumerate(node.conditions):
                if _expression(condition.when).evaluate(scope):
                    return self._leave(node, f"condition:{i}", now)
            return self._leave(node, "default", now)
        if isinstance(node, CheckHoursNode):
            schedule = self.flow.schedules.get(node.schedule) or self.schedules.get(node.schedule)
            if schedule is None:
                return self._fail(now, f"schedule {node.schedule!r} is not defined")
            decision = evaluate_hours(schedule, now, self.context.timezone)
            return self._leave(node, decision.status.value, now)
        if isinstance(node, WebhookNode):
            return self._enter_webhook(node, now)
        if isinstance(node, SetLanguageNode):
            self.language = node.language
            return self._leave(node, "next", now)
        if isinstance(node, SetSkillsNode):
            if node.mode == "replace":
                self.skills = tuple(dict.fromkeys(node.skills))
            elif node.mode == "add":
                self.skills = tuple(dict.fromkeys((*self.skills, *node.skills)))
            else:
                self.skills = tuple(s for s in self.skills if s not in node.skills)
            return self._leave(node, "next", now)
        if isinstance(node, SetPriorityNode):
            value = _expression(node.priority).evaluate(self.scope())
            if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
                raise ExpressionEvaluationError(
                    f"priority must be a number, got {to_text(value)!r}", node.priority
                )
            self.priority = max(0, min(100, round(value)))
            return self._leave(node, "next", now)
        if isinstance(node, TransferQueueNode):
            action = RouteToQueue(
                queue=node.queue,
                skills=self.skills,
                priority=self.priority,
                language=self.language,
                music=node.music,
                wait_announcement=node.wait_announcement,
                announce_every=node.announce_every,
            )
            self._end(now, f"queue:{node.queue}", action)
            return None
        if isinstance(node, TransferAgentNode):
            agent = _expression(node.agent).evaluate(self.scope())
            if not isinstance(agent, str) or not agent:
                return self._fail(now, f"agent expression gave {to_text(agent)!r}, not an id")
            self._end(
                now,
                f"agent:{agent}",
                TransferToAgent(agent, self.skills, self.priority, self.language),
            )
            return None
        if isinstance(node, TransferExternalNode):
            number = _template(node.number).render(self.scope()).strip()
            if not number:
                return self._fail(now, "external number is empty")
            self._end(now, f"external:{number}", TransferExternal(number, node.caller_id))
            return None
        if isinstance(node, TransferFlowNode):
            self._jump = node
            self._out.append(LoadFlow(node.flow))
            self._wait(SessionState.WAITING_FLOW, now, now + FLOW_LOAD_TIMEOUT)
            return None
        if isinstance(node, VoicemailNode):
            voicemail = StartVoicemail(node.mailbox, node.max_seconds, self.language)
            self._say_then_end(node.prompt, now, f"voicemail:{node.mailbox}", voicemail)
            return None
        assert isinstance(node, HangupNode)
        self._say_then_end(node.prompt, now, node.reason, Hangup(node.reason))
        return None

    # --- prompts --------------------------------------------------------------------------

    def _say(self, prompt: Prompt | None, barge_in: bool) -> int | None:
        """Emit the prompt; returns the play id to wait for (voice), or None."""
        if prompt is None:
            return None
        source = prompt.text_for(self.language, self.flow.language)
        text = _template(source).render(self.scope()) if source is not None else None
        if self.channel is Channel.CHAT:
            if text:
                self._out.append(SendMessage(text))
            return None
        if text is None and prompt.audio is None:
            return None
        self._play_seq += 1
        self._out.append(Play(self._play_seq, text, prompt.audio, self.language, barge_in))
        return self._play_seq

    def _enter_play(self, node: PlayNode, now: float) -> str | None:
        play_id = self._say(node.prompt, barge_in=False)
        if play_id is None:
            return self._leave(node, "next", now)
        self._waiting_play = play_id
        self._after_play = lambda at: self._continue(node, "next", at)
        self._wait(SessionState.PLAYING, now, None)
        return None

    def _say_then_end(self, prompt: Prompt | None, now: float, reason: str, action: Output) -> None:
        play_id = self._say(prompt, barge_in=False)
        if play_id is None:
            self._end(now, reason, action)
            return
        self._waiting_play = play_id
        self._after_play = lambda at: self._end(at, reason, action)
        self._wait(SessionState.PLAYING, now, None)

    # --- collecting input -----------------------------------------------------------------

    def _start_attempt(self, now: float, failure_prompt: Prompt | None) -> None:
        col = self._collection
        assert col is not None
        node = col.node
        col.buffer = ""
        main = node.prompt if col.attempt == 0 else (node.reprompt or node.prompt)
        play_ids = [self._say(p, node.barge_in) for p in (failure_prompt, main)]
        waiting = [p for p in play_ids if p is not None]
        col.waiting_play = waiting[-1] if waiting else None
        self._out.append(self._collect_spec(node, col.attempt))
        if self.channel is Channel.CHAT:
            deadline: float | None = now + self.flow.chat_input_timeout
        else:
            deadline = None if col.waiting_play is not None else now + node.timeout
        self._wait(SessionState.COLLECTING, now, deadline)

    def _collect_spec(self, node: CollectNode, attempt: int) -> Collect:
        mode = CollectMode.TEXT if self.channel is Channel.CHAT else None
        speech = node.speech and self.channel is Channel.VOICE
        if isinstance(node, GetDigitsNode):
            return Collect(
                node_id=node.id,
                mode=mode or CollectMode.DIGITS,
                attempt=attempt,
                digits_grammar=speech,
                min_digits=node.min_digits,
                max_digits=node.max_digits,
                terminator=node.terminator,
                timeout=node.timeout,
                inter_digit_timeout=node.inter_digit_timeout,
                barge_in=node.barge_in,
                language=self.language,
            )
        if isinstance(node, MenuNode):
            keys = tuple(o.key for o in node.options if o.key is not None)
            words = tuple(dict.fromkeys(w.lower() for o in node.options for w in o.keywords))
        else:
            keys = tuple(k for k in (node.accept_key, node.decline_key) if k is not None)
            spoken = (*node.accept_words, *node.decline_words)
            words = tuple(dict.fromkeys(w.lower() for w in spoken))
        return Collect(
            node_id=node.id,
            mode=mode or CollectMode.MENU,
            attempt=attempt,
            dtmf_keys=keys,
            grammar=words if speech else (),
            timeout=node.timeout,
            barge_in=node.barge_in,
            language=self.language,
        )

    def _barge(self, col: _Collection) -> None:
        if col.waiting_play is not None:
            self._out.append(StopPlayback(col.waiting_play))
            col.waiting_play = None

    def _on_collect_input(self, event: Input, now: float) -> None:
        col = self._collection
        assert col is not None
        node = col.node
        if isinstance(event, PlaybackDone):
            if event.play_id == col.waiting_play:
                col.waiting_play = None
                if not col.buffer:
                    self._deadline = now + node.timeout
            return
        if isinstance(event, NoInput):
            self._failed(col, "no_input", now)
            return
        if isinstance(event, TextReceived):
            self._answer(col, event.text, "text", 1.0, now)
            return
        if self.channel is not Channel.VOICE:
            return
        if col.waiting_play is not None and not node.barge_in:
            return  # the prompt must finish first; input during it is discarded
        if isinstance(event, DigitPressed):
            self._barge(col)
            self._on_digit(col, event.digit, now)
        elif isinstance(event, DigitsCollected):
            self._barge(col)
            self._answer(col, event.digits, "dtmf", 1.0, now)
        elif isinstance(event, SpeechRecognized) and node.speech:
            self._barge(col)
            self._answer(col, event.text, "speech", event.confidence, now)

    def _on_digit(self, col: _Collection, digit: str, now: float) -> None:
        node = col.node
        if not isinstance(node, GetDigitsNode):
            self._answer(col, digit, "dtmf", 1.0, now)
            return
        if len(digit) != 1 or digit not in "0123456789*#":
            return  # RFC 4733 events A-D and flash are not part of a digit string
        if node.terminator is not None and digit == node.terminator:
            self._finish_digits(col, col.buffer, "dtmf", 1.0, now)
            return
        col.buffer += digit
        if len(col.buffer) >= node.max_digits:
            self._finish_digits(col, col.buffer, "dtmf", 1.0, now)
        else:
            self._deadline = now + node.inter_digit_timeout

    def _on_timeout(self, now: float) -> None:
        state = self.state
        self._deadline = None
        if state is SessionState.COLLECTING:
            col = self._collection
            assert col is not None
            if col.buffer and isinstance(col.node, GetDigitsNode):
                self._finish_digits(col, col.buffer, "dtmf", 1.0, now)
            else:
                self._failed(col, "no_input", now)
        elif state is SessionState.WAITING_WEBHOOK:
            assert self._webhook is not None
            node, _ = self._webhook
            self._webhook = None
            self._continue(node, "timeout", now)
        elif state is SessionState.WAITING_CALLBACK:
            assert self._callback_node is not None
            self._continue(self._callback_node, "failed", now)
        elif state is SessionState.WAITING_FLOW:
            flow_id = self._jump.flow if self._jump else ""
            self._on_flow_loaded(FlowLoadFailed(flow_id, "timeout"), now)

    def _answer(self, col: _Collection, raw: str, mode: str, confidence: float, now: float) -> None:
        node = col.node
        if isinstance(node, GetDigitsNode):
            digits = words_to_digits(raw)
            if digits is not None and node.terminator and digits.endswith(node.terminator):
                digits = digits[: -len(node.terminator)]
            if digits is None or not all(ch in "0123456789*#" for ch in digits):
                self._failed(col, "invalid", now, raw)
            else:
                self._finish_digits(col, digits, mode, confidence, now)
            return
        if isinstance(node, MenuNode) and mode == "speech" and confidence < node.min_confidence:
            self._failed(col, "invalid", now, raw)
            return
        if isinstance(node, MenuNode):
            option = _match_option(node.options, raw)
            if option is None:
                self._failed(col, "invalid", now, raw)
                return
            self._collected(col, mode, option.stored_value(), confidence, now)
            if node.variable:
                self._set(node.variable, option.stored_value(), now, node)
            self._continue(node, option.output_name(), now)
            return
        assert isinstance(node, OfferCallbackNode)
        choice = _match_yes_no(node, raw)
        if choice is None:
            self._failed(col, "invalid", now, raw)
            return
        self._collected(col, mode, "accepted" if choice else "declined", confidence, now)
        if not choice:
            self._continue(node, "declined", now)
            return
        number = _expression(node.number).evaluate(self.scope())
        if not isinstance(number, str) or not number.strip():
            self._continue(node, "failed", now)
            return
        self._callback_node = node
        self._collection = None
        self._out.append(
            OfferCallback(node.queue, number.strip(), self.skills, self.priority, self.language)
        )
        self._transition(SessionState.RUNNING, now)
        self._wait(SessionState.WAITING_CALLBACK, now, now + CALLBACK_REPLY_TIMEOUT)

    def _finish_digits(
        self, col: _Collection, digits: str, mode: str, confidence: float, now: float
    ) -> None:
        node = col.node
        assert isinstance(node, GetDigitsNode)
        if not node.min_digits <= len(digits) <= node.max_digits:
            self._failed(col, "invalid", now, digits)
            return
        self._collected(col, mode, digits, confidence, now)
        if node.variable:
            self._set(node.variable, digits, now, node)
        self._continue(node, "success", now)

    def _collected(
        self, col: _Collection, mode: str, value: str, confidence: float, now: float
    ) -> None:
        self._event(
            FlowEventKind.INPUT_COLLECTED,
            now,
            col.node,
            {"mode": mode, "value": value, "confidence": confidence, "attempt": col.attempt},
        )
        self._collection = None

    def _failed(self, col: _Collection, kind: str, now: float, heard: str | None = None) -> None:
        node = col.node
        detail: dict[str, Value] = {"reason": kind, "attempt": col.attempt}
        if heard is not None:
            detail["heard"] = heard
        self._event(FlowEventKind.INPUT_FAILED, now, node, detail)
        self._barge(col)
        if col.attempt < node.retries:
            col.attempt += 1
            failure_prompt = node.no_input_prompt if kind == "no_input" else node.invalid_prompt
            self._transition(SessionState.RUNNING, now)
            try:
                self._start_attempt(now, failure_prompt)
            except ExpressionError as exc:
                self._goto_after_failure(now, str(exc))
            return
        self._collection = None
        self._continue(node, "declined" if isinstance(node, OfferCallbackNode) else kind, now)

    def _goto_after_failure(self, now: float, message: str) -> None:
        target = self._fail(now, message)
        if target is not None:
            self._goto(target, now)

    # --- webhook, callback, flow jump -----------------------------------------------------

    def _enter_webhook(self, node: WebhookNode, now: float) -> str | None:
        scope = self.scope()
        parameters = {n: _expression(src).evaluate(scope) for n, src in node.parameters.items()}
        self._request_seq += 1
        request_id = f"{self.context.contact_id}-{self._request_seq}"
        body: dict[str, Value] = {
            "flow": self.flow.id,
            "node": node.id,
            "contact": {
                "id": self.context.contact_id,
                "tenant": self.context.tenant_id,
                "channel": self.channel.value,
                "caller": self.context.caller,
                "dialed": self.context.dialed,
            },
            "parameters": parameters,
        }
        request = WebhookRequest(
            request_id=request_id,
            url=node.url,
            method=node.method,
            body=body,
            timeout=node.timeout,
            secret=node.secret,
            tenant_id=self.context.tenant_id,
            contact_id=self.context.contact_id,
        )
        self._webhook = (node, request_id)
        self._out.append(CallWebhook(request))
        self._wait(SessionState.WAITING_WEBHOOK, now, now + node.timeout + WEBHOOK_GRACE)
        return None

    def _on_webhook_result(self, result: WebhookResult, now: float) -> None:
        if self._webhook is None or result.request_id != self._webhook[1]:
            return  # a late answer to a request we already gave up on
        node, _ = self._webhook
        self._webhook = None
        detail: dict[str, Value] = {"outcome": result.outcome.value, "status": result.status_code}
        if result.error:
            detail["error"] = result.error
        if result.outcome is WebhookOutcome.SUCCESS:
            if node.result_variable:
                self.variables[node.result_variable] = dict(result.data or {})
            self._event(FlowEventKind.VARIABLE_SET, now, node, detail)
        self._continue(node, result.outcome.value, now)

    def _on_callback_result(self, result: CallbackResult, now: float) -> None:
        node = self._callback_node
        assert node is not None
        self._callback_node = None
        self._continue(node, "scheduled" if result.scheduled else "failed", now)

    def _on_flow_loaded(self, event: FlowLoaded | FlowLoadFailed, now: float) -> None:
        node = self._jump
        assert node is not None
        self._jump = None
        self._deadline = None
        self._transition(SessionState.RUNNING, now)
        if isinstance(event, FlowLoaded) and event.flow.id == node.flow:
            self._event(FlowEventKind.NODE_LEFT, now, node, {"output": "jump", "to": node.flow})
            self.flow = event.flow
            self._declare(event.flow)
            self._event(FlowEventKind.FLOW_STARTED, now, detail={"from_node": node.id})
            self._goto(event.flow.start, now)
            return
        reason = event.reason if isinstance(event, FlowLoadFailed) else "wrong flow loaded"
        self._event(FlowEventKind.FLOW_ERROR, now, node, {"error": f"cannot load flow: {reason}"})
        if node.outputs.error is not None:
            self._continue(node, "error", now)
        else:
            self._goto_after_failure(now, f"flow {node.flow!r} could not be loaded")


def _match_option(options: list[MenuOption], raw: str) -> MenuOption | None:
    """A DTMF key, a spoken/typed key word ("one"), or exactly one option's keyword."""
    text = normalize_words(raw)
    key = DIGIT_WORDS.get(text, text)
    for option in options:
        if option.key is not None and option.key == key:
            return option
    padded = f" {text} "
    matches = [
        option
        for option in options
        if any(f" {normalize_words(word)} " in padded for word in option.keywords)
    ]
    return matches[0] if len(matches) == 1 else None


def _match_yes_no(node: OfferCallbackNode, raw: str) -> bool | None:
    text = normalize_words(raw)
    key = DIGIT_WORDS.get(text, text)
    if key == node.accept_key:
        return True
    if node.decline_key is not None and key == node.decline_key:
        return False
    padded = f" {text} "
    yes = any(f" {normalize_words(w)} " in padded for w in node.accept_words)
    no = any(f" {normalize_words(w)} " in padded for w in node.decline_words)
    return yes if yes != no else None


def render_wait_announcement(template: str, position: int, wait_seconds: float, queue: str) -> str:
    """Fill a queue's wait announcement (``{position}``, ``{wait_minutes}``) for the edge."""
    minutes = max(1, round(wait_seconds / 60))
    scope: dict[str, Value] = {
        "position": position,
        "wait_seconds": round(wait_seconds),
        "wait_minutes": minutes,
        "queue": queue,
    }
    return _template(template).render(scope)
