"""A straightforward pure-Python model of the routing semantics: the executable
specification the Rust engine is tested and benchmarked against.

:class:`ReferenceEngine` takes the same :class:`~omniroute.model.EngineConfig`
and the same input events as :class:`omniroute.Engine` and returns the same
:class:`~omniroute.model.BatchResult`. It keeps no indices: every decision
scans every agent or every waiting task, and every derived quantity (an
agent's load, a task's requirement after relaxation, a queue's members) is
computed from the primary records when it is needed. It is slow on purpose,
so that it is easy to check by reading.

Covered: channels (cost, ``max_per_agent``, interruptible capacity), queues
with the ``longest_idle`` (both variants), ``least_occupied``,
``most_skilled``, ``fewest_handled`` and ``round_robin`` strategies, aging,
offer timeouts, wrap-up and relaxation steps; skill conditions; agents with
capacity, skills, queue priorities and states; the inputs ``AddTask``,
``Accept``, ``Reject``, ``Cancel``, ``Complete``, ``EndWrapUp``,
``SetAgentState``, ``Transfer`` and ``SetPriority``; and every timer these
need. Anything else raises :class:`NotImplementedError`.

The rules, in short:

* A task that becomes routable goes to the best free eligible agent by its
  queue's strategy; ties go to the agent idle since earlier, then to the
  agent created first. An agent holding work is not idle: its idle time
  (per channel: while it holds work of that channel) counts as 0.
* An agent with room takes, while it has room, the best waiting task it may
  take: tasks reserved for it first (oldest first); then by its own priority
  for the queue, the effective priority ``priority + aging_per_second *
  (now - arrived_at)``, the oldest arrival, and arrival order.
* An agent who rejects an offer or lets it time out is never offered that
  task again; once every agent a task is reserved for has, the reservation
  ends. A transfer to a queue keeps the transferring agent away the same way.
* Timers fire in the order they fall due (then the order they were set),
  each at its own time, before the inputs of the batch that passes them.

Priorities are compared as floating-point numbers computed the way written
above; the engine orders tasks of one queue by an equivalent key, so the two
agree exactly whenever the arithmetic is exact (as in the differential test).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from omniroute.condition import format_condition
from omniroute.engine import Counters
from omniroute.errors import InvalidConfigError, InvalidInputError, InvariantError, error_for_kind
from omniroute.model import (
    Accept,
    AddCondition,
    AddQueue,
    AddTask,
    AgentConfig,
    AgentLoad,
    AgentState,
    AgentStateChanged,
    AgentStatus,
    AllOf,
    AnyOf,
    BatchResult,
    Cancel,
    ChannelConfig,
    Complete,
    Condition,
    DropCondition,
    EndWrapUp,
    EngineConfig,
    FewestHandled,
    Input,
    InputError,
    LeastOccupied,
    LongestIdle,
    LowerLevel,
    MostSkilled,
    NewTask,
    Not,
    OfferMade,
    OfferReason,
    OfferRejected,
    OfferRescinded,
    OfferTimedOut,
    Output,
    QueueConfig,
    Reject,
    ReservationExpired,
    RoundRobin,
    ScorePart,
    SetAgentState,
    SetPriority,
    Skill,
    StepAction,
    StepReached,
    Strategy,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskQueued,
    TaskTransferred,
    Transfer,
)

__all__ = ["ReferenceEngine"]

_AVAILABLE = AgentStatus(state="available")
_OFFLINE = AgentStatus(state="offline")
_NOT_RESPONDING = AgentStatus(state="not_responding")
_WRAP_UP = AgentStatus(state="wrap_up")

_SUPPORTED_STRATEGIES = (LongestIdle, LeastOccupied, MostSkilled, RoundRobin, FewestHandled)
_SUPPORTED_INPUTS = (
    AddTask,
    Accept,
    Reject,
    Cancel,
    Complete,
    EndWrapUp,
    SetAgentState,
    Transfer,
    SetPriority,
)

# The limits the Rust engine puts on a requirement.
_MAX_CONDITION_DEPTH = 16
_MAX_CONDITION_NODES = 256

Phase = Literal["waiting", "offered", "assigned"]
ErrorKind = Literal["unknown_id", "duplicate_id", "invalid_transition", "invalid_config", "invalid_input"]
Trigger = Literal["task_arrived", "agent_freed"]


class _RefusedError(Exception):
    """An input event the engine refuses; nothing of it was applied."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _unknown(kind: str, id_: str) -> _RefusedError:
    return _RefusedError("unknown_id", f'unknown {kind} "{id_}"')


def _invalid_input(field_: str, problem: str) -> _RefusedError:
    return _RefusedError("invalid_input", f"{field_}: {problem}")


# ----- records -----


@dataclass(eq=False)
class _Agent:
    index: int
    id: str
    capacity: int
    skills: dict[str, int]
    # Queues served with the agent's priority for each: highest priority first,
    # then the queue configured first.
    queues: list[tuple[int, int]]
    status: AgentStatus
    idle_since: float
    # When the agent last finished a task of each channel.
    channel_idle_since: dict[int, float] = field(default_factory=dict)
    # Tasks offered to or assigned to the agent, in the order received.
    tasks: list[_Task] = field(default_factory=list)
    wrap_gen: int = 0
    missed: int = 0
    handled: int = 0

    def priority_for(self, queue: int) -> int | None:
        for q, p in self.queues:
            if q == queue:
                return p
        return None


@dataclass(eq=False)
class _Reservation:
    """Only these agents may take the task until ``until``; a named transfer
    (``named``) ignores skills and queue membership."""

    agents: list[int]
    until: float
    named: bool


@dataclass(eq=False)
class _Task:
    id: str
    seq: int
    channel: int
    queue: int
    priority: int
    requires: Condition | None
    reservation: _Reservation | None
    excluded: set[int]
    arrived_at: float
    queued_at: float
    step: int = 0
    phase: Phase = "waiting"
    offer: int = 0
    agent: _Agent | None = None
    declined: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Requirement:
    """A task's requirement in force: its base requirement relaxed by the steps
    reached, and the queues whose agents may take it."""

    condition: Condition | None
    serving: tuple[int, ...]

    @property
    def text(self) -> str:
        return "true" if self.condition is None else format_condition(self.condition)


@dataclass(order=True)
class _Timer:
    at: float
    seq: int  # set by _schedule: (rank, creation order), reservation ends first at equal times
    kind: Literal["step", "offer_timeout", "reservation_end", "wrap_up_end"] = field(compare=False)
    task: _Task | None = field(default=None, compare=False)
    offer: int = field(default=0, compare=False)
    agent: _Agent | None = field(default=None, compare=False)
    gen: int = field(default=0, compare=False)


# ----- conditions -----


def _holds(cond: Condition | None, skills: dict[str, int]) -> bool:
    """Whether an agent with these skills meets the condition (a missing skill is level 0)."""
    if cond is None:
        return True
    if isinstance(cond, Skill):
        return skills.get(cond.skill, 0) >= cond.min_level
    if isinstance(cond, AllOf):
        return all(_holds(c, skills) for c in cond.of)
    if isinstance(cond, AnyOf):
        return any(_holds(c, skills) for c in cond.of)
    return not _holds(cond.condition, skills)


def _simplify(cond: Condition) -> Condition | bool:
    """The condition with constant parts folded away: a skill at level 0 always
    holds, an ``all`` with a part that never holds never holds, an ``any`` with
    a part that always holds always holds, nested ``all``/``any`` are flattened
    and a double negation cancels. What is left is what the condition asks for."""
    if isinstance(cond, Skill):
        return True if cond.min_level == 0 else cond
    if isinstance(cond, Not):
        inner = _simplify(cond.condition)
        if isinstance(inner, bool):
            return not inner
        return inner.condition if isinstance(inner, Not) else Not(condition=inner)
    is_all = isinstance(cond, AllOf)
    absorbing, neutral = (False, True) if is_all else (True, False)
    parts: list[Condition] = []
    for part in cond.of:
        s = _simplify(part)
        if s is absorbing:
            return absorbing
        if s is neutral:
            continue
        assert not isinstance(s, bool)
        if isinstance(s, AllOf if is_all else AnyOf):
            parts.extend(s.of)
        else:
            parts.append(s)
    if not parts:
        return neutral
    if len(parts) == 1:
        return parts[0]
    return AllOf(of=parts) if is_all else AnyOf(of=parts)


def _proficiency(cond: Condition | bool, skills: dict[str, int]) -> int:
    """Sum of the agent's levels in the skills a (simplified) condition asks
    for, outside negations: what ``most_skilled`` ranks by."""
    if isinstance(cond, bool | Not):
        return 0
    if isinstance(cond, Skill):
        return skills.get(cond.skill, 0)
    return sum(_proficiency(c, skills) for c in cond.of)


def _drop_skill(cond: Condition, skill: str) -> Condition:
    """Every condition on ``skill``, and its negation, holds for everyone."""
    if isinstance(cond, Skill):
        return AllOf(of=[]) if cond.skill == skill else cond
    if isinstance(cond, Not):
        if isinstance(cond.condition, Skill) and cond.condition.skill == skill:
            return AllOf(of=[])
        return Not(condition=_drop_skill(cond.condition, skill))
    parts = [_drop_skill(c, skill) for c in cond.of]
    return AllOf(of=parts) if isinstance(cond, AllOf) else AnyOf(of=parts)


def _lower_level(cond: Condition, skill: str, level: int) -> Condition:
    """Every condition on ``skill`` asks for ``level`` at most."""
    if isinstance(cond, Skill):
        return Skill(skill=skill, min_level=min(cond.min_level, level)) if cond.skill == skill else cond
    if isinstance(cond, Not):
        return Not(condition=_lower_level(cond.condition, skill, level))
    parts = [_lower_level(c, skill, level) for c in cond.of]
    return AllOf(of=parts) if isinstance(cond, AllOf) else AnyOf(of=parts)


def _relax(req: Condition | None, action: StepAction) -> Condition | None:
    """One relaxation step applied to a requirement as written."""
    if isinstance(action, DropCondition):
        return None if req is None else _drop_skill(req, action.skill)
    if isinstance(action, LowerLevel):
        return None if req is None else _lower_level(req, action.skill, action.min_level)
    if isinstance(action, AddCondition):
        return action.condition if req is None else AllOf(of=[req, action.condition])
    return req


def _check_condition(field_: str, cond: Condition) -> None:
    nodes = 0

    def walk(c: Condition, depth: int) -> None:
        nonlocal nodes
        nodes += 1
        if depth > _MAX_CONDITION_DEPTH:
            raise _invalid_input(field_, f"nested deeper than {_MAX_CONDITION_DEPTH} levels")
        if nodes > _MAX_CONDITION_NODES:
            raise _invalid_input(field_, f"more than {_MAX_CONDITION_NODES} conditions")
        if isinstance(c, Skill):
            if not c.skill:
                raise _invalid_input(field_, "expected a skill name that is not empty")
        elif isinstance(c, Not):
            walk(c.condition, depth + 1)
        else:
            for x in c.of:
                walk(x, depth + 1)

    walk(cond, 0)


def _check_name(field_: str, name: str) -> None:
    if not name:
        raise _invalid_input(field_, "expected a non-empty string")
    if len(name.encode()) > 256:
        raise _invalid_input(field_, f"expected at most 256 bytes, got {len(name.encode())}")


def _strategy_name(strategy: Strategy) -> str:
    if isinstance(strategy, LongestIdle):
        return "longest_idle_per_channel" if strategy.per_channel else "longest_idle"
    return {
        LeastOccupied: "least_occupied",
        MostSkilled: "most_skilled",
        RoundRobin: "round_robin",
        FewestHandled: "fewest_handled",
    }[type(strategy)]


# ----- the engine -----


class ReferenceEngine:
    """The routing semantics, brute force. A drop-in for :class:`omniroute.Engine`
    (``process``, ``apply``, ``tick``, ``check_invariants``, ``now``,
    ``task_count``, ``counters``) over the subset this module covers."""

    def __init__(self, config: EngineConfig, now: float = 0.0) -> None:
        if not math.isfinite(now):
            raise InvalidInputError(f"now: expected a finite number of seconds, got {now}")
        self._now = now
        self._max_missed = config.max_missed_offers
        self._channels: list[ChannelConfig] = []
        self._queues: list[QueueConfig] = []
        self._agents: list[_Agent] = []
        self._tasks: dict[str, _Task] = {}
        self._offers: dict[int, _Task] = {}
        # The agent round robin chose last, per queue.
        self._rr_last: list[int | None] = []
        self._timers: list[_Timer] = []
        self._next_offer = 1
        self._next_seq = 0
        self._next_timer = 0
        self._counts = {"offers": 0, "arrivals": 0, "inputs": 0, "refused": 0}
        self._out: list[Output] = []
        self._configure(config)

    # ----- configuration -----

    def _configure(self, config: EngineConfig) -> None:
        for i, ch in enumerate(config.channels):
            if ch.inactive_after is not None:
                raise NotImplementedError(f"channels[{i}].inactive_after: inactivity is not modelled")
            if ch.cost < 1:
                raise InvalidConfigError(f"channels[{i}].cost: expected a whole number of capacity units ≥ 1")
            if ch.max_per_agent == 0:
                raise InvalidConfigError(f"channels[{i}].max_per_agent: expected a number ≥ 1, or none")
            known = self._channel_ix(ch.name)
            if known is None:
                self._channels.append(ch)
            else:
                self._channels[known] = ch
        names = [q.name for q in config.queues]
        for i, q in enumerate(config.queues):
            if names.index(q.name) != i:
                raise InvalidConfigError(f"queues[{i}].name: duplicate queue name {q.name!r}")
            if not isinstance(q.strategy, _SUPPORTED_STRATEGIES):
                raise NotImplementedError(
                    f"queues[{i}].strategy: {type(q.strategy).__name__} is not modelled"
                )
            last = 0.0
            for j, step in enumerate(q.steps):
                if step.after_seconds < last:
                    raise InvalidConfigError(f"queues[{i}].steps[{j}].after_seconds: steps must be in order")
                last = step.after_seconds
                if isinstance(step.action, AddQueue) and (
                    step.action.queue == q.name or step.action.queue not in names
                ):
                    raise InvalidConfigError(f"queues[{i}].steps[{j}].action.queue: {step.action.queue!r}")
            self._queues.append(q)
            self._rr_last.append(None)
        for i, a in enumerate(config.agents):
            if self._agent_ix(a.id) is not None:
                raise InvalidConfigError(f"agents[{i}].id: duplicate agent id {a.id!r}")
            self._add_agent(i, a)

    def _add_agent(self, i: int, cfg: AgentConfig) -> None:
        if cfg.capacity < 1:
            raise InvalidConfigError(f"agents[{i}].capacity: expected a whole number of capacity units ≥ 1")
        for s, level in cfg.skills.items():
            if level < 1:
                raise InvalidConfigError(f"agents[{i}].skills.{s}: expected a level from 1 to 255")
        queues: list[tuple[int, int]] = []
        for name, p in cfg.queues.items():
            q = self._queue_ix(name)
            if q is None:
                raise InvalidConfigError(f"agents[{i}].queues.{name}: unknown queue")
            queues.append((q, p))
        queues.sort(key=lambda qp: (-qp[1], qp[0]))
        self._agents.append(
            _Agent(
                index=len(self._agents),
                id=cfg.id,
                capacity=cfg.capacity,
                skills=dict(cfg.skills),
                queues=queues,
                status=_AVAILABLE if cfg.available else _OFFLINE,
                idle_since=self._now,
            )
        )

    def _channel_ix(self, name: str) -> int | None:
        return next((i for i, c in enumerate(self._channels) if c.name == name), None)

    def _queue_ix(self, name: str) -> int | None:
        return next((i for i, q in enumerate(self._queues) if q.name == name), None)

    def _agent_ix(self, id_: str) -> int | None:
        return next((a.index for a in self._agents if a.id == id_), None)

    # ----- the public face -----

    def process(self, events: Sequence[Input], now: float) -> BatchResult:
        """Apply a batch of input events at ``now``, after the timers due by then.
        Each event is applied whole or refused whole."""
        for i, event in enumerate(events):
            self._check_supported(i, event)
        self._advance(now)
        errors: list[InputError] = []
        for i, event in enumerate(events):
            self._counts["inputs"] += 1
            try:
                self._apply(event)
            except _RefusedError as e:
                self._counts["refused"] += 1
                errors.append(InputError(index=i, kind=e.kind, message=e.message))
        return self._result(errors)

    def apply(self, event: Input, now: float) -> list[Output]:
        """Apply one event and return what it caused; raise if it is refused."""
        result = self.process([event], now)
        if result.errors:
            raise error_for_kind(result.errors[0].kind, result.errors[0].message)
        return result.events

    def tick(self, now: float) -> BatchResult:
        """Fire the timers due by ``now``."""
        self._advance(now)
        return self._result([])

    @property
    def now(self) -> float:
        return self._now

    @property
    def task_count(self) -> int:
        return len(self._tasks)

    def counters(self) -> Counters:
        return Counters(**self._counts)

    def phase(self, task: str) -> Phase | None:
        """Where a task is (waiting, offered or assigned), or ``None`` if the engine does not hold it."""
        found = self._tasks.get(task)
        return None if found is None else found.phase

    def _result(self, errors: list[InputError]) -> BatchResult:
        events, self._out = self._out, []
        return BatchResult(now=self._now, events=events, errors=errors)

    def _check_supported(self, i: int, event: Input) -> None:
        if not isinstance(event, _SUPPORTED_INPUTS):
            raise NotImplementedError(f"events[{i}]: {type(event).__name__} is not modelled")
        if isinstance(event, SetAgentState):
            state = event.state
            # The engine decodes only these three requests; anything else
            # makes the whole batch undecodable.
            if state.state not in ("offline", "available", "away") or (
                (state.state == "away") != (state.reason is not None)
            ):
                raise InvalidInputError(f"events[{i}] (SetAgentState): not a state that can be requested")

    def _advance(self, now: float) -> None:
        if not math.isfinite(now):
            raise InvalidInputError(f"now: expected a finite number of seconds, got {now}")
        if now < self._now:
            raise InvalidInputError(
                f"now: time went backwards: {now} is before the engine's time {self._now}"
            )
        self._fire_timers(now)
        self._now = now

    def _apply(self, event: Input) -> None:
        if isinstance(event, AddTask):
            self._add_task(event.task)
        elif isinstance(event, Accept):
            self._accept(event.offer)
        elif isinstance(event, Reject):
            self._reject(event.offer)
        elif isinstance(event, Cancel):
            self._cancel(event.task)
        elif isinstance(event, Complete):
            self._complete(event.task)
        elif isinstance(event, EndWrapUp):
            self._end_wrap_up(event.agent)
        elif isinstance(event, SetAgentState):
            self._set_agent_state(event.agent, event.state)
        elif isinstance(event, Transfer):
            self._transfer(event.task, event.to_queue, event.to_agent)
        elif isinstance(event, SetPriority):
            self._task(event.task).priority = event.priority
        else:  # pragma: no cover - refused by _check_supported
            raise NotImplementedError(type(event).__name__)

    # ----- derived quantities, computed on demand -----

    def _task(self, id_: str) -> _Task:
        task = self._tasks.get(id_)
        if task is None:
            raise _unknown("task", id_)
        return task

    def _agent(self, id_: str) -> _Agent:
        a = self._agent_ix(id_)
        if a is None:
            raise _unknown("agent", id_)
        return self._agents[a]

    def _live(self, task: _Task) -> bool:
        return self._tasks.get(task.id) is task

    def _requirement(self, task: _Task) -> _Requirement:
        """The task's base requirement relaxed by every step it has reached, and
        its queue plus the overflow queues those steps added."""
        cond = task.requires
        serving = [task.queue]
        for step in self._queues[task.queue].steps[: task.step]:
            if isinstance(step.action, AddQueue):
                q = self._queue_ix(step.action.queue)
                if q is not None and q not in serving:
                    serving.append(q)
            cond = _relax(cond, step.action)
        return _Requirement(cond, tuple(serving))

    def _loads(self, agent: _Agent) -> tuple[int, int]:
        """Capacity held by the agent's firm and interruptible work."""
        firm = interruptible = 0
        for t in agent.tasks:
            ch = self._channels[t.channel]
            if ch.interruptible:
                interruptible += ch.cost
            else:
                firm += ch.cost
        return firm, interruptible

    def _used(self, agent: _Agent) -> int:
        """Capacity in use; interruptible work counts only while firm work leaves room for it."""
        firm, interruptible = self._loads(agent)
        return firm + interruptible if firm + interruptible <= agent.capacity else firm

    def _fits(self, agent: _Agent, channel: int) -> bool:
        """Whether one more task of the channel fits: under the channel's limit,
        and within capacity (firm work ignores interruptible work)."""
        ch = self._channels[channel]
        if (
            ch.max_per_agent is not None
            and sum(t.channel == channel for t in agent.tasks) >= ch.max_per_agent
        ):
            return False
        firm, interruptible = self._loads(agent)
        base = firm + interruptible if ch.interruptible else firm
        return base + ch.cost <= agent.capacity

    def _has_room(self, agent: _Agent) -> bool:
        return agent.status == _AVAILABLE and any(self._fits(agent, c) for c in range(len(self._channels)))

    def _can_take(self, agent: _Agent, task: _Task, req: _Requirement) -> bool:
        """Whether the agent may be offered the waiting task now."""
        if agent.status != _AVAILABLE or agent.index in task.excluded or not self._fits(agent, task.channel):
            return False
        r = task.reservation
        if r is not None:
            return agent.index in r.agents and (r.named or _holds(req.condition, agent.skills))
        serves = any(agent.priority_for(q) is not None for q in req.serving)
        return serves and _holds(req.condition, agent.skills)

    def _effective_priority(self, task: _Task) -> float:
        rate = self._queues[task.queue].aging_per_second
        return float(task.priority) + rate * (self._now - task.arrived_at)

    def _members(self, queue: int) -> list[int]:
        return [a.index for a in self._agents if a.priority_for(queue) is not None]

    def _rotation_distance(self, queue: int, agent: _Agent) -> float:
        """How many members of the queue come after the one round robin chose
        last and before this agent (members in creation order, wrapping)."""
        members = self._members(queue)
        n = max(len(members), 1)
        pos = bisect_left(members, agent.index)
        last = self._rr_last[queue]
        if last is None:
            last_pos = n - 1
        else:
            p = bisect_left(members, last)
            last_pos = p if p < len(members) and members[p] == last else (p + n - 1) % n
        return float((pos + n - last_pos - 1) % n)

    def _score(self, task: _Task, agent: _Agent, req: _Requirement) -> tuple[float, list[ScorePart]]:
        """The queue strategy's score for an agent (higher wins) and its parts."""
        strategy = self._queues[task.queue].strategy
        feature: str
        if isinstance(strategy, LongestIdle):
            # An agent holding work is not idle (so chats spread over idle
            # agents); per channel, one holding work of that channel is not.
            if strategy.per_channel:
                since = agent.channel_idle_since.get(task.channel, agent.idle_since)
                busy = any(t.channel == task.channel for t in agent.tasks)
                feature, value, weight = "channel_idle_seconds", 0.0 if busy else self._now - since, 1.0
            else:
                value = 0.0 if agent.tasks else self._now - agent.idle_since
                feature, weight = "idle_seconds", 1.0
        elif isinstance(strategy, LeastOccupied):
            feature, value, weight = "occupancy", self._used(agent) / max(agent.capacity, 1), -1.0
        elif isinstance(strategy, MostSkilled):
            cond = True if req.condition is None else _simplify(req.condition)
            feature, value, weight = "skill_level", float(_proficiency(cond, agent.skills)), 1.0
        elif isinstance(strategy, FewestHandled):
            feature, value, weight = "handled", float(agent.handled), -1.0
        else:
            feature, value, weight = "rotation_distance", self._rotation_distance(task.queue, agent), -1.0
        return weight * value, [ScorePart(feature=feature, value=value, weight=weight)]

    # ----- matching -----

    def _match_task(self, task: _Task) -> None:
        """Offer a waiting task to the best free agent who may take it."""
        if not self._live(task) or task.phase != "waiting":
            return
        req = self._requirement(task)
        best: tuple[float, float, int] | None = None
        best_agent: _Agent | None = None
        for agent in self._agents:
            if not self._can_take(agent, task, req):
                continue
            score = self._score(task, agent, req)[0]
            # Highest score, then idle since earlier, then created first.
            if (
                best is None
                or score > best[0]
                or (score == best[0] and (agent.idle_since, agent.index) < best[1:])
            ):
                best, best_agent = (score, agent.idle_since, agent.index), agent
        if best_agent is None:
            return
        strategy = self._queues[task.queue].strategy
        score, parts = self._score(task, best_agent, req)
        self._offer(task, best_agent, "task_arrived", _strategy_name(strategy), score, parts)
        if isinstance(strategy, RoundRobin):
            self._rr_last[task.queue] = best_agent.index

    def _best_task_for(self, agent: _Agent) -> tuple[_Task, bool] | None:
        """The waiting task the agent should take next, and whether it is reserved for it."""
        reserved: _Task | None = None
        best: _Task | None = None
        best_key: tuple[int, float, float, int] | None = None
        for task in self._tasks.values():
            if task.phase != "waiting":
                continue
            req = self._requirement(task)
            if not self._can_take(agent, task, req):
                continue
            if task.reservation is not None:
                if reserved is None or (task.arrived_at, task.seq) < (reserved.arrived_at, reserved.seq):
                    reserved = task
                continue
            tier = max(p for q, p in agent.queues if q in req.serving)
            key = (tier, self._effective_priority(task), -task.arrived_at, -task.seq)
            if best_key is None or key > best_key:
                best, best_key = task, key
        if reserved is not None:
            return reserved, True
        return None if best is None else (best, False)

    def _match_agent(self, agent: _Agent) -> None:
        """Offer the agent work while it has room and there is work it may take."""
        while self._has_room(agent):
            found = self._best_task_for(agent)
            if found is None:
                return
            task, reserved = found
            tier = agent.priority_for(task.queue) or 0
            eff = self._effective_priority(task)
            parts = [
                ScorePart(feature="queue_priority", value=float(tier), weight=0.0),
                ScorePart(feature="effective_priority", value=eff, weight=1.0),
                ScorePart(feature="wait_seconds", value=self._now - task.arrived_at, weight=0.0),
            ]
            strategy = "reserved" if reserved else "agent_queue_order"
            self._offer(task, agent, "agent_freed", strategy, eff, parts)

    def _offer(
        self,
        task: _Task,
        agent: _Agent,
        trigger: Trigger,
        strategy: str,
        score: float,
        parts: list[ScorePart],
    ) -> None:
        offer = self._next_offer
        self._next_offer += 1
        expires_at = self._now + self._queues[task.queue].offer_timeout
        reserved = task.reservation is not None and agent.index in task.reservation.agents
        task.phase, task.offer, task.agent = "offered", offer, agent
        agent.tasks.append(task)
        self._offers[offer] = task
        self._schedule(_Timer(expires_at, 0, "offer_timeout", task=task, offer=offer))
        self._counts["offers"] += 1
        self._emit(
            OfferMade(
                at=self._now,
                offer=offer,
                task=task.id,
                agent=agent.id,
                queue=self._queues[task.queue].name,
                channel=self._channels[task.channel].name,
                expires_at=expires_at,
                reason=OfferReason(
                    trigger=trigger,
                    strategy=strategy,
                    score=score,
                    parts=parts,
                    step=task.step,
                    requirement=self._requirement(task).text,
                    reserved=reserved,
                ),
            )
        )
        self._emit_load(agent)

    def _release(self, agent: _Agent, task: _Task) -> None:
        agent.tasks.remove(task)
        task.phase, task.offer, task.agent = "waiting", 0, None

    def _after_release(self, agent: _Agent) -> None:
        self._emit_load(agent)
        self._match_agent(agent)

    # ----- events -----

    def _emit(self, event: Output) -> None:
        self._out.append(event)

    def _emit_load(self, agent: _Agent) -> None:
        assigned = sum(t.phase == "assigned" for t in agent.tasks)
        self._emit(
            AgentLoad(
                at=self._now, agent=agent.id, used=self._used(agent), capacity=agent.capacity, tasks=assigned
            )
        )

    def _emit_status(self, agent: _Agent) -> None:
        self._emit(AgentStateChanged(at=self._now, agent=agent.id, status=agent.status))

    def _task_names(self, task: _Task) -> tuple[str, str]:
        return self._queues[task.queue].name, self._channels[task.channel].name

    # ----- input handlers: check everything first, then change state -----

    def _add_task(self, nt: NewTask) -> None:
        _check_name("task.id", nt.id)
        if nt.id in self._tasks:
            raise _RefusedError("duplicate_id", f'duplicate task "{nt.id}": task ids must be unique')
        channel = self._channel_ix(nt.channel)
        if channel is None:
            raise _unknown("channel", nt.channel)
        queue = self._queue_ix(nt.queue)
        if queue is None:
            raise _unknown("queue", nt.queue)
        if nt.requires is not None:
            _check_condition("task.requires", nt.requires)
        preferred = self._agent_list("task.preferred_agents", nt.preferred_agents)
        excluded = set(self._agent_list("task.excluded_agents", nt.excluded_agents))
        # An agent named twice is one preference; an excluded one is none.
        preferred = sorted(set(preferred) - excluded)
        until = nt.preferred_until
        if preferred and until is None:
            raise _invalid_input("task.preferred_until", "required when preferred_agents is given")
        if preferred and until is not None and not math.isfinite(until):
            raise _invalid_input("task.preferred_until", f"expected a finite number of seconds, got {until}")
        arrived_at = self._now if nt.enqueued_at is None else nt.enqueued_at
        if not math.isfinite(arrived_at):
            raise _invalid_input("task.enqueued_at", f"expected a finite number of seconds, got {arrived_at}")
        if arrived_at > self._now:
            raise _invalid_input("task.enqueued_at", f"{arrived_at} is after now ({self._now})")
        reservation = None
        if preferred and until is not None and until > self._now:
            reservation = _Reservation(agents=preferred, until=until, named=False)
        task = _Task(
            id=nt.id,
            seq=self._next_seq,
            channel=channel,
            queue=queue,
            priority=nt.priority,
            requires=nt.requires,
            reservation=reservation,
            excluded=excluded,
            arrived_at=arrived_at,
            queued_at=arrived_at,
        )
        self._next_seq += 1
        self._tasks[nt.id] = task
        self._counts["arrivals"] += 1
        task.step = self._due_step(task)
        self._schedule_task_timers(task)
        self._emit(
            TaskQueued(
                at=self._now,
                task=nt.id,
                queue=nt.queue,
                channel=nt.channel,
                priority=nt.priority,
                arrived_at=arrived_at,
            )
        )
        self._match_task(task)

    def _agent_list(self, field_: str, ids: list[str]) -> list[int]:
        out = []
        for i, id_ in enumerate(ids):
            a = self._agent_ix(id_)
            if a is None:
                raise _invalid_input(f"{field_}[{i}]", f"unknown agent {id_!r}")
            out.append(a)
        return out

    def _pending_offer(self, offer: int) -> tuple[_Task, _Agent]:
        task = self._offers.get(offer)
        if task is not None:
            assert task.agent is not None
            return task, task.agent
        if 0 < offer < self._next_offer:
            raise _RefusedError("invalid_transition", f"offer {offer} is no longer pending")
        raise _unknown("offer", str(offer))

    def _accept(self, offer: int) -> None:
        task, agent = self._pending_offer(offer)
        del self._offers[offer]
        task.phase = "assigned"
        task.reservation = None
        agent.missed = 0
        agent.handled += 1
        queue, channel = self._task_names(task)
        self._emit(
            TaskAssigned(
                at=self._now,
                task=task.id,
                agent=agent.id,
                queue=queue,
                channel=channel,
                wait=self._now - task.arrived_at,
            )
        )
        self._emit_load(agent)

    def _reject(self, offer: int) -> None:
        task, agent = self._pending_offer(offer)
        self._emit(OfferRejected(at=self._now, offer=offer, task=task.id, agent=agent.id))
        agent.missed = 0  # an answer, even a no, ends a run of missed offers
        self._withdraw_offer(task, agent)

    def _withdraw_offer(self, task: _Task, agent: _Agent) -> None:
        """The agent declined the offer (rejected it or let it time out): it is
        never offered the task again, and the task keeps its place."""
        del self._offers[task.offer]
        self._release(agent, task)
        task.excluded.add(agent.index)
        task.declined.append(agent.index)
        r = task.reservation
        if r is not None and all(a in task.excluded for a in r.agents):
            # Everyone it was reserved for has declined it: waiting longer
            # for them would only keep the customer waiting.
            task.reservation = None
            self._emit(ReservationExpired(at=self._now, task=task.id))
        self._catch_up_steps(task)
        self._match_task(task)
        self._after_release(agent)

    def _rescind(self, task: _Task, why: str) -> _Agent:
        """Withdraw a pending offer without holding it against the agent."""
        agent = task.agent
        assert agent is not None
        offer = task.offer
        del self._offers[offer]
        self._release(agent, task)
        self._emit(OfferRescinded(at=self._now, offer=offer, task=task.id, agent=agent.id, why=why))
        return agent

    def _cancel(self, id_: str) -> None:
        task = self._task(id_)
        if task.phase == "assigned":
            raise _RefusedError("invalid_transition", f"task {id_!r} is assigned: complete it instead")
        agent = self._rescind(task, "cancelled") if task.phase == "offered" else None
        queue, channel = self._task_names(task)
        wait = self._now - task.arrived_at
        self._emit(TaskCancelled(at=self._now, task=task.id, queue=queue, channel=channel, wait=wait))
        del self._tasks[id_]
        if agent is not None:
            self._after_release(agent)

    def _complete(self, id_: str) -> None:
        task = self._task(id_)
        agent = task.agent
        if task.phase != "assigned" or agent is None:
            raise _RefusedError(
                "invalid_transition", f"task {id_!r} is not assigned: only an assigned task can be completed"
            )
        self._release(agent, task)
        queue, channel = self._task_names(task)
        self._emit(TaskCompleted(at=self._now, task=task.id, agent=agent.id, queue=queue, channel=channel))
        del self._tasks[id_]
        agent.idle_since = self._now
        agent.channel_idle_since[task.channel] = self._now
        wrap = self._queues[task.queue].wrap_up
        if wrap is not None and wrap > 0 and agent.status == _AVAILABLE:
            agent.status = _WRAP_UP
            agent.wrap_gen += 1
            self._schedule(_Timer(self._now + wrap, 0, "wrap_up_end", agent=agent, gen=agent.wrap_gen))
            self._emit_status(agent)
        self._after_release(agent)

    def _end_wrap_up(self, id_: str) -> None:
        agent = self._agent(id_)
        if agent.status != _WRAP_UP:
            raise _RefusedError("invalid_transition", f"agent {id_!r} is not in wrap-up")
        self._become_available(agent)

    def _become_available(self, agent: _Agent) -> None:
        agent.status = _AVAILABLE
        agent.missed = 0
        agent.idle_since = self._now
        self._emit_status(agent)
        self._match_agent(agent)

    def _set_agent_state(self, id_: str, requested: AgentState) -> None:
        agent = self._agent(id_)
        state = AgentStatus(state=requested.state, reason=requested.reason)
        if state.state == "away":
            _check_name("state.reason", state.reason or "")
        if agent.status == state:
            return
        if state.state == "available":
            self._become_available(agent)
            return
        agent.status = state
        self._emit_status(agent)
        self._rescind_offers_of(agent, "agent_unavailable")

    def _rescind_offers_of(self, agent: _Agent, why: str) -> None:
        """Withdraw every pending offer of an agent who can no longer answer, then route those tasks again."""
        pending = [t for t in agent.tasks if t.phase == "offered"]
        for task in pending:
            self._rescind(task, why)
            self._catch_up_steps(task)
        if pending:
            self._emit_load(agent)
        for task in pending:
            self._match_task(task)

    def _transfer(self, id_: str, to_queue: str | None, to_agent: str | None) -> None:
        task = self._task(id_)
        if to_queue is not None and to_agent is None:
            queue = self._queue_ix(to_queue)
            if queue is None:
                raise _unknown("queue", to_queue)
            target = None
        elif to_agent is not None and to_queue is None:
            queue, target = None, self._agent(to_agent)
        else:
            raise _invalid_input("to_queue", "give exactly one of to_queue and to_agent")
        if target is not None and task.agent is target:
            raise _RefusedError("invalid_transition", f"task {id_!r} is already with agent {target.id!r}")
        # Checked: apply.
        from_agent = rescinded_from = None
        if task.phase == "offered":
            rescinded_from = self._rescind(task, "transferred")
        elif task.phase == "assigned":
            from_agent = task.agent
            assert from_agent is not None
            self._release(from_agent, task)
        from_queue = task.queue
        if queue is not None:
            task.queue = queue
            task.queued_at = self._now
            task.step = 0
            task.reservation = None
            if from_agent is not None:
                # The transferring agent is not offered the task back.
                task.excluded.add(from_agent.index)
        else:
            assert target is not None
            task.reservation = _Reservation(agents=[target.index], until=math.inf, named=True)
            task.excluded.discard(target.index)
        queue_name, channel_name = self._task_names(task)
        self._emit(
            TaskTransferred(
                at=self._now,
                task=task.id,
                from_queue=self._queues[from_queue].name,
                channel=channel_name,
                from_agent=None if from_agent is None else from_agent.id,
                to_queue=to_queue,
                to_agent=None if target is None else target.id,
            )
        )
        task.step = self._due_step(task)
        self._schedule_task_timers(task)
        if queue is not None:
            self._emit(
                TaskQueued(
                    at=self._now,
                    task=task.id,
                    queue=queue_name,
                    channel=channel_name,
                    priority=task.priority,
                    arrived_at=task.arrived_at,
                )
            )
        self._match_task(task)
        for agent in (from_agent, rescinded_from):
            if agent is not None:
                self._after_release(agent)

    # ----- timers -----

    def _schedule(self, timer: _Timer) -> None:
        # A reservation that ends at t is over for every decision made at t.
        rank = 0 if timer.kind == "reservation_end" else 1
        timer.seq = rank * 2**62 + self._next_timer
        self._next_timer += 1
        heapq.heappush(self._timers, timer)

    def _fire_timers(self, now: float) -> None:
        """Fire every timer due by ``now``, each at its own time."""
        while self._timers and self._timers[0].at <= now:
            timer = heapq.heappop(self._timers)
            self._now = max(self._now, timer.at)
            self._fire(timer)

    def _fire(self, timer: _Timer) -> None:
        task, agent = timer.task, timer.agent
        if timer.kind == "step":
            assert task is not None
            if self._live(task) and task.phase == "waiting":
                self._catch_up_steps(task)
                self._match_task(task)
        elif timer.kind == "offer_timeout":
            assert task is not None
            if self._live(task) and task.phase == "offered" and task.offer == timer.offer:
                assert task.agent is not None
                self._offer_timed_out(task, task.agent)
        elif timer.kind == "reservation_end":
            assert task is not None
            r = task.reservation
            if self._live(task) and r is not None and r.until <= self._now:
                task.reservation = None
                self._emit(ReservationExpired(at=self._now, task=task.id))
                self._match_task(task)
        else:
            assert agent is not None
            if agent.status == _WRAP_UP and agent.wrap_gen == timer.gen:
                self._become_available(agent)

    def _offer_timed_out(self, task: _Task, agent: _Agent) -> None:
        self._emit(OfferTimedOut(at=self._now, offer=task.offer, task=task.id, agent=agent.id))
        agent.missed += 1
        silent = 0 < self._max_missed <= agent.missed and agent.status == _AVAILABLE
        if silent:
            agent.status = _NOT_RESPONDING
            self._emit_status(agent)
        self._withdraw_offer(task, agent)
        if silent:
            self._rescind_offers_of(agent, "agent_not_responding")

    def _due_step(self, task: _Task) -> int:
        """How many relaxation steps of its queue are due for the task now."""
        due = 0
        for step in self._queues[task.queue].steps:
            if task.queued_at + step.after_seconds > self._now:
                break
            due += 1
        return due

    def _catch_up_steps(self, task: _Task) -> None:
        """Bring a task back from an offer, or woken by its step timer, to the
        step due now; report a step reached and set the timer for the next."""
        due = self._due_step(task)
        if due > task.step:
            task.step = due
            queue = self._queues[task.queue].name
            text = self._requirement(task).text
            self._emit(StepReached(at=self._now, task=task.id, queue=queue, step=due, requirement=text))
        task.step = due
        self._schedule_step(task)

    def _schedule_step(self, task: _Task) -> None:
        steps = self._queues[task.queue].steps
        if task.step < len(steps):
            self._schedule(_Timer(task.queued_at + steps[task.step].after_seconds, 0, "step", task=task))

    def _schedule_task_timers(self, task: _Task) -> None:
        self._schedule_step(task)
        r = task.reservation
        if r is not None and math.isfinite(r.until):
            self._schedule(_Timer(r.until, 0, "reservation_end", task=task))

    # ----- invariants -----

    def check_invariants(self) -> None:
        """Raise :class:`~omniroute.errors.InvariantError` if the model's state is
        inconsistent: capacity exceeded, an offer not recorded, or a waiting task
        beside an agent free to take it."""
        for agent in self._agents:
            firm, interruptible = self._loads(agent)
            _ensure(firm <= agent.capacity, f"agent {agent.id!r} holds firm work over its capacity")
            _ensure(
                firm + interruptible <= agent.capacity or firm > 0, f"agent {agent.id!r} is over capacity"
            )
            for c, ch in enumerate(self._channels):
                held = sum(t.channel == c for t in agent.tasks)
                _ensure(
                    ch.max_per_agent is None or held <= ch.max_per_agent, f"agent {agent.id!r} over {ch.name}"
                )
            for t in agent.tasks:
                _ensure(t.agent is agent and self._live(t), f"agent {agent.id!r} holds a task not its own")
        for task in self._tasks.values():
            if task.phase == "offered":
                _ensure(self._offers.get(task.offer) is task, f"offer of task {task.id!r} is not recorded")
            if task.phase == "waiting":
                req = self._requirement(task)
                free = [a.id for a in self._agents if self._can_take(a, task, req)]
                _ensure(not free, f"task {task.id!r} waits while agent {free[:1]} is free to take it")
        offered = sum(t.phase == "offered" for t in self._tasks.values())
        _ensure(
            len(self._offers) == offered, f"{len(self._offers)} offers recorded for {offered} offered tasks"
        )


def _ensure(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantError(f"invariant violated: {message}")
