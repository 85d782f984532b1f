"""Flow documents: a flow is a graph of typed nodes with named, typed outputs (pydantic v2 models).

``parse_flow`` reads a JSON document; ``flow_json_schema`` exports the JSON Schema that flow
editors and the admin API publish. Semantic checks (reachability, loops, expressions) live in
``validation.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from cloudcc.ivr.exceptions import FlowDocumentError

FORMAT: Literal["cloudcc.flow/1"] = "cloudcc.flow/1"
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
DTMF_KEYS = "0123456789*#"

NodeId = Annotated[str, Field(pattern=ID_PATTERN)]
VariableName = Annotated[str, Field(pattern=NAME_PATTERN)]
ExpressionText = Annotated[str, Field(min_length=1, max_length=2000)]
Seconds = Annotated[float, Field(gt=0, le=3600)]

RESERVED_NAMES = frozenset({"contact", "routing", "input", "true", "false", "null"})


class Channel(StrEnum):
    VOICE = "voice"
    CHAT = "chat"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompt(_Model):
    """What to say: TTS text (a template with ``{expression}`` holes, optionally per language),
    or the id of an uploaded audio file (voice) with ``text`` as the chat/TTS fallback."""

    text: str | dict[str, str] | None = None
    audio: str | None = Field(default=None, min_length=1, max_length=200)

    def text_for(self, language: str, default_language: str) -> str | None:
        """The text in ``language``, falling back to the base language then the flow's."""
        if self.text is None or isinstance(self.text, str):
            return self.text
        for candidate in (language, language.split("-")[0], default_language):
            if candidate in self.text:
                return self.text[candidate]
        return next(iter(self.text.values()), None)

    def texts(self) -> Iterator[tuple[str, str]]:
        """Every (field label, template) pair, for validation."""
        if isinstance(self.text, str):
            yield "text", self.text
        elif isinstance(self.text, dict):
            for lang, text in self.text.items():
                yield f"text[{lang}]", text


class Outputs(_Model):
    """Named exits of a node; each holds the id of the next node (or nothing yet)."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset()


class NextOutputs(Outputs):
    next: NodeId | None = None


class CollectOutputs(Outputs):
    success: NodeId | None = None
    no_input: NodeId | None = None
    invalid: NodeId | None = None


class MenuOutputs(Outputs):
    no_input: NodeId | None = None
    invalid: NodeId | None = None


class BranchOutputs(Outputs):
    default: NodeId | None = None


class HoursOutputs(Outputs):
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"holiday"})
    open: NodeId | None = None
    closed: NodeId | None = None
    holiday: NodeId | None = None  # falls back to ``closed``


class WebhookOutputs(Outputs):
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"timeout"})
    success: NodeId | None = None
    error: NodeId | None = None
    timeout: NodeId | None = None  # falls back to ``error``


class CallbackOutputs(Outputs):
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"failed"})
    scheduled: NodeId | None = None
    declined: NodeId | None = None
    failed: NodeId | None = None  # falls back to ``declined``


class FlowJumpOutputs(Outputs):
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"error"})
    error: NodeId | None = None  # the other flow could not be loaded


class NoOutputs(Outputs):
    pass


class _Node(_Model):
    id: NodeId
    label: str | None = Field(default=None, max_length=200)
    ui: dict[str, JsonValue] | None = None  # editor layout; ignored by the interpreter

    TERMINAL: ClassVar[bool] = False
    WAITS_FOR_CALLER: ClassVar[bool] = False
    outputs: Outputs

    def output_targets(self) -> dict[str, str | None]:
        """Every output name of this node and the node it leads to."""
        outs = self.outputs
        return {name: getattr(outs, name) for name in type(outs).model_fields}

    def optional_outputs(self) -> frozenset[str]:
        return type(self.outputs).OPTIONAL

    def prompts(self) -> Iterator[tuple[str, Prompt]]:
        """Every prompt of the node with its field name."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Prompt):
                yield name, value

    def expressions(self) -> Iterator[tuple[str, str]]:
        """Every expression of the node (field name, source)."""
        return iter(())

    def templates(self) -> Iterator[tuple[str, str]]:
        """Every template of the node (field name, source), prompts included."""
        for field, prompt in self.prompts():
            for label, text in prompt.texts():
                yield f"{field}.{label}", text


class PlayNode(_Node):
    """Say a prompt; the next node starts when it has played (voice) or was sent (chat)."""

    type: Literal["play"]
    prompt: Prompt | None = None
    outputs: NextOutputs = NextOutputs()


class _CollectNode(_Node):
    WAITS_FOR_CALLER: ClassVar[bool] = True
    prompt: Prompt | None = None
    no_input_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None
    reprompt: Prompt | None = None  # replayed before each retry; defaults to ``prompt``
    retries: int = Field(default=2, ge=0, le=10)
    timeout: Seconds = 5.0  # first input after the prompt ends
    barge_in: bool = True
    speech: bool = True  # accept spoken answers (voice)


class GetDigitsNode(_CollectNode):
    """Collect a digit string by DTMF, speech ("one two three") or chat text."""

    type: Literal["get_digits"]
    min_digits: int = Field(default=1, ge=1, le=64)
    max_digits: int = Field(default=16, ge=1, le=64)
    terminator: str | None = Field(default="#", pattern=r"^[*#]$")
    inter_digit_timeout: Seconds = 3.0
    variable: VariableName | None = None
    outputs: CollectOutputs = CollectOutputs()


class MenuOption(_Model):
    key: str | None = Field(default=None, pattern=r"^[0-9*#]$")
    keywords: list[Annotated[str, Field(min_length=1, max_length=60)]] = []
    value: str | None = None  # stored in the menu's variable; defaults to key or first keyword
    next: NodeId | None = None

    @field_validator("keywords")
    @classmethod
    def _keywords_are_words(cls, words: list[str]) -> list[str]:
        for word in words:
            if not all(ch.isalpha() or ch in " '-" for ch in word):
                raise ValueError(f"keyword {word!r} must be words (letters, spaces, ' and -)")
        return words

    def output_name(self) -> str:
        if self.key is not None:
            return f"option:{self.key}"
        return f"option:{self.keywords[0] if self.keywords else '?'}"

    def stored_value(self) -> str:
        if self.value is not None:
            return self.value
        if self.keywords:
            return self.keywords[0]
        return self.key or ""


class MenuNode(_CollectNode):
    """Offer choices by DTMF key or spoken/typed keyword; invalid and no-input are retried."""

    type: Literal["menu"]
    options: list[MenuOption] = Field(min_length=1, max_length=12)
    min_confidence: float = Field(default=0.0, ge=0, le=1)  # the ASR engine filters already
    variable: VariableName | None = None
    outputs: MenuOutputs = MenuOutputs()

    def output_targets(self) -> dict[str, str | None]:
        targets = {opt.output_name(): opt.next for opt in self.options}
        targets.update(super().output_targets())
        return targets


class Assignment(_Model):
    variable: VariableName
    value: ExpressionText


class SetVariableNode(_Node):
    """Evaluate expressions and store them in flow variables, in order."""

    type: Literal["set_variable"]
    assignments: list[Assignment] = Field(min_length=1)
    outputs: NextOutputs = NextOutputs()

    def expressions(self) -> Iterator[tuple[str, str]]:
        for i, a in enumerate(self.assignments):
            yield f"assignments[{i}].value", a.value


class Condition(_Model):
    when: ExpressionText
    next: NodeId | None = None


class BranchNode(_Node):
    """Take the first condition that is true, else ``default``."""

    type: Literal["branch"]
    conditions: list[Condition] = Field(min_length=1)
    outputs: BranchOutputs = BranchOutputs()

    def output_targets(self) -> dict[str, str | None]:
        targets = {f"condition:{i}": c.next for i, c in enumerate(self.conditions)}
        targets.update(super().output_targets())
        return targets

    def expressions(self) -> Iterator[tuple[str, str]]:
        for i, c in enumerate(self.conditions):
            yield f"conditions[{i}].when", c.when


class CheckHoursNode(_Node):
    """Open, closed or holiday by a named schedule in the tenant's (or schedule's) time zone."""

    type: Literal["check_hours"]
    schedule: Annotated[str, Field(min_length=1, max_length=64)]
    outputs: HoursOutputs = HoursOutputs()


class WebhookNode(_Node):
    """POST a signed JSON request to the enterprise's system; its JSON answer becomes a variable."""

    WAITS_FOR_CALLER: ClassVar[bool] = True  # waits for an outside answer, so loops may pass here
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    method: Literal["POST", "PUT"] = "POST"
    parameters: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ExpressionText] = {}
    secret: Annotated[str, Field(min_length=1, max_length=64)] | None = None  # name, not value
    timeout: Annotated[float, Field(gt=0, le=30)] = 3.0
    result_variable: VariableName | None = None
    outputs: WebhookOutputs = WebhookOutputs()

    def expressions(self) -> Iterator[tuple[str, str]]:
        for name, source in self.parameters.items():
            yield f"parameters.{name}", source


class SetLanguageNode(_Node):
    type: Literal["set_language"]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
    outputs: NextOutputs = NextOutputs()


class SetSkillsNode(_Node):
    type: Literal["set_skills"]
    skills: list[Annotated[str, Field(pattern=ID_PATTERN)]]
    mode: Literal["replace", "add", "remove"] = "replace"
    outputs: NextOutputs = NextOutputs()


class SetPriorityNode(_Node):
    type: Literal["set_priority"]
    priority: ExpressionText  # an expression giving a whole number 0..100 (higher is sooner)
    outputs: NextOutputs = NextOutputs()

    def expressions(self) -> Iterator[tuple[str, str]]:
        yield "priority", self.priority


class TransferQueueNode(_Node):
    """Hand the contact to the ACD; the edge plays music and wait announcements while queued."""

    TERMINAL: ClassVar[bool] = True
    type: Literal["transfer_queue"]
    queue: Annotated[str, Field(pattern=ID_PATTERN)]
    music: str | None = "default"
    wait_announcement: str | None = None  # template over {position} and {wait_minutes}
    announce_every: Seconds = 30.0
    outputs: NoOutputs = NoOutputs()


class TransferAgentNode(_Node):
    TERMINAL: ClassVar[bool] = True
    type: Literal["transfer_agent"]
    agent: ExpressionText  # expression, e.g. "'agent-7'" or "crm.account_manager"
    outputs: NoOutputs = NoOutputs()

    def expressions(self) -> Iterator[tuple[str, str]]:
        yield "agent", self.agent


class TransferExternalNode(_Node):
    TERMINAL: ClassVar[bool] = True
    type: Literal["transfer_external"]
    number: Annotated[str, Field(min_length=1, max_length=200)]  # template, e.g. "+86{branch}"
    # One of the tenant's numbers or trunk caller IDs, or "caller" (keep the caller's number);
    # none: the trunk's caller ID (ivr/caller_id.py).
    caller_id: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    outputs: NoOutputs = NoOutputs()

    def templates(self) -> Iterator[tuple[str, str]]:
        yield from super().templates()
        yield "number", self.number


class TransferFlowNode(_Node):
    """Continue in another flow (the edge loads its published version); variables carry over."""

    type: Literal["transfer_flow"]
    flow: Annotated[str, Field(pattern=ID_PATTERN)]
    outputs: FlowJumpOutputs = FlowJumpOutputs()


class VoicemailNode(_Node):
    TERMINAL: ClassVar[bool] = True
    type: Literal["voicemail"]
    mailbox: Annotated[str, Field(pattern=ID_PATTERN)]
    prompt: Prompt | None = None
    max_seconds: Annotated[int, Field(ge=5, le=600)] = 120
    outputs: NoOutputs = NoOutputs()


class OfferCallbackNode(_CollectNode):
    """Ask whether the caller wants a call back; on yes the edge registers it for ``queue``."""

    type: Literal["offer_callback"]
    queue: Annotated[str, Field(pattern=ID_PATTERN)]
    number: ExpressionText = "contact.caller"
    accept_key: str = Field(default="1", pattern=r"^[0-9*#]$")
    decline_key: str | None = Field(default="2", pattern=r"^[0-9*#]$")
    accept_words: list[str] = ["yes", "callback"]
    decline_words: list[str] = ["no"]
    outputs: CallbackOutputs = CallbackOutputs()

    def expressions(self) -> Iterator[tuple[str, str]]:
        yield "number", self.number


class HangupNode(_Node):
    TERMINAL: ClassVar[bool] = True
    type: Literal["hangup"]
    prompt: Prompt | None = None  # said (or sent) before hanging up
    reason: str = "normal"
    outputs: NoOutputs = NoOutputs()


FlowNode = Annotated[
    PlayNode
    | GetDigitsNode
    | MenuNode
    | SetVariableNode
    | BranchNode
    | CheckHoursNode
    | WebhookNode
    | SetLanguageNode
    | SetSkillsNode
    | SetPriorityNode
    | TransferQueueNode
    | TransferAgentNode
    | TransferExternalNode
    | TransferFlowNode
    | VoicemailNode
    | OfferCallbackNode
    | HangupNode,
    Field(discriminator="type"),
]


class VariableDeclaration(_Model):
    default: JsonValue = None
    description: str = ""


class Holiday(_Model):
    date: Annotated[str, Field(pattern=r"^(\d{4}-)?\d{2}-\d{2}$")]  # YYYY-MM-DD, or MM-DD yearly
    name: str = ""


class SpecialHours(_Model):
    date: Annotated[str, Field(pattern=r"^(\d{4}-)?\d{2}-\d{2}$")]
    name: str = ""
    open: list[str] = []  # ranges "HH:MM-HH:MM"; empty = closed that day


class Schedule(_Model):
    """Weekly opening hours plus dated holidays and exceptions, in ``timezone`` (IANA name)."""

    timezone: str | None = None  # None = the tenant's time zone
    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[str]] = {}
    holidays: list[Holiday] = []
    exceptions: list[SpecialHours] = []


class Flow(_Model):
    """A flow document."""

    format: Literal["cloudcc.flow/1"] = FORMAT
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    channels: list[Channel] = Field(default=[Channel.VOICE], min_length=1)
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = "en-US"
    start: NodeId
    on_error: NodeId | None = None
    chat_input_timeout: Seconds = 300.0
    variables: dict[VariableName, VariableDeclaration] = {}
    schedules: dict[Annotated[str, Field(min_length=1, max_length=64)], Schedule] = {}
    nodes: list[FlowNode] = Field(min_length=1)

    def node_map(self) -> dict[str, FlowNode]:
        """Nodes by id (the last one wins if ids repeat; validation reports repeats)."""
        return {node.id: node for node in self.nodes}


def parse_flow(document: str | bytes | Mapping[str, Any]) -> Flow:
    """Read a flow from JSON text or a decoded mapping; raises FlowDocumentError naming the node."""
    data: Any
    if isinstance(document, str | bytes):
        try:
            data = json.loads(document)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FlowDocumentError(f"not valid JSON: {exc}") from None
    else:
        data = document
    if not isinstance(data, Mapping):
        raise FlowDocumentError("a flow document must be a JSON object")
    try:
        return Flow.model_validate(data)
    except ValidationError as exc:
        raise _document_error(exc, data) from None


def _document_error(exc: ValidationError, data: Mapping[str, Any]) -> FlowDocumentError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    node_id: str | None = None
    nodes = data.get("nodes")
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int) and isinstance(nodes, list):
        raw = nodes[loc[1]] if loc[1] < len(nodes) else None
        raw_id = raw.get("id") if isinstance(raw, Mapping) else None
        node_id = raw_id if isinstance(raw_id, str) else f"#{loc[1]}"
        loc = loc[2:]
        # pydantic puts the discriminator value (the node type) first in the location
        if loc and isinstance(raw, Mapping) and loc[0] == raw.get("type"):
            loc = loc[1:]
    location = ".".join(str(part) for part in loc)
    count = exc.error_count()
    more = f" (and {count - 1} more problem(s))" if count > 1 else ""
    message = f"{location}: {first['msg']}{more}" if location else f"{first['msg']}{more}"
    return FlowDocumentError(message, node_id=node_id, location=location)


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flow document."""
    schema = Flow.model_json_schema()
    schema["$id"] = "https://cloudcc.dev/schemas/flow-1.json"
    schema["title"] = "cloudcc flow document (format cloudcc.flow/1)"
    return schema
