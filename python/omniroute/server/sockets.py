"""The live stream's fan-out: one subscription to the event bus for all the
sockets, each event encoded once and routed to the sockets it concerns.

A thousand agents' sockets must not mean a thousand subscribers each
filtering every event: the dispatcher keeps, per task, the agent it is
offered to or held by, and hands each event to that agent's sockets and to
the watchers (supervisors, tokens). Each socket has a bounded buffer; a
client that stops reading loses its oldest messages, is told how many
(``{"lost": n}``), and never holds up routing or the other sockets.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import anyio
import msgspec

from omniroute.model import AgentStateChanged, OfferMade, TaskAssigned
from omniroute.runtime.events import ConsultSent, DeliveryUpdated, Envelope, MessageAdded, to_cloudevent
from omniroute.runtime.runtime import Runtime

__all__ = ["Dispatcher", "Listener"]

# Events after which a task is no longer an agent's: its messages stop going there.
_ENDS = frozenset(
    {
        "offer_rescinded",
        "offer_rejected",
        "offer_timed_out",
        "task_completed",
        "task_cancelled",
        "task_transferred",
    }
)
_encoder = msgspec.json.Encoder()


class Listener:
    """One socket's queue of encoded messages, bounded: the oldest go first."""

    def __init__(self, agent: str | None, limit: int) -> None:
        self.agent = agent
        self.limit = limit
        self.lost = 0
        self._queue: deque[tuple[str, OfferMade | None]] = deque()
        self._ready = anyio.Event()

    def push(self, text: str, offer: OfferMade | None = None) -> None:
        if len(self._queue) >= self.limit:
            self._queue.popleft()
            self.lost += 1
        self._queue.append((text, offer))
        self._ready.set()

    async def take(self) -> list[tuple[str, OfferMade | None]]:
        """Everything queued, waiting for at least one."""
        await self._ready.wait()
        self._ready = anyio.Event()
        items = list(self._queue)
        self._queue.clear()
        return items


class Dispatcher:
    """Routes each event to the sockets it concerns (run it once, beside the runtime)."""

    def __init__(self, runtime: Runtime, *, socket_buffer: int = 1000) -> None:
        self.runtime = runtime
        self.socket_buffer = socket_buffer
        self._agents: dict[str, set[Listener]] = {}
        self._watchers: set[Listener] = set()
        # Task -> the agent it is offered to or held by.
        self._holders: dict[str, str] = {}
        # Agent -> (state, since when), as the events have told (the wallboard's time in state).
        self.since: dict[str, tuple[str, float]] = {}

    def holder(self, task: str) -> str | None:
        """The agent a task is offered to or held by, as far as the events dispatched so far tell."""
        return self._holders.get(task)

    def listen(self, agent: str | None) -> Listener:
        """A new socket: an agent's (its own events) or a watcher's (every event)."""
        listener = Listener(agent, self.socket_buffer)
        if agent is None:
            self._watchers.add(listener)
        else:
            self._agents.setdefault(agent, set()).add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        if listener.agent is None:
            self._watchers.discard(listener)
            return
        listeners = self._agents.get(listener.agent)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._agents[listener.agent]

    def signal(self, channel: str, interaction: str, payload: dict[str, Any]) -> None:
        """A customer's signal (typing) for the agent holding the interaction,
        and the watchers; never stored, lost if nobody listens."""
        holder = self._holders.get(interaction)
        listeners = list(self._agents.get(holder, ())) if holder is not None else []
        if not listeners and not self._watchers:
            return
        text = _encoder.encode(
            {"signal": {"channel": channel, "interaction": interaction, **payload}}
        ).decode()
        for listener in [*listeners, *self._watchers]:
            listener.push(text)

    async def run(self) -> None:
        # Catching up from the log when it falls behind the bus: a socket may
        # lose messages to its own buffer, never because of the dispatcher.
        with self.runtime.subscribe(catch_up=True, name="sockets") as subscription:
            async for envelope in subscription:
                self.dispatch(envelope)

    def dispatch(self, envelope: Envelope) -> None:
        data = envelope.data
        agents: list[str] = []
        if isinstance(data, AgentStateChanged):
            self.since[data.agent] = (data.status.state, envelope.time)
            agents = list(self._agents)  # its own state, and every colleague's presence
        elif isinstance(data, ConsultSent):
            agents = [data.sender, data.to]
        elif isinstance(data, DeliveryUpdated):
            holder = self._holders.get(data.interaction)
            agents = [holder] if holder is not None else []
        elif isinstance(data, MessageAdded):
            holder = self._holders.get(data.message.interaction_id)
            agents = [holder] if holder is not None else []
        else:
            task = getattr(data, "task", None)
            agent = getattr(data, "agent", None)
            if isinstance(data, OfferMade | TaskAssigned):
                self._holders[data.task] = data.agent
            holder = self._holders.get(task) if isinstance(task, str) else None
            if isinstance(agent, str):
                agents.append(agent)
            if holder is not None and holder != agent:
                agents.append(holder)
            if isinstance(task, str) and envelope.type in _ENDS and (holder == agent or agent is None):
                self._holders.pop(task, None)
        listeners = [listener for agent in agents for listener in self._agents.get(agent, ())]
        if not listeners and not self._watchers:
            return
        text = _encoder.encode({"event": to_cloudevent(envelope)}).decode()
        offer = data if isinstance(data, OfferMade) else None
        for listener in listeners:
            listener.push(text, offer)
        for listener in self._watchers:
            listener.push(text)
