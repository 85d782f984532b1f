"""Flow validation: every finding names the node (and field) and says why the flow cannot run.

Rules: unique ids; start/on_error exist; every required output connected and every target
exists; every node reachable from the start; every node has a path to an exit (a terminal node
or a jump to another flow); every cycle contains a node that waits for the caller (or a
webhook); expressions and templates parse; names used are declared; prompts present (and text
for chat); schedules well-formed and known; menus and digit settings coherent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from cloudcc.ivr.caller_id import own_caller_id
from cloudcc.ivr.exceptions import (
    ExpressionSyntaxError,
    FlowProblem,
    FlowValidationError,
    ScheduleError,
)
from cloudcc.ivr.expressions import parse_expression, parse_template
from cloudcc.ivr.hours import check_schedule
from cloudcc.ivr.model import (
    RESERVED_NAMES,
    Channel,
    CheckHoursNode,
    Flow,
    FlowNode,
    GetDigitsNode,
    HangupNode,
    MenuNode,
    OfferCallbackNode,
    PlayNode,
    Prompt,
    SetVariableNode,
    TransferExternalNode,
    TransferFlowNode,
    TransferQueueNode,
    VoicemailNode,
    WebhookNode,
)

_Add = Callable[[FlowProblem], None]
QUEUE_ANNOUNCEMENT_NAMES = frozenset({"position", "wait_minutes", "wait_seconds", "queue"})
BUILTIN_ROOTS = frozenset({"contact", "routing"})


class Rule(StrEnum):
    DUPLICATE_ID = "duplicate-id"
    UNKNOWN_NODE = "unknown-node"
    DANGLING_OUTPUT = "dangling-output"
    UNCONNECTED_OUTPUT = "unconnected-output"
    UNREACHABLE = "unreachable"
    NO_EXIT = "no-exit"
    LOOP_WITHOUT_INPUT = "loop-without-input"
    BAD_EXPRESSION = "bad-expression"
    UNKNOWN_VARIABLE = "unknown-variable"
    RESERVED_NAME = "reserved-name"
    MISSING_PROMPT = "missing-prompt"
    CHAT_NEEDS_TEXT = "chat-needs-text"
    BAD_SCHEDULE = "bad-schedule"
    UNKNOWN_SCHEDULE = "unknown-schedule"
    BAD_MENU = "bad-menu"
    BAD_DIGITS = "bad-digits"
    UNKNOWN_FLOW = "unknown-flow"
    CALLER_ID = "caller-id"


def is_exit(node: FlowNode) -> bool:
    """A node that ends this flow: terminal actions and jumps to another flow."""
    return node.TERMINAL or isinstance(node, TransferFlowNode)


def known_variables(flow: Flow) -> frozenset[str]:
    """Names a flow may read: declared variables and everything a node stores into."""
    names = set(flow.variables)
    for node in flow.nodes:
        if isinstance(node, GetDigitsNode | MenuNode) and node.variable:
            names.add(node.variable)
        elif isinstance(node, SetVariableNode):
            names.update(a.variable for a in node.assignments)
        elif isinstance(node, WebhookNode) and node.result_variable:
            names.add(node.result_variable)
    return frozenset(names)


def validate_flow(
    flow: Flow,
    *,
    known_flows: Iterable[str] | None = None,
    known_schedules: Iterable[str] = (),
    known_caller_ids: Iterable[str] | None = None,
) -> list[FlowProblem]:
    """Every problem in ``flow`` (empty when it can be published).

    ``known_flows``: ids the tenant has (checked for transfer_flow when given);
    ``known_schedules``: tenant-level schedule names usable besides the flow's own;
    ``known_caller_ids``: the tenant's numbers and trunk caller IDs (checked for
    transfer_external's caller_id when given).
    """
    problems: list[FlowProblem] = []
    add = problems.append
    ids: dict[str, FlowNode] = {}
    for node in flow.nodes:
        if node.id in ids:
            add(FlowProblem(Rule.DUPLICATE_ID, "another node has the same id", node.id))
        ids[node.id] = node

    if flow.start not in ids:
        add(
            FlowProblem(
                Rule.UNKNOWN_NODE, f"start node {flow.start!r} does not exist", field="start"
            )
        )
    if flow.on_error is not None and flow.on_error not in ids:
        message = f"on_error node {flow.on_error!r} does not exist"
        add(FlowProblem(Rule.UNKNOWN_NODE, message, field="on_error"))
    for name in flow.variables:
        if name in RESERVED_NAMES:
            message = f"variable name {name!r} is reserved"
            add(FlowProblem(Rule.RESERVED_NAME, message, field="variables"))

    graph: dict[str, list[str]] = {}
    for node in flow.nodes:
        targets: list[str] = []
        optional = node.optional_outputs()
        for output, target in node.output_targets().items():
            if target is None:
                if output not in optional:
                    add(
                        FlowProblem(
                            Rule.UNCONNECTED_OUTPUT,
                            f"output {output!r} is not connected to a node",
                            node.id,
                            output,
                        )
                    )
            elif target not in ids:
                add(
                    FlowProblem(
                        Rule.DANGLING_OUTPUT,
                        f"output {output!r} leads to {target!r}, which does not exist",
                        node.id,
                        output,
                    )
                )
            else:
                targets.append(target)
        graph[node.id] = targets

    _check_reachability(flow, ids, graph, add)
    _check_exits(ids, graph, add)
    _check_cycles(ids, graph, add)
    _check_expressions(flow, add)
    _check_nodes(flow, set(known_schedules), None if known_flows is None else set(known_flows), add)
    if known_caller_ids is not None:
        _check_caller_ids(flow, frozenset(known_caller_ids), add)
    return problems


def ensure_valid(
    flow: Flow,
    *,
    known_flows: Iterable[str] | None = None,
    known_schedules: Iterable[str] = (),
    known_caller_ids: Iterable[str] | None = None,
) -> Flow:
    """Return ``flow`` unchanged, or raise FlowValidationError listing every problem."""
    problems = validate_flow(
        flow,
        known_flows=known_flows,
        known_schedules=known_schedules,
        known_caller_ids=known_caller_ids,
    )
    if problems:
        raise FlowValidationError(problems)
    return flow


def _roots(flow: Flow, ids: dict[str, FlowNode]) -> list[str]:
    return [r for r in (flow.start, flow.on_error) if r is not None and r in ids]


def _check_reachability(
    flow: Flow, ids: dict[str, FlowNode], graph: dict[str, list[str]], add: _Add
) -> None:
    seen: set[str] = set()
    stack = _roots(flow, ids)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(graph.get(current, []))
    for node_id in ids:
        if node_id not in seen:
            message = f"no path leads here from start {flow.start!r}"
            add(FlowProblem(Rule.UNREACHABLE, message, node_id))


def _check_exits(ids: dict[str, FlowNode], graph: dict[str, list[str]], add: _Add) -> None:
    reverse: dict[str, list[str]] = {node_id: [] for node_id in ids}
    for source, targets in graph.items():
        for target in targets:
            reverse[target].append(source)
    can_exit = {node_id for node_id, node in ids.items() if is_exit(node)}
    stack = list(can_exit)
    while stack:
        for source in reverse[stack.pop()]:
            if source not in can_exit:
                can_exit.add(source)
                stack.append(source)
    for node_id in ids:
        if node_id not in can_exit:
            add(
                FlowProblem(
                    Rule.NO_EXIT,
                    "no path from here reaches a hang-up, transfer, voicemail or other exit",
                    node_id,
                )
            )


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (flows may be long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph.get(node, [])
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _check_cycles(ids: dict[str, FlowNode], graph: dict[str, list[str]], add: _Add) -> None:
    for component in _strongly_connected(graph):
        looping = len(component) > 1 or component[0] in graph.get(component[0], [])
        if not looping:
            continue
        if any(ids[n].WAITS_FOR_CALLER for n in component):
            continue
        members = sorted(component, key=list(ids).index)
        add(
            FlowProblem(
                Rule.LOOP_WITHOUT_INPUT,
                "loop through "
                + " -> ".join(repr(m) for m in members)
                + " never waits for the caller, so it would spin forever",
                members[0],
            )
        )


def _check_expressions(flow: Flow, add: _Add) -> None:
    known = known_variables(flow) | BUILTIN_ROOTS
    for node in flow.nodes:
        extra = QUEUE_ANNOUNCEMENT_NAMES if isinstance(node, TransferQueueNode) else frozenset()
        sources: list[tuple[str, str, bool]] = [(f, s, False) for f, s in node.expressions()]
        sources += [(f, s, True) for f, s in node.templates()]
        if isinstance(node, TransferQueueNode) and node.wait_announcement:
            sources.append(("wait_announcement", node.wait_announcement, True))
        for field, source, is_template in sources:
            try:
                names = (parse_template(source) if is_template else parse_expression(source)).names
            except ExpressionSyntaxError as exc:
                add(FlowProblem(Rule.BAD_EXPRESSION, exc.reason + _at(exc), node.id, field))
                continue
            for name in sorted(names - known - extra):
                add(
                    FlowProblem(
                        Rule.UNKNOWN_VARIABLE,
                        f"{name!r} is not a declared variable, nor stored by any node",
                        node.id,
                        field,
                    )
                )


def _at(exc: ExpressionSyntaxError) -> str:
    if exc.position is None:
        return ""
    return f" (at position {exc.position} of {exc.expression!r})"


def _check_nodes(
    flow: Flow, known_schedules: set[str], known_flows: set[str] | None, add: _Add
) -> None:
    chat = Channel.CHAT in flow.channels
    for name, schedule in flow.schedules.items():
        try:
            check_schedule(schedule)
        except ScheduleError as exc:
            add(FlowProblem(Rule.BAD_SCHEDULE, f"schedule {name!r}: {exc}", None, "schedules"))
    for node in flow.nodes:
        needs_prompt = isinstance(node, PlayNode | MenuNode | GetDigitsNode | OfferCallbackNode)
        if needs_prompt and _is_empty(getattr(node, "prompt", None)):
            add(FlowProblem(Rule.MISSING_PROMPT, "the node has nothing to say", node.id, "prompt"))
        if chat:
            for field, prompt in node.prompts():
                if prompt.text is None and prompt.audio is not None:
                    add(
                        FlowProblem(
                            Rule.CHAT_NEEDS_TEXT,
                            "the flow serves chat, so an audio-only prompt needs text too",
                            node.id,
                            field,
                        )
                    )
        if (
            isinstance(node, CheckHoursNode)
            and node.schedule not in flow.schedules
            and node.schedule not in known_schedules
        ):
            add(
                FlowProblem(
                    Rule.UNKNOWN_SCHEDULE,
                    f"schedule {node.schedule!r} is neither in the flow nor the tenant's",
                    node.id,
                    "schedule",
                )
            )
        if isinstance(node, GetDigitsNode) and node.min_digits > node.max_digits:
            add(
                FlowProblem(
                    Rule.BAD_DIGITS,
                    f"min_digits {node.min_digits} exceeds max_digits {node.max_digits}",
                    node.id,
                    "min_digits",
                )
            )
        if isinstance(node, MenuNode):
            _check_menu(node, add)
        if isinstance(node, OfferCallbackNode) and node.accept_key == node.decline_key:
            message = "accept and decline use the same key"
            add(FlowProblem(Rule.BAD_MENU, message, node.id, "decline_key"))
        if (
            isinstance(node, TransferFlowNode)
            and known_flows is not None
            and node.flow not in known_flows
        ):
            message = f"flow {node.flow!r} does not exist"
            add(FlowProblem(Rule.UNKNOWN_FLOW, message, node.id, "flow"))
        if (
            isinstance(node, VoicemailNode | HangupNode)
            and node.prompt is not None
            and _is_empty(node.prompt)
        ):
            add(FlowProblem(Rule.MISSING_PROMPT, "the prompt is empty", node.id, "prompt"))


def _check_caller_ids(flow: Flow, own: frozenset[str], add: _Add) -> None:
    """A call out presents one of the tenant's own numbers or the caller's (no spoofing)."""
    for node in flow.nodes:
        if (
            isinstance(node, TransferExternalNode)
            and node.caller_id is not None
            and not own_caller_id(node.caller_id, own)
        ):
            message = (
                f"caller ID {node.caller_id!r} is none of the tenant's numbers or trunk caller "
                "IDs: use one of them, 'caller' to keep the caller's number, or none for the "
                "trunk's caller ID"
            )
            add(FlowProblem(Rule.CALLER_ID, message, node.id, "caller_id"))


def _is_empty(prompt: Prompt | None) -> bool:
    return prompt is None or (not prompt.text and prompt.audio is None)


def _check_menu(node: MenuNode, add: _Add) -> None:
    keys: set[str] = set()
    words: set[str] = set()
    for i, option in enumerate(node.options):
        field = f"options[{i}]"
        if option.key is None and not option.keywords:
            add(FlowProblem(Rule.BAD_MENU, "an option needs a key or a keyword", node.id, field))
        if option.key is not None:
            if option.key in keys:
                add(FlowProblem(Rule.BAD_MENU, f"key {option.key!r} is used twice", node.id, field))
            keys.add(option.key)
        for word in option.keywords:
            normal = " ".join(word.lower().split())
            if normal in words:
                add(FlowProblem(Rule.BAD_MENU, f"keyword {word!r} is used twice", node.id, field))
            words.add(normal)
