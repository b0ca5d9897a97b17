"""What the store keeps: customers, identities, conversations, interactions, messages, notes, the logs."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

__all__ = [
    "ApiToken",
    "Attachment",
    "Conversation",
    "ConversationDetail",
    "Customer",
    "CustomerContext",
    "Delivery",
    "DeliveryStatus",
    "Direction",
    "EngineSnapshot",
    "IdentityRecord",
    "Interaction",
    "InteractionPatch",
    "InteractionStatus",
    "LogEntry",
    "Merge",
    "Message",
    "MessageDirection",
    "Note",
    "Role",
    "Session",
    "StoredEvent",
    "TimelineEntry",
    "User",
]

Direction = Literal["inbound", "outbound"]
MessageDirection = Literal["inbound", "outbound", "internal"]
# waiting → offered → assigned → completed, or abandoned/cancelled from
# waiting or offered; a transfer sends it back to waiting.
InteractionStatus = Literal["waiting", "offered", "assigned", "completed", "abandoned", "cancelled"]
FINISHED: frozenset[str] = frozenset({"completed", "abandoned", "cancelled"})


class _Record(Struct, frozen=True, kw_only=True, gc=False):
    """Stored records are plain data that never refer back to themselves, so
    the garbage collector need not track them (``gc=False``, inherited): a
    customer's context builds thousands of them, and tracked they made full
    collections scan each one."""


class Customer(_Record, frozen=True, kw_only=True):
    id: str
    created_at: float
    display_name: str | None = None
    attributes: dict[str, Any] = {}
    # Set while this record is merged into another (the survivor).
    merged_into: str | None = None


class IdentityRecord(_Record, frozen=True, kw_only=True):
    kind: str
    value: str
    customer_id: str
    created_at: float


class Conversation(_Record, frozen=True, kw_only=True):
    """Interactions that belong together, on any channels."""

    id: str
    customer_id: str
    opened_at: float
    last_activity_at: float
    closed_at: float | None = None


class Interaction(_Record, frozen=True, kw_only=True):
    """One unit of customer work on one channel; the engine's task of the same id."""

    id: str
    conversation_id: str
    customer_id: str
    channel: str
    direction: Direction
    queue: str
    status: InteractionStatus
    priority: int = 0
    agent: str | None = None
    offer: int | None = None
    created_at: float
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    wrap_up_ended_at: float | None = None
    disposition: str | None = None
    outcome: str | None = None
    subject: str | None = None
    attributes: dict[str, Any] = {}
    # While the agent has the customer on hold: since when; and the hold
    # time of the holds already ended (it is not talk time).
    held_at: float | None = None
    hold_seconds: float = 0.0


class InteractionPatch(_Record, frozen=True, kw_only=True):
    """Changes to one interaction; None leaves a field as it is. Queued,
    offered and answered times keep their first value (a transfer does not
    reset them). ``agent`` is the agent the interaction is offered to or
    with; ``clear_agent`` empties it when an offer goes unanswered;
    ``clear_held`` ends a hold."""

    id: str
    status: InteractionStatus | None = None
    queue: str | None = None
    agent: str | None = None
    clear_agent: bool = False
    offer: int | None = None
    clear_offer: bool = False
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    wrap_up_ended_at: float | None = None
    disposition: str | None = None
    outcome: str | None = None
    held_at: float | None = None
    clear_held: bool = False
    hold_seconds: float | None = None


class Message(_Record, frozen=True, kw_only=True):
    id: str
    interaction_id: str
    conversation_id: str
    at: float
    direction: MessageDirection
    author: str
    body: str
    content_type: str = "text/plain"


DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed"]
# A delivery's status only moves forward; failed ends it.
DELIVERY_ORDER: dict[str, int] = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


class Delivery(_Record, frozen=True, kw_only=True):
    """An outbound message's delivery, as its channel last reported it."""

    message_id: str
    channel: str
    status: DeliveryStatus
    updated_at: float
    provider_id: str | None = None
    detail: str | None = None


class Attachment(_Record, frozen=True, kw_only=True):
    """Metadata of a file sent with a message; the bytes live elsewhere (``location``)."""

    id: str
    message_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    location: str


class Note(_Record, frozen=True, kw_only=True):
    id: str
    customer_id: str
    interaction_id: str | None
    author: str
    at: float
    body: str


class Merge(_Record, frozen=True, kw_only=True):
    """One customer record folded into another, with what moved, so it can be undone."""

    id: str
    survivor: str
    merged: str
    at: float
    identities: list[tuple[str, str]]
    conversations: list[str]
    interactions: list[str]
    notes: list[str]
    undone_at: float | None = None


class StoredEvent(_Record, frozen=True, kw_only=True):
    """One row of the append-only event log; ``data`` is MessagePack."""

    seq: int
    type: str
    time: float
    subject: str
    data: bytes


class LogEntry(_Record, frozen=True, kw_only=True):
    """One engine call as it was made: replaying these after a snapshot
    rebuilds the engine and the metrics exactly."""

    seq: int
    now: float
    inputs: bytes
    metrics: bytes | None = None


class EngineSnapshot(_Record, frozen=True, kw_only=True):
    log_seq: int
    event_seq: int
    taken_at: float
    engine: bytes
    metrics: bytes


class TimelineEntry(_Record, frozen=True, kw_only=True):
    """A past or open interaction as an agent sees it with an offer: the
    interaction and its notes. A finished interaction's entry is stored whole
    (schema version 6), so a timeline reads one value per interaction."""

    interaction: Interaction
    # A tuple: most interactions have no notes, and () is shared, not built a
    # thousand times per context; a tuple of untracked records is untracked
    # by the garbage collector once it has seen it.
    notes: tuple[Note, ...] = ()


class CustomerContext(_Record, frozen=True, kw_only=True):
    """Everything an agent should know before saying hello: who, what happened
    on every channel, what is open, and who spoke to them last."""

    customer: Customer
    identities: list[IdentityRecord]
    timeline: list[TimelineEntry]
    open_conversation: Conversation | None
    # The open conversation's messages, oldest first, across its interactions
    # and channels (each names its interaction); empty with no open conversation.
    transcript: list[Message]
    last_agent: str | None
    customer_notes: list[Note]


class ConversationDetail(_Record, frozen=True, kw_only=True):
    """One conversation: its interactions on every channel and its messages,
    each oldest first."""

    conversation: Conversation
    interactions: list[Interaction]
    messages: list[Message]


# What a person may do on the server (``docs/server.md``): an agent works its
# own offers and tasks; a supervisor sees everything and changes agent states;
# an administrator also changes the configuration and who may log in.
Role = Literal["agent", "supervisor", "administrator"]


class User(_Record, frozen=True, kw_only=True):
    """A person who logs in to the server; an agent's user names the agent it works as."""

    name: str
    role: Role
    agent: str | None = None
    created_at: float
    disabled_at: float | None = None


class Session(_Record, frozen=True, kw_only=True):
    """A login. The token itself is handed out once and stored only as its hash."""

    user: str
    created_at: float
    expires_at: float
    ended_at: float | None = None


class ApiToken(_Record, frozen=True, kw_only=True):
    """Another system's credential: what it may do is its scopes, nothing more."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
