"""``omniroute serve --demo``: a small contact centre that runs by itself.

Simulated customers call, chat, e-mail and text through the real runtime
(stored, routed, measured like any other contact); simulated agents accept
their offers, answer, complete and sometimes take a break. Two seats, ``ann``
and ``bob``, are left to people: log in at ``/desktop`` and take real work
beside the simulated agents, while ``/wallboard`` shows the centre move.

Time is not compressed: handle times are short (tens of seconds) so the
wallboard changes within seconds of starting.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from omniroute.errors import OmnirouteError
from omniroute.model import AgentConfig, AgentState, ChannelConfig, EngineConfig, OfferMade, QueueConfig
from omniroute.runtime.api import IdentityIn, MessageIn, NewInteraction
from omniroute.runtime.runtime import Runtime
from omniroute.server.access import Access, NewUser
from omniroute.store import Role, SqlStore

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "Demo", "demo_config", "demo_users"]

# The demo's logins (a demo store only; ``omniroute users`` for real ones).
DEMO_PASSWORD = "omniroute-demo"
DEMO_USERS: list[tuple[str, Role, str | None]] = [
    ("admin", "administrator", None),
    ("sue", "supervisor", None),
    ("ann", "agent", "ann"),
    ("bob", "agent", "bob"),
]
SIMULATED = [f"sim{i:02d}" for i in range(1, 13)]

# Per channel: (queue choices, arrivals per minute, mean handle seconds, identity kind).
TRAFFIC: dict[str, tuple[list[str], float, float, str]] = {
    "voice": (["support", "sales"], 9.0, 40.0, "phone"),
    "chat": (["support", "sales"], 9.0, 30.0, "email"),
    "email": (["support"], 4.0, 20.0, "email"),
    "sms": (["support"], 3.0, 25.0, "phone"),
}
FIRST_WORDS = {
    "voice": "Incoming call",
    "chat": "Hi, I have a question about my order",
    "email": "Subject: invoice - please send me a copy of last month's invoice",
    "sms": "Is my parcel arriving today?",
}


def demo_config() -> EngineConfig:
    channels = [
        ChannelConfig(name="voice", cost=60),
        ChannelConfig(name="chat", cost=20, max_per_agent=3),
        ChannelConfig(name="email", cost=12, interruptible=True),
        ChannelConfig(name="sms", cost=20),
    ]
    queues = [
        QueueConfig(name="support", service_level_seconds=20.0, offer_timeout=20.0, wrap_up=5.0),
        QueueConfig(name="sales", service_level_seconds=30.0, offer_timeout=20.0, wrap_up=5.0),
    ]
    # Support-first agents make the "care" team, sales-first ones "growth".
    agents = [
        AgentConfig(
            id=name,
            queues={"support": 0, "sales": 1} if i % 3 else {"sales": 0, "support": 1},
            team="care" if i % 3 else "growth",
        )
        for i, name in enumerate(SIMULATED)
    ]
    # The people's seats start offline: they go available from the desktop.
    agents += [
        AgentConfig(id=seat, queues={"support": 0, "sales": 0}, available=False, team="care")
        for seat in ("ann", "bob")
    ]
    return EngineConfig(channels=channels, queues=queues, agents=agents, seed=7)


def demo_users(store: SqlStore) -> None:
    """The demo's logins, added once (a store that has them keeps them)."""
    access = Access(store)
    existing = {u.name for u in access.users()}
    for name, role, agent in DEMO_USERS:
        if name not in existing:
            access.add_user(NewUser(name=name, role=role, agent=agent, password=DEMO_PASSWORD))


@dataclass
class Customer:
    name: str
    email: str
    phone: str


class Demo:
    """Simulated customers and agents around one runtime, until cancelled."""

    def __init__(self, runtime: Runtime, *, seed: int = 1) -> None:
        self.runtime = runtime
        self.rng = random.Random(seed)
        # A hundred customers (the numbers' last two digits), so some come back on another channel.
        self.customers = [
            Customer(name=f"Customer {i}", email=f"customer{i}@example.com", phone=f"+4420794600{i:02d}")
            for i in range(100)
        ]
        self.created = 0
        self.errors = 0

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._agents, tg)
            for channel in TRAFFIC:
                tg.start_soon(self._arrivals, tg, channel)
            tg.start_soon(self._breaks)

    async def _call(self, coro: Awaitable[object]) -> bool:
        """One runtime call; the demo carries on past a refusal (an offer
        that expired meanwhile, a task a person took)."""
        try:
            await coro
        except OmnirouteError:
            self.errors += 1
            return False
        return True

    async def _arrivals(self, tg: TaskGroup, channel: str) -> None:
        queues, per_minute, _, kind = TRAFFIC[channel]
        while True:
            await anyio.sleep(self.rng.expovariate(per_minute / 60.0))
            who = self.rng.choice(self.customers)
            new = NewInteraction(
                channel=channel,
                queue=self.rng.choice(queues),
                identities=[IdentityIn(kind=kind, value=who.email if kind == "email" else who.phone)],
                display_name=who.name,
                message=MessageIn(body=FIRST_WORDS[channel]),
            )
            try:
                ack = await self.runtime.create_interaction(new)
            except OmnirouteError:
                self.errors += 1
                continue
            self.created += 1
            tg.start_soon(self._patience, ack.interaction, self.rng.uniform(40.0, 120.0))

    async def _patience(self, interaction: str, seconds: float) -> None:
        """The customer gives up if nobody has answered by then."""
        await anyio.sleep(seconds)
        current = await self.runtime.interaction(interaction)
        if current.status in ("waiting", "offered"):
            await self._call(self.runtime.cancel(interaction, status="abandoned"))

    async def _agents(self, tg: TaskGroup) -> None:
        simulated = set(SIMULATED)
        with self.runtime.subscribe(types=["offer_made"], catch_up=False, name="demo agents") as offers:
            async for envelope in offers:
                offer = envelope.data
                if isinstance(offer, OfferMade) and offer.agent in simulated:
                    tg.start_soon(self._work, offer)

    async def _work(self, offer: OfferMade) -> None:
        """Answer after a moment, handle, complete (wrap-up ends by itself)."""
        await anyio.sleep(self.rng.uniform(0.5, 3.0))
        if self.rng.random() < 0.05:
            await self._call(self.runtime.reject(offer.offer, agent=offer.agent))
            return
        if not await self._call(self.runtime.accept(offer.offer, agent=offer.agent)):
            return
        await anyio.sleep(self.rng.expovariate(1.0 / TRAFFIC[offer.channel][2]))
        resolved = self.rng.random() < 0.8
        await self._call(
            self.runtime.complete(
                offer.task,
                agent=offer.agent,
                disposition="resolved" if resolved else "follow-up",
                resolved=resolved,
            )
        )

    async def _breaks(self) -> None:
        """Now and then a simulated agent takes a short break."""
        while True:
            await anyio.sleep(self.rng.uniform(20.0, 40.0))
            agent = self.rng.choice(SIMULATED)
            if await self._call(
                self.runtime.set_agent_state(agent, AgentState(state="away", reason="break"))
            ):
                await anyio.sleep(self.rng.uniform(15.0, 45.0))
                await self._call(self.runtime.set_agent_state(agent, AgentState(state="available")))
