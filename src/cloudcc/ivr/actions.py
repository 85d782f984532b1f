"""The interpreter's vocabulary: inputs the edge feeds in, actions it must perform, flow events.

All are frozen dataclasses. Times are UNIX seconds (floats) supplied by the caller as ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cloudcc.ivr.expressions import Value
from cloudcc.ivr.model import Channel, Flow

# --- context ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactContext:
    """What the flow knows about the contact; exposed to expressions as ``contact.*``."""

    tenant_id: str
    contact_id: str
    channel: Channel = Channel.VOICE
    caller: str | None = None  # ANI, or the chat user's handle
    dialed: str | None = None  # DNIS / entry point address
    language: str | None = None  # overrides the flow's language when set
    timezone: str = "UTC"  # the tenant's time zone, used when a schedule has none
    attributes: Mapping[str, Value] = field(default_factory=dict)

    def as_value(self) -> dict[str, Value]:
        data: dict[str, Value] = dict(self.attributes)
        data.update(
            {
                "id": self.contact_id,
                "tenant": self.tenant_id,
                "channel": self.channel.value,
                "caller": self.caller,
                "dialed": self.dialed,
            }
        )
        return data


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """The prompt with this id finished (or was stopped)."""

    play_id: int


@dataclass(frozen=True, slots=True)
class DigitPressed:
    """One DTMF digit (RFC 4733 event or in-band), as it arrives."""

    digit: str


@dataclass(frozen=True, slots=True)
class DigitsCollected:
    """A whole digit string gathered by the edge (treated as terminated)."""

    digits: str


@dataclass(frozen=True, slots=True)
class SpeechRecognized:
    """ASR result for the current collection; ``text`` is the grammar's words."""

    text: str
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class NoInput:
    """The edge heard nothing usable (e.g. the recognizer's no-speech timeout)."""


@dataclass(frozen=True, slots=True)
class TextReceived:
    """A chat message from the customer."""

    text: str


class WebhookOutcome(StrEnum):
    SUCCESS = "success"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class WebhookResult:
    request_id: str
    outcome: WebhookOutcome
    status_code: int | None = None
    data: Mapping[str, Value] | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """Whether the edge could register the callback that OfferCallback asked for."""

    scheduled: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FlowLoaded:
    """The flow that LoadFlow asked for (its published version)."""

    flow: Flow


@dataclass(frozen=True, slots=True)
class FlowLoadFailed:
    flow_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timer set for ``session.next_deadline`` fired."""


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller left (BYE) or the chat was closed by the customer."""


Input = (
    PlaybackDone
    | DigitPressed
    | DigitsCollected
    | SpeechRecognized
    | NoInput
    | TextReceived
    | WebhookResult
    | CallbackResult
    | FlowLoaded
    | FlowLoadFailed
    | Timeout
    | CallerHungUp
)

# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """Play TTS ``text`` (in ``language``) or the uploaded ``audio`` file; answer PlaybackDone."""

    play_id: int
    text: str | None
    audio: str | None = None
    language: str = "en-US"
    barge_in: bool = False


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Barge-in: stop the prompt now (the caller started answering)."""

    play_id: int


class CollectMode(StrEnum):
    DIGITS = "digits"
    MENU = "menu"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Collect:
    """Start listening: DTMF always (voice), ASR when ``grammar`` or ``digits_grammar`` is set.

    ``grammar`` holds the spoken phrases to recognise (menu keywords); ``digits_grammar`` asks
    for a spoken digit string. Chat sessions get ``mode=TEXT`` and should just await a message.
    """

    node_id: str
    mode: CollectMode
    attempt: int
    dtmf_keys: tuple[str, ...] = ()
    grammar: tuple[str, ...] = ()
    digits_grammar: bool = False
    min_digits: int = 1
    max_digits: int = 1
    terminator: str | None = None
    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    barge_in: bool = True
    language: str = "en-US"


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Chat: send this text to the customer."""

    text: str


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    request_id: str
    url: str
    method: str
    body: Mapping[str, Value]
    timeout: float
    secret: str | None  # the name of the tenant's signing secret, resolved by the edge
    tenant_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class CallWebhook:
    """Run the webhook and answer WebhookResult (``ivr.webhook.WebhookRunner`` does it)."""

    request: WebhookRequest


@dataclass(frozen=True, slots=True)
class RouteToQueue:
    """Terminal: queue the contact in the ACD; play ``music`` and announcements while waiting."""

    queue: str
    skills: tuple[str, ...]
    priority: int
    language: str
    music: str | None = "default"
    wait_announcement: str | None = None
    announce_every: float = 30.0


@dataclass(frozen=True, slots=True)
class TransferToAgent:
    agent: str
    skills: tuple[str, ...] = ()
    priority: int = 0
    language: str = "en-US"


@dataclass(frozen=True, slots=True)
class TransferExternal:
    number: str
    caller_id: str | None = None


@dataclass(frozen=True, slots=True)
class StartVoicemail:
    mailbox: str
    max_seconds: int
    language: str = "en-US"


@dataclass(frozen=True, slots=True)
class OfferCallback:
    """The caller accepted a callback: register it and answer CallbackResult."""

    queue: str
    number: str
    skills: tuple[str, ...]
    priority: int
    language: str


@dataclass(frozen=True, slots=True)
class LoadFlow:
    """Load the published version of ``flow_id`` and answer FlowLoaded or FlowLoadFailed."""

    flow_id: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """Terminal: end the call (voice) or close the conversation (chat)."""

    reason: str = "normal"


Action = (
    Play
    | StopPlayback
    | Collect
    | SendMessage
    | CallWebhook
    | RouteToQueue
    | TransferToAgent
    | TransferExternal
    | StartVoicemail
    | OfferCallback
    | LoadFlow
    | Hangup
)

TERMINAL_ACTIONS = (RouteToQueue, TransferToAgent, TransferExternal, StartVoicemail, Hangup)

# --- events -------------------------------------------------------------------------------


class FlowEventKind(StrEnum):
    FLOW_STARTED = "flow.started"
    NODE_ENTERED = "flow.node_entered"
    NODE_LEFT = "flow.node_left"
    INPUT_COLLECTED = "flow.input_collected"
    INPUT_FAILED = "flow.input_failed"
    VARIABLE_SET = "flow.variable_set"
    FLOW_ERROR = "flow.error"
    FLOW_ENDED = "flow.ended"


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """For the bus and IVR reports: what happened, where, when, with details."""

    kind: FlowEventKind
    at: float
    tenant_id: str
    contact_id: str
    flow_id: str
    node_id: str | None = None
    node_type: str | None = None
    detail: Mapping[str, Value] = field(default_factory=dict)


Output = Action | FlowEvent
