"""The engine's vocabulary as typed msgspec structs: configuration, inputs, outputs."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "Accept",
    "AddCondition",
    "AddQueue",
    "AddTask",
    "AgentConfig",
    "AgentLoad",
    "AgentState",
    "AgentStateChanged",
    "AgentStatus",
    "AgentVerdict",
    "AllOf",
    "AnyOf",
    "BatchResult",
    "Cancel",
    "Candidate",
    "ChannelConfig",
    "ChannelLimit",
    "Complete",
    "Condition",
    "ConditionNotMet",
    "CustomerActivity",
    "DeclinedBefore",
    "DropCondition",
    "Eligible",
    "EndWrapUp",
    "EngineConfig",
    "Excluded",
    "Explanation",
    "External",
    "FewestHandled",
    "Input",
    "InputError",
    "LeastOccupied",
    "LongestIdle",
    "LowerLevel",
    "MissingSkill",
    "MostSkilled",
    "NewTask",
    "NoCapacity",
    "Not",
    "NotAvailable",
    "NotServingQueue",
    "OfferMade",
    "OfferReason",
    "OfferRejected",
    "OfferRescinded",
    "OfferTimedOut",
    "Offered",
    "Output",
    "Pick",
    "PickRequested",
    "QueueConfig",
    "Reject",
    "RemoveAgent",
    "ReservationExpired",
    "ReservedForOthers",
    "RoundRobin",
    "Score",
    "ScorePart",
    "SetAgentState",
    "SetPriority",
    "Skill",
    "Step",
    "StepAction",
    "StepReached",
    "Strategy",
    "TaskAssigned",
    "TaskCancelled",
    "TaskCompleted",
    "TaskInactive",
    "TaskQueued",
    "TaskReactivated",
    "TaskTransferred",
    "Transfer",
    "UpsertAgent",
    "UpsertChannel",
    "UpsertQueue",
    "Verdict",
    "WeightedRandom",
]

Name = Annotated[str, Meta(min_length=1, max_length=256)]
Seconds = Annotated[float, Meta(ge=0)]
PositiveSeconds = Annotated[float, Meta(gt=0)]
Level = Annotated[int, Meta(ge=0, le=255)]
SkillLevel = Annotated[int, Meta(ge=1, le=255)]
Units = Annotated[int, Meta(ge=1, le=2**32 - 1)]
Priority = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
AttributeValue = bool | int | float | str


class _Config(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configuration input: a typo in a field name is an error."""


# ----- conditions -----


class Skill(_Config, tag="skill", tag_field="op", frozen=True):
    """Holds when the agent has `skill` at `min_level` or above."""

    skill: Name
    min_level: Level = 1


class AllOf(_Config, tag="all", tag_field="op", frozen=True):
    """Holds when every condition holds (an empty list always holds)."""

    of: list[Condition]


class AnyOf(_Config, tag="any", tag_field="op", frozen=True):
    """Holds when at least one condition holds (an empty list never holds)."""

    of: list[Condition]


class Not(_Config, tag="not", tag_field="op", frozen=True):
    """Holds when the condition does not."""

    condition: Condition


Condition = Skill | AllOf | AnyOf | Not


# ----- strategies -----


class LongestIdle(_Config, tag="longest_idle", tag_field="kind", frozen=True):
    per_channel: bool = False


class LeastOccupied(_Config, tag="least_occupied", tag_field="kind", frozen=True):
    pass


class MostSkilled(_Config, tag="most_skilled", tag_field="kind", frozen=True):
    pass


class RoundRobin(_Config, tag="round_robin", tag_field="kind", frozen=True):
    pass


class FewestHandled(_Config, tag="fewest_handled", tag_field="kind", frozen=True):
    pass


class WeightedRandom(_Config, tag="weighted_random", tag_field="kind", frozen=True):
    feature: str = "skill_level"


class Score(_Config, tag="score", tag_field="kind", frozen=True):
    weights: dict[str, float]


class External(_Config, tag="external", tag_field="kind", frozen=True):
    pass


Strategy = (
    LongestIdle | LeastOccupied | MostSkilled | RoundRobin | FewestHandled | WeightedRandom | Score | External
)


# ----- relaxation steps -----


class DropCondition(_Config, tag="drop_condition", tag_field="kind", frozen=True):
    skill: Name


class LowerLevel(_Config, tag="lower_level", tag_field="kind", frozen=True):
    skill: Name
    min_level: SkillLevel


class AddQueue(_Config, tag="add_queue", tag_field="kind", frozen=True):
    queue: Name


class AddCondition(_Config, tag="add_condition", tag_field="kind", frozen=True):
    condition: Condition


StepAction = DropCondition | LowerLevel | AddQueue | AddCondition


class Step(_Config, frozen=True):
    after_seconds: Seconds
    action: StepAction


# ----- configuration -----


class ChannelConfig(_Config, frozen=True):
    name: Name
    cost: Units
    max_per_agent: Units | None = None
    interruptible: bool = False
    inactive_after: PositiveSeconds | None = None


class QueueConfig(_Config, frozen=True):
    name: Name
    strategy: Strategy = LongestIdle()
    service_level_seconds: PositiveSeconds = 20.0
    aging_per_second: Seconds = 0.0
    offer_timeout: PositiveSeconds = 30.0
    wrap_up: Seconds | None = None
    steps: list[Step] = []


class AgentConfig(_Config, frozen=True):
    id: Name
    capacity: Units = 60
    # Level 0 is refused by the engine, which names the skill in its message.
    skills: dict[str, Level] = {}
    queues: dict[str, Priority] = {}
    available: bool = True
    # The team the agent reports in (reports by team); routing does not look at it.
    team: Name | None = None


class EngineConfig(_Config, frozen=True):
    channels: list[ChannelConfig]
    queues: list[QueueConfig]
    agents: list[AgentConfig] = []
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    max_missed_offers: Annotated[int, Meta(ge=0, le=2**32 - 1)] = 3


# ----- inputs -----


class NewTask(_Config, frozen=True):
    id: Name
    channel: Name
    queue: Name
    priority: Priority = 0
    requires: Condition | None = None
    preferred_agents: list[str] = []
    preferred_until: float | None = None
    excluded_agents: list[str] = []
    attributes: dict[str, AttributeValue] = {}
    enqueued_at: float | None = None


class AgentState(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A state an agent can be put in: offline, available, or away with a
    reason code (the engine itself sets not_responding and wrap_up)."""

    state: Literal["offline", "available", "away"]
    reason: str | None = None


class _Input(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    pass


class AddTask(_Input, tag="add_task", frozen=True):
    task: NewTask


class Accept(_Input, tag="accept", frozen=True):
    offer: int


class Reject(_Input, tag="reject", frozen=True):
    offer: int


class Cancel(_Input, tag="cancel", frozen=True):
    task: str


class Complete(_Input, tag="complete", frozen=True):
    task: str


class EndWrapUp(_Input, tag="end_wrap_up", frozen=True):
    agent: str


class Transfer(_Input, tag="transfer", frozen=True):
    """Send a task to another queue or to a named agent (exactly one)."""

    task: str
    to_queue: str | None = None
    to_agent: str | None = None


class SetAgentState(_Input, tag="set_agent_state", frozen=True):
    agent: str
    state: AgentState


class CustomerActivity(_Input, tag="customer_activity", frozen=True):
    task: str


class Pick(_Input, tag="pick", frozen=True):
    task: str
    agent: str


class SetPriority(_Input, tag="set_priority", frozen=True):
    task: str
    priority: Priority


class UpsertAgent(_Input, tag="upsert_agent", frozen=True):
    agent: AgentConfig


class RemoveAgent(_Input, tag="remove_agent", frozen=True):
    agent: str


class UpsertQueue(_Input, tag="upsert_queue", frozen=True):
    queue: QueueConfig


class UpsertChannel(_Input, tag="upsert_channel", frozen=True):
    channel: ChannelConfig


Input = (
    AddTask
    | Accept
    | Reject
    | Cancel
    | Complete
    | EndWrapUp
    | Transfer
    | SetAgentState
    | CustomerActivity
    | Pick
    | SetPriority
    | UpsertAgent
    | RemoveAgent
    | UpsertQueue
    | UpsertChannel
)


# ----- outputs -----
# The core sends results as MessagePack arrays (fields by position, the tag
# first), so these structs are `array_like`: their field order is the Rust
# types' order. Decoding skips no field names: results are half the size.
# They hold no reference cycles, so they stay out of the garbage collector
# (`gc=False`): a batch decodes thousands of them.


class ScorePart(Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    feature: str
    value: float
    weight: float


class OfferReason(Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """Why an offer was made: what triggered it, the strategy, the score
    and its parts, the relaxation step and requirement in force."""

    trigger: Literal["task_arrived", "agent_freed", "picked"]
    strategy: str
    score: float
    parts: list[ScorePart]
    step: int
    requirement: str
    reserved: bool


class Candidate(Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    agent: str
    features: list[tuple[str, float]]


class AgentStatus(Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """An agent's state as the engine reports it: offline, available, away
    (with its reason), not_responding or wrap_up."""

    state: Literal["offline", "available", "away", "not_responding", "wrap_up"]
    reason: str | None = None


class _Output(Struct, frozen=True, tag_field="type", array_like=True, gc=False):
    at: float


class TaskQueued(_Output, tag="task_queued", frozen=True):
    task: str
    queue: str
    channel: str
    priority: int
    arrived_at: float


class OfferMade(_Output, tag="offer_made", frozen=True):
    offer: int
    task: str
    agent: str
    queue: str
    channel: str
    expires_at: float
    reason: OfferReason


class OfferRescinded(_Output, tag="offer_rescinded", frozen=True):
    offer: int
    task: str
    agent: str
    why: str


class OfferRejected(_Output, tag="offer_rejected", frozen=True):
    offer: int
    task: str
    agent: str


class OfferTimedOut(_Output, tag="offer_timed_out", frozen=True):
    offer: int
    task: str
    agent: str


class TaskAssigned(_Output, tag="task_assigned", frozen=True):
    task: str
    agent: str
    queue: str
    channel: str
    wait: float


class TaskCancelled(_Output, tag="task_cancelled", frozen=True):
    task: str
    queue: str
    channel: str
    wait: float


class TaskCompleted(_Output, tag="task_completed", frozen=True):
    task: str
    agent: str
    queue: str
    channel: str


class TaskTransferred(_Output, tag="task_transferred", frozen=True):
    task: str
    from_queue: str
    channel: str
    from_agent: str | None
    to_queue: str | None
    to_agent: str | None


class StepReached(_Output, tag="step_reached", frozen=True):
    task: str
    queue: str
    step: int
    requirement: str


class ReservationExpired(_Output, tag="reservation_expired", frozen=True):
    task: str


class TaskInactive(_Output, tag="task_inactive", frozen=True):
    task: str
    agent: str


class TaskReactivated(_Output, tag="task_reactivated", frozen=True):
    task: str
    agent: str


class PickRequested(_Output, tag="pick_requested", frozen=True):
    task: str
    queue: str
    candidates: list[Candidate]


class AgentStateChanged(_Output, tag="agent_state_changed", frozen=True):
    agent: str
    status: AgentStatus


class AgentLoad(_Output, tag="agent_load", frozen=True):
    agent: str
    used: int
    capacity: int
    tasks: int


Output = (
    TaskQueued
    | OfferMade
    | OfferRescinded
    | OfferRejected
    | OfferTimedOut
    | TaskAssigned
    | TaskCancelled
    | TaskCompleted
    | TaskTransferred
    | StepReached
    | ReservationExpired
    | TaskInactive
    | TaskReactivated
    | PickRequested
    | AgentStateChanged
    | AgentLoad
)


class InputError(Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """An input event the engine refused; nothing of it was applied."""

    index: int
    kind: Literal["unknown_id", "duplicate_id", "invalid_transition", "invalid_config", "invalid_input"]
    message: str


class BatchResult(Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """What one batch produced, in order, and the inputs refused."""

    now: float
    events: list[Output]
    errors: list[InputError]

    @property
    def offers(self) -> list[OfferMade]:
        return [e for e in self.events if isinstance(e, OfferMade)]


# ----- explanations -----


class _Verdict(Struct, frozen=True, kw_only=True, tag_field="verdict"):
    agent: str


class Eligible(_Verdict, tag="eligible", frozen=True):
    score: float


class Offered(_Verdict, tag="offered", frozen=True):
    pass


class NotServingQueue(_Verdict, tag="not_serving_queue", frozen=True):
    pass


class MissingSkill(_Verdict, tag="missing_skill", frozen=True):
    skill: str
    required: int
    has: int


class ConditionNotMet(_Verdict, tag="condition_not_met", frozen=True):
    condition: str


class NoCapacity(_Verdict, tag="no_capacity", frozen=True):
    needed: int
    free: int


class ChannelLimit(_Verdict, tag="channel_limit", frozen=True):
    channel: str
    max: int


class NotAvailable(_Verdict, tag="not_available", frozen=True):
    status: AgentStatus


class DeclinedBefore(_Verdict, tag="declined_before", frozen=True):
    pass


class Excluded(_Verdict, tag="excluded", frozen=True):
    pass


class ReservedForOthers(_Verdict, tag="reserved_for_others", frozen=True):
    until: float


Verdict = (
    Eligible
    | Offered
    | NotServingQueue
    | MissingSkill
    | ConditionNotMet
    | NoCapacity
    | ChannelLimit
    | NotAvailable
    | DeclinedBefore
    | Excluded
    | ReservedForOthers
)
AgentVerdict = Verdict


class Explanation(Struct, frozen=True, kw_only=True, array_like=True):
    """Why a task is where it is, agent by agent."""

    task: str
    queue: str
    phase: Literal["waiting", "offered", "assigned"]
    step: int
    requirement: str
    effective_priority: float
    agents: list[Verdict]


# Encoders and decoders are built once.
encoder = msgspec.msgpack.Encoder()
batch_decoder = msgspec.msgpack.Decoder(BatchResult)
explanation_decoder = msgspec.msgpack.Decoder(Explanation)
