"""The REST API, ``/api/v1`` (``docs/server.md``). Every handler declares
the scope it needs (``opt={"scope": ...}``) or that it is public; the guard in
``app.py`` refuses a route that declares neither."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

import anyio
import msgspec
from litestar import Request, Response, WebSocket, delete, get, post, put, websocket
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from omniroute.channels import ChannelHost
from omniroute.engine import Engine
from omniroute.errors import (
    DuplicateIdError,
    InvalidConfigError,
    InvalidInputError,
    InvalidTransitionError,
    OmnirouteError,
    RuntimeClosedError,
    UnknownIdError,
    from_validation,
)
from omniroute.metrics import IntervalStats
from omniroute.model import (
    AgentLoad,
    AgentState,
    AgentStateChanged,
    EngineConfig,
    Explanation,
)
from omniroute.runtime.api import Acknowledgement, MessageIn, NewInteraction
from omniroute.runtime.events import ConsultSent, iso_time, to_cloudevent
from omniroute.runtime.lines import peek_id
from omniroute.runtime.runtime import Runtime
from omniroute.server.access import Access, Login, NewToken, NewUser, Principal, principal_of
from omniroute.server.sockets import Dispatcher
from omniroute.server.views import (
    AgentView,
    CancelBody,
    CompleteBody,
    ConsultBody,
    Figures,
    IntervalRow,
    MergeBody,
    NoteBody,
    PasswordBody,
    PriorityBody,
    QueueView,
    SessionView,
    StaffingRow,
    TokenView,
    TransferBody,
    figures,
    interval_row,
)
from omniroute.store import (
    ApiToken,
    ConversationDetail,
    Customer,
    CustomerContext,
    Interaction,
    Merge,
    Message,
    Note,
    User,
)
from omniroute.wfm.erlang import ErlangC

__all__ = ["ROUTES", "SESSION_COOKIE", "Server", "identify"]

SESSION_COOKIE = "omniroute_session"


class Server:
    """What the handlers share: the runtime, who may use it, and the live
    stream's dispatcher (which also knows since when each agent has been in
    its state)."""

    def __init__(self, runtime: Runtime, access: Access, *, started: float) -> None:
        self.runtime = runtime
        self.access = access
        self.started = started
        self.dispatcher = Dispatcher(runtime)
        # The channel connectors, when the server runs any (for agents' signals such as typing).
        self.channels: ChannelHost | None = None

    async def blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


ServerDep = NamedDependency[Server]
PrincipalDep = NamedDependency[Principal]


_STATUS: list[tuple[type[OmnirouteError], int]] = [
    (UnknownIdError, 404),
    (DuplicateIdError, 409),
    (InvalidTransitionError, 409),
    (InvalidConfigError, 400),
    (InvalidInputError, 400),
    (RuntimeClosedError, 503),
]


def error_status(exc: OmnirouteError) -> int:
    """The HTTP status of a runtime error."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


def _scope(scope: str) -> dict[str, Any]:
    return {"scope": scope}


_PUBLIC: dict[str, Any] = {"public": True}
# Any caller who has logged in or holds a valid token.
_AUTHENTICATED: dict[str, Any] = {"authenticated": True}


def _own(principal: PrincipalDep, agent: str | None, what: str) -> None:
    """An agent acts only on its own work."""
    if principal.own_only and agent != principal.agent:
        owner = f"agent {agent!r}" if agent is not None else "no agent"
        raise PermissionDeniedException(f"{what} belongs to {owner}, not to agent {principal.agent!r}")


def _acting_agent(principal: PrincipalDep) -> str | None:
    """The agent a call is made as: an agent's own; None (any) for others."""
    return principal.agent if principal.own_only else None


# ----- health -----


@get("/health", opt=_PUBLIC, tags=["health"])
async def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/ready", opt=_PUBLIC, tags=["health"])
async def ready(server: ServerDep) -> Response[dict[str, Any]]:
    """The engine is recovered and taking work (503 otherwise)."""
    try:
        engine = server.runtime.engine
    except RuntimeClosedError:
        return Response({"status": "stopping"}, status_code=503)
    return Response({"status": "ready", "tasks": engine.task_count, "waiting": engine.waiting})


# ----- sessions -----


def _session_view(
    principal: PrincipalDep, *, expires_at: float | None = None, token: str | None = None
) -> SessionView:
    assert principal.role is not None
    return SessionView(
        user=principal.name,
        role=principal.role,
        agent=principal.agent,
        scopes=sorted(principal.scopes),
        expires_at=expires_at,
        token=token,
    )


@post("/session", opt=_PUBLIC, tags=["sessions"], status_code=HTTP_201_CREATED)
async def login(server: ServerDep, data: JSONBody[Login]) -> Response[SessionView]:
    """Log in with a name and password: a session cookie, and its token in the body."""
    found = await server.blocking(server.access.login, data.name, data.password)
    if found is None:
        raise NotAuthorizedException("name or password: not a valid login")
    token, session, user = found
    view = _session_view(principal_of(user), expires_at=session.expires_at, token=token)
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=token,
        httponly=True,
        samesite="strict",
        path="/",
        max_age=int(server.access.session_seconds),
    )
    return Response(view, status_code=HTTP_201_CREATED, cookies=[cookie])


@get("/session", opt=_AUTHENTICATED, tags=["sessions"])
async def whoami(principal: PrincipalDep) -> dict[str, Any]:
    """Who the caller is and what it may do."""
    return {
        "name": principal.name,
        "kind": principal.kind,
        "role": principal.role,
        "agent": principal.agent,
        "scopes": sorted(principal.scopes),
    }


@delete(
    "/session",
    opt=_AUTHENTICATED,
    tags=["sessions"],
    status_code=HTTP_204_NO_CONTENT,
    # The cookie is cleared (expired at once).
    response_cookies=[
        Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict")
    ],
)
async def logout(server: ServerDep, request: Request[Any, Any, Any]) -> None:
    """End this session (its cookie or its bearer token)."""
    token = request.cookies.get(SESSION_COOKIE) or _bearer(request.headers.get("authorization"))
    if token is not None:
        await server.blocking(server.access.logout, token)


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    kind, _, value = header.partition(" ")
    return value.strip() or None if kind.lower() == "bearer" else None


# ----- interactions -----


@post("/interactions", opt=_scope("interactions:create"), tags=["interactions"])
async def create_interaction(server: ServerDep, data: JSONBody[NewInteraction]) -> Response[Acknowledgement]:
    """A contact to route (the generic channel). Stored before the answer:
    201 when created, 200 when ``id`` names one that exists already."""
    ack = await server.runtime.create_interaction(data)
    return Response(ack, status_code=HTTP_201_CREATED if ack.created else HTTP_200_OK)


@get("/interactions/{interaction_id:str}", opt=_scope("interactions:read"), tags=["interactions"])
async def get_interaction(server: ServerDep, interaction_id: FromPath[str]) -> Interaction:
    return await server.runtime.interaction(interaction_id)


@get("/interactions/{interaction_id:str}/messages", opt=_scope("interactions:read"), tags=["interactions"])
async def get_messages(server: ServerDep, interaction_id: FromPath[str]) -> list[Message]:
    """The interaction's messages, oldest first."""
    return await server.runtime.messages(interaction_id)


@post(
    "/interactions/{interaction_id:str}/messages",
    opt=_scope("interactions:write"),
    tags=["interactions"],
    status_code=HTTP_201_CREATED,
)
async def add_message(
    server: ServerDep, principal: PrincipalDep, interaction_id: FromPath[str], data: JSONBody[MessageIn]
) -> dict[str, str]:
    """A message on the interaction: an agent's reply, or the customer's next one."""
    interaction = await server.runtime.interaction(interaction_id)
    _own(principal, interaction.agent, f"interaction {interaction_id!r}")
    if principal.own_only and data.author not in (None, principal.agent):
        raise PermissionDeniedException(f"author: agent {principal.agent!r} writes only as itself")
    if principal.own_only and data.direction == "inbound":
        raise PermissionDeniedException(
            "direction: an agent writes outbound or internal messages, not the customer's"
        )
    if principal.own_only and data.author is None:
        data = msgspec.structs.replace(data, author=principal.agent)
    return {"message": await server.runtime.add_message(interaction_id, data)}


@post(
    "/interactions/{interaction_id:str}/notes",
    opt=_scope("interactions:write"),
    tags=["interactions"],
    status_code=HTTP_201_CREATED,
)
async def add_interaction_note(
    server: ServerDep, principal: PrincipalDep, interaction_id: FromPath[str], data: JSONBody[NoteBody]
) -> Note:
    interaction = await server.runtime.interaction(interaction_id)
    _own(principal, interaction.agent, f"interaction {interaction_id!r}")
    return await server.runtime.add_note(
        data.body, author=principal.agent or principal.name, interaction=interaction_id
    )


@get("/interactions/{interaction_id:str}/explanation", opt=_scope("reports:read"), tags=["interactions"])
async def explain(server: ServerDep, interaction_id: FromPath[str]) -> Explanation:
    """Why a waiting interaction is where it is, agent by agent."""
    return server.runtime.explain(interaction_id)


# ----- customers -----


@get("/conversations/{conversation_id:str}", opt=_scope("interactions:read"), tags=["interactions"])
async def get_conversation(server: ServerDep, conversation_id: FromPath[str]) -> ConversationDetail:
    """A conversation: its interactions on every channel and its messages, oldest first."""
    return await server.runtime.conversation(conversation_id)


@post(
    "/conversations/{conversation_id:str}/close",
    opt=_scope("interactions:write"),
    tags=["interactions"],
    status_code=HTTP_204_NO_CONTENT,
)
async def close_conversation(
    server: ServerDep, principal: PrincipalDep, conversation_id: FromPath[str]
) -> None:
    """Close a conversation: the customer's next contact starts a new one. An
    agent closes only a conversation it has worked in."""
    if principal.own_only:
        detail = await server.runtime.conversation(conversation_id)
        if not any(i.agent == principal.agent for i in detail.interactions):
            raise PermissionDeniedException(
                f"conversation {conversation_id!r}: agent {principal.agent!r} has no work in it"
            )
    await server.runtime.close_conversation(conversation_id)


@get("/customers/{customer_id:str}", opt=_scope("customers:read"), tags=["customers"])
async def get_customer(server: ServerDep, customer_id: FromPath[str]) -> Customer:
    return await server.runtime.customer(customer_id)


@get("/customers", opt=_scope("customers:read"), tags=["customers"])
async def find_customer(
    server: ServerDep,
    kind: Annotated[str, QueryParameter(min_length=1, max_length=64)],
    value: Annotated[str, QueryParameter(min_length=1, max_length=512)],
) -> Customer:
    """The customer one identity belongs to (``?kind=email&value=...``)."""
    customer = await server.runtime.find_customer(kind, value)
    if customer is None:
        raise UnknownIdError(f"value: no customer has the {kind} identity {value!r}")
    return customer


@get("/customers/{customer_id:str}/context", opt=_scope("customers:read"), tags=["customers"])
async def get_context(
    server: ServerDep,
    customer_id: FromPath[str],
    limit: Annotated[int | None, QueryParameter(ge=1, le=100_000)] = None,
) -> CustomerContext:
    """The customer across every channel: the timeline newest first, the open
    conversation's transcript, notes and the last agent."""
    return await server.runtime.context(customer_id, limit=limit)


@post(
    "/customers/{customer_id:str}/notes",
    opt=_scope("interactions:write"),
    tags=["customers"],
    status_code=HTTP_201_CREATED,
)
async def add_customer_note(
    server: ServerDep, principal: PrincipalDep, customer_id: FromPath[str], data: JSONBody[NoteBody]
) -> Note:
    return await server.runtime.add_note(
        data.body, author=principal.agent or principal.name, customer=customer_id
    )


@post("/merges", opt=_scope("customers:write"), tags=["customers"], status_code=HTTP_201_CREATED)
async def merge(server: ServerDep, data: JSONBody[MergeBody]) -> Merge:
    """Fold one customer record into another with all its history."""
    return await server.runtime.merge_customers(data.survivor, data.merged)


@post(
    "/merges/{merge_id:str}/undo", opt=_scope("customers:write"), tags=["customers"], status_code=HTTP_200_OK
)
async def undo_merge(server: ServerDep, merge_id: FromPath[str]) -> Merge:
    return await server.runtime.undo_merge(merge_id)


# ----- agents, offers, tasks -----


@get("/agents", opt=_scope("agents:read"), tags=["agents"])
async def agents(server: ServerDep) -> list[AgentView]:
    """Every agent with its state, load, skills and queues."""
    states: dict[str, AgentStateChanged] = {}
    loads: dict[str, AgentLoad] = {}
    for item in await server.runtime.roster():
        if isinstance(item, AgentStateChanged):
            states[item.agent] = item
        else:
            loads[item.agent] = item
    views = []
    for agent in server.runtime.config.agents:
        state = states.get(agent.id)
        load = loads.get(agent.id)
        current = state.status.state if state else "offline"
        seen = server.dispatcher.since.get(agent.id)
        views.append(
            AgentView(
                id=agent.id,
                state=current,
                reason=state.status.reason if state else None,
                since=seen[1] if seen is not None and seen[0] == current else server.started,
                capacity=load.capacity if load else agent.capacity,
                used=load.used if load else 0,
                tasks=load.tasks if load else 0,
                skills=dict(agent.skills),
                queues=dict(agent.queues),
                team=agent.team,
            )
        )
    return views


@put(
    "/agents/{agent_id:str}/state",
    opt=_scope("agents:write"),
    tags=["agents"],
    status_code=HTTP_204_NO_CONTENT,
)
async def set_state(
    server: ServerDep, principal: PrincipalDep, agent_id: FromPath[str], data: JSONBody[AgentState]
) -> None:
    """Offline, available, or away with a reason code."""
    _own(principal, agent_id, f"the state of agent {agent_id!r}")
    await server.runtime.set_agent_state(agent_id, data)


@post(
    "/agents/{agent_id:str}/wrap-up/end", opt=_scope("work"), tags=["agents"], status_code=HTTP_204_NO_CONTENT
)
async def end_wrap_up(server: ServerDep, principal: PrincipalDep, agent_id: FromPath[str]) -> None:
    _own(principal, agent_id, f"the wrap-up of agent {agent_id!r}")
    await server.runtime.end_wrap_up(agent_id)


@get("/offers", opt=_scope("work"), tags=["offers"])
async def offers(server: ServerDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Open offers (an agent sees its own)."""
    return [
        {"offer": offer, "interaction": task, "agent": agent}
        for offer, (task, agent) in sorted(server.runtime.offers().items())
        if not principal.own_only or agent == principal.agent
    ]


def _offer_agent(server: Server, offer: int) -> str:
    found = server.runtime.offer(offer)
    if found is None:
        raise UnknownIdError(f"offer: no open offer {offer}")
    return found[1]


@post("/offers/{offer:int}/accept", opt=_scope("work"), tags=["offers"], status_code=HTTP_204_NO_CONTENT)
async def accept(server: ServerDep, principal: PrincipalDep, offer: FromPath[int]) -> None:
    _own(principal, _offer_agent(server, offer), f"offer {offer}")
    await server.runtime.accept(offer, agent=_acting_agent(principal))


@post("/offers/{offer:int}/reject", opt=_scope("work"), tags=["offers"], status_code=HTTP_204_NO_CONTENT)
async def reject(server: ServerDep, principal: PrincipalDep, offer: FromPath[int]) -> None:
    _own(principal, _offer_agent(server, offer), f"offer {offer}")
    await server.runtime.reject(offer, agent=_acting_agent(principal))


async def _own_task(server: Server, principal: Principal, task: str) -> None:
    if principal.own_only:
        # Who holds it, as the live stream last saw; from the store when it has not seen it.
        holder = server.dispatcher.holder(task)
        if holder is None:
            holder = (await server.runtime.interaction(task)).agent
        _own(principal, holder, f"task {task!r}")


@post("/tasks/{task:str}/complete", opt=_scope("work"), tags=["tasks"], status_code=HTTP_204_NO_CONTENT)
async def complete(
    server: ServerDep, principal: PrincipalDep, task: FromPath[str], data: JSONBody[CompleteBody]
) -> None:
    """Finish the work: disposition, outcome and a note; the agent goes to wrap-up."""
    await _own_task(server, principal, task)
    await server.runtime.complete(
        task,
        agent=_acting_agent(principal),
        disposition=data.disposition,
        outcome=data.outcome,
        resolved=data.resolved,
        note=data.note,
    )


@post("/tasks/{task:str}/transfer", opt=_scope("work"), tags=["tasks"], status_code=HTTP_204_NO_CONTENT)
async def transfer(
    server: ServerDep, principal: PrincipalDep, task: FromPath[str], data: JSONBody[TransferBody]
) -> None:
    """To another queue or to a named agent."""
    await _own_task(server, principal, task)
    await server.runtime.transfer(
        task, to_queue=data.to_queue, to_agent=data.to_agent, agent=_acting_agent(principal)
    )


@post("/tasks/{task:str}/hold", opt=_scope("work"), tags=["tasks"], status_code=HTTP_204_NO_CONTENT)
async def hold(server: ServerDep, principal: PrincipalDep, task: FromPath[str]) -> None:
    """Put the customer on hold: the work stays with its agent, and the
    hold's time is reported apart from talk time (409 if on hold already,
    or not accepted)."""
    await _own_task(server, principal, task)
    await server.runtime.hold(task, agent=_acting_agent(principal))


@post("/tasks/{task:str}/resume", opt=_scope("work"), tags=["tasks"], status_code=HTTP_204_NO_CONTENT)
async def resume(server: ServerDep, principal: PrincipalDep, task: FromPath[str]) -> None:
    """Take the customer off hold (409 if not on hold)."""
    await _own_task(server, principal, task)
    await server.runtime.resume(task, agent=_acting_agent(principal))


def _sender(principal: Principal, sender: str | None) -> str:
    """Whom a consult is from: an agent speaks as itself only."""
    chosen = sender if sender is not None else principal.agent
    _own(principal, chosen, "a consult")
    if chosen is None:
        raise InvalidInputError("sender: this caller works as no agent; name the agent the message is from")
    return chosen


@post("/consults", opt=_scope("work"), tags=["tasks"], status_code=HTTP_201_CREATED)
async def consult(server: ServerDep, principal: PrincipalDep, data: JSONBody[ConsultBody]) -> ConsultSent:
    """A message to a colleague (internal chat), about a task or not: it
    reaches both agents' streams and stays in the event log."""
    sender = _sender(principal, data.sender)
    return await server.runtime.consult(sender, data.to, data.body, task=data.task)


@post("/tasks/{task:str}/cancel", opt=_scope("work"), tags=["tasks"], status_code=HTTP_204_NO_CONTENT)
async def cancel(
    server: ServerDep, principal: PrincipalDep, task: FromPath[str], data: JSONBody[CancelBody]
) -> None:
    """Take waiting or offered work out of the queue (the customer gave up, or it is void)."""
    await _own_task(server, principal, task)
    await server.runtime.cancel(task, status=data.status)


@put("/tasks/{task:str}/priority", opt=_scope("work"), tags=["tasks"], status_code=HTTP_204_NO_CONTENT)
async def priority(
    server: ServerDep, principal: PrincipalDep, task: FromPath[str], data: JSONBody[PriorityBody]
) -> None:
    if principal.own_only:
        raise PermissionDeniedException("priority: only a supervisor or an API token reorders the queue")
    await server.runtime.set_priority(task, data.priority)


# ----- queues, figures, events -----


@get("/queues", opt=_scope("reports:read"), tags=["reports"])
async def queues(server: ServerDep) -> list[QueueView]:
    """Each queue's configuration and live figures over the first sliding window."""
    snapshot = await server.runtime.metrics(channels=False, agents=False)
    window = snapshot.windows[0].seconds if snapshot.windows else None
    return [
        QueueView(
            name=q.name,
            service_level_seconds=q.service_level_seconds,
            offer_timeout=q.offer_timeout,
            figures=figures(snapshot.queues[q.name], window) if q.name in snapshot.queues else None,
        )
        for q in server.runtime.config.queues
    ]


@get("/figures", opt=_scope("reports:read"), tags=["reports"])
async def live_figures(server: ServerDep) -> dict[str, Any]:
    """The centre's, each queue's and each channel's figures now, over the first sliding window."""
    return await _figures_now(server)


async def _figures_now(server: Server) -> dict[str, Any]:
    snapshot = await server.runtime.metrics(agents=False)
    window = snapshot.windows[0].seconds if snapshot.windows else None

    def each(dimensions: dict[str, Any]) -> dict[str, Figures]:
        return {name: figures(d, window) for name, d in sorted(dimensions.items())}

    return {
        "now": snapshot.now,
        "window_seconds": window,
        "overall": figures(snapshot.overall, window),
        "queues": each(snapshot.queues),
        "channels": each(snapshot.channels),
    }


async def _intervals(
    server: Server,
    dimension: Literal["overall", "queue", "channel", "agent", "team"],
    name: str,
    start: float,
    end: float | None = None,
) -> list[IntervalStats]:
    """A report's intervals, its arguments checked (the runtime refuses an
    unknown name, and a configured one with no figures yet has none)."""
    if dimension != "overall" and not name:
        raise InvalidInputError(f"name: a {dimension} report names the {dimension}")
    stop = end if end is not None else float("inf")
    if stop <= start:
        raise InvalidInputError(f"end: {end} is not after start {start}")
    return await server.runtime.intervals(dimension, name, start, stop)


async def _interval_rows(
    server: Server,
    dimension: Literal["overall", "queue", "channel", "agent", "team"],
    name: str,
    start: float,
    end: float | None,
) -> list[IntervalRow]:
    seconds = server.runtime.interval_seconds
    return [interval_row(i, seconds) for i in await _intervals(server, dimension, name, start, end)]


Dimension = Annotated[Literal["overall", "queue", "channel", "agent", "team"], QueryParameter()]


@get("/reports/intervals", opt=_scope("reports:read"), tags=["reports"])
async def interval_report(
    server: ServerDep,
    dimension: Dimension = "overall",
    name: Annotated[str, QueryParameter(max_length=256)] = "",
    start: Annotated[float, QueryParameter(ge=0)] = 0.0,
    end: Annotated[float | None, QueryParameter(ge=0)] = None,
) -> list[IntervalRow]:
    """The fixed intervals (``interval_seconds``, 15 minutes by default) of
    the centre, a queue, a channel, an agent or a team (its agents' figures
    summed) that start in ``[start, end)``, oldest first."""
    return await _interval_rows(server, dimension, name, start, end)


def csv_filename(dimension: str, name: str) -> str:
    """The download's file name; names come from the configuration, so only
    safe characters reach the header."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    return f"omniroute-{dimension}{'-' + safe if safe else ''}-intervals.csv"


@get(
    "/reports/intervals.csv",
    opt=_scope("reports:read"),
    tags=["reports"],
    media_type="text/csv; charset=utf-8",
)
async def interval_report_csv(
    server: ServerDep,
    dimension: Dimension = "overall",
    name: Annotated[str, QueryParameter(max_length=256)] = "",
    start: Annotated[float, QueryParameter(ge=0)] = 0.0,
    end: Annotated[float | None, QueryParameter(ge=0)] = None,
) -> Response[str]:
    """The same report as CSV for a spreadsheet: a header row, times in ISO
    8601 (UTC), an empty cell for no value."""
    rows = await _interval_rows(server, dimension, name, start, end)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    fields = IntervalRow.__struct_fields__
    writer.writerow(fields)
    for row in rows:
        values = [getattr(row, f) for f in fields]
        values[0] = iso_time(row.start)
        writer.writerow(["" if v is None else v for v in values])
    filename = csv_filename(dimension, name)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@get("/reports/staffing", opt=_scope("reports:read"), tags=["reports"])
async def staffing_report(
    server: ServerDep,
    dimension: Annotated[Literal["overall", "queue", "channel"], QueryParameter()] = "overall",
    name: Annotated[str, QueryParameter(max_length=256)] = "",
    start: Annotated[float, QueryParameter(ge=0)] = 0.0,
    service_level: Annotated[float, QueryParameter(gt=0, lt=1)] = 0.8,
    threshold: Annotated[float, QueryParameter(ge=0)] = 20.0,
    max_occupancy: Annotated[float, QueryParameter(gt=0, le=1)] = 1.0,
) -> list[StaffingRow]:
    """Each interval's volume and handle time (the current one so far), the agents Erlang C
    says it needed for the target, and the agents it had (logged-in time
    over the interval, the whole centre's)."""
    seconds = server.runtime.interval_seconds
    intervals = await _intervals(server, dimension, name, start)
    overall = intervals if dimension == "overall" else await _intervals(server, "overall", "", start)
    actual = {i.start: i.stats.logged_in_seconds / seconds for i in overall}
    rows = []
    for interval in intervals:
        stats = interval.stats
        required = 0
        if stats.offered > 0 and stats.aht:
            required = (
                ErlangC(contacts=stats.offered, interval_seconds=seconds, aht_seconds=stats.aht)
                .required_agents(
                    service_level=service_level, threshold_seconds=threshold, max_occupancy=max_occupancy
                )
                .agents
            )
        rows.append(
            StaffingRow(
                start=interval.start,
                seconds=seconds,
                offered=stats.offered,
                aht=stats.aht,
                required_agents=required,
                actual_agents=actual.get(interval.start, 0.0),
                service_level=stats.service_level_answered,
            )
        )
    return rows


@get("/events", opt=_scope("events:read"), tags=["reports"])
async def events(
    server: ServerDep,
    after: Annotated[int, QueryParameter(ge=0)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """The event log after ``after``, as CloudEvents 1.0 objects."""
    return [to_cloudevent(e) for e in await server.runtime.events(after, limit=limit)]


# ----- the live stream -----

# How often a supervisor's stream carries the live figures.
FIGURES_EVERY_SECONDS = 1.0


class _SocketCommand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="op"):
    # The scope a command needs, as its HTTP route does.
    scope: ClassVar[str] = "work"
    # The caller's own, echoed in the reply.
    id: int | str | None = None


class _AcceptCommand(_SocketCommand, tag="accept", frozen=True):
    offer: Annotated[int, msgspec.Meta(ge=0)]


class _RejectCommand(_SocketCommand, tag="reject", frozen=True):
    offer: Annotated[int, msgspec.Meta(ge=0)]


class _CompleteCommand(_SocketCommand, tag="complete", frozen=True):
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    disposition: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    outcome: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    resolved: bool | None = None
    note: Annotated[str, msgspec.Meta(max_length=65536)] | None = None


class _HoldCommand(_SocketCommand, tag="hold", frozen=True):
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class _ResumeCommand(_SocketCommand, tag="resume", frozen=True):
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class _TypingCommand(_SocketCommand, tag="typing", frozen=True):
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class _ConsultCommand(_SocketCommand, tag="consult", frozen=True):
    to: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=65536)]
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None


class _StateCommand(_SocketCommand, tag="state", frozen=True):
    scope: ClassVar[str] = "agents:write"
    agent: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    state: AgentState


_socket_commands = msgspec.json.Decoder(
    _AcceptCommand
    | _RejectCommand
    | _CompleteCommand
    | _HoldCommand
    | _ResumeCommand
    | _ConsultCommand
    | _TypingCommand
    | _StateCommand
)


async def identify(server: Server, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """Who a request's or a socket's credentials name now (a session cookie or
    a bearer token): from the 5 s cache, else from the store in a worker thread."""
    bearer = _bearer(connection.headers.get("authorization"))
    cookie = connection.cookies.get(SESSION_COOKIE)
    found = server.access.cached(session=cookie, bearer=bearer)
    if found is None:
        found = await anyio.to_thread.run_sync(
            lambda: server.access.authenticate(session=cookie, bearer=bearer)
        )
    return found


async def _command(
    server: Server,
    socket: WebSocket[Any, Any, Any],
    text: str,
    send: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
) -> None:
    """One command sent on the stream: the same rules and the same runtime
    calls as its HTTP route, without a request per action; the caller is
    checked again for each, as each HTTP request is."""
    request_id: Any = None
    try:
        try:
            command = _socket_commands.decode(text)
        except msgspec.ValidationError as e:
            request_id = peek_id(text)  # the reply still names the command it refuses
            raise from_validation(e) from e
        except msgspec.DecodeError as e:
            raise InvalidInputError(f"command: not a JSON object: {e}") from e
        request_id = command.id
        # Checked again for each command: a logout, a disabled user or a revoked
        # token ends what an open socket may do, as it ends HTTP requests.
        principal = await identify(server, socket)
        if principal is None:
            raise NotAuthorizedException("authorization: the session or token has ended; log in again")
        if not principal.may(command.scope):
            raise PermissionDeniedException(f"scope: {principal.name!r} lacks {command.scope!r}")
        match command:
            case _AcceptCommand(offer=offer) | _RejectCommand(offer=offer):
                _own(principal, _offer_agent(server, offer), f"offer {offer}")
                call = server.runtime.accept if isinstance(command, _AcceptCommand) else server.runtime.reject
                await call(offer, agent=_acting_agent(principal))
            case _CompleteCommand():
                await _own_task(server, principal, command.task)
                await server.runtime.complete(
                    command.task,
                    agent=_acting_agent(principal),
                    disposition=command.disposition,
                    outcome=command.outcome,
                    resolved=command.resolved,
                    note=command.note,
                )
            case _HoldCommand(task=task) | _ResumeCommand(task=task):
                await _own_task(server, principal, task)
                change = server.runtime.hold if isinstance(command, _HoldCommand) else server.runtime.resume
                await change(task, agent=_acting_agent(principal))
            case _ConsultCommand(to=to, body=body, task=task):
                await server.runtime.consult(_sender(principal, None), to, body, task=task)
            case _TypingCommand(task=task):
                if server.channels is None:
                    raise InvalidInputError("task: no channel connector runs here, so none shows typing")
                await _own_task(server, principal, task)
                channel = (await server.runtime.interaction(task)).channel
                if not await server.channels.signal(channel, task, {"typing": True}):
                    raise InvalidInputError(f"task: channel {channel!r} shows no typing")
            case _StateCommand(agent=agent, state=state):
                _own(principal, agent, f"the state of agent {agent!r}")
                await server.runtime.set_agent_state(agent, state)
    except (NotAuthorizedException, PermissionDeniedException) as e:
        error = {"status_code": e.status_code, "detail": e.detail}
        await send({"reply": request_id, "ok": False, "error": error})
    except OmnirouteError as e:
        status = error_status(e)
        await send({"reply": request_id, "ok": False, "error": {"status_code": status, "detail": str(e)}})
    else:
        await send({"reply": request_id, "ok": True})


@websocket("/stream", opt=_scope("agents:read"))
async def stream(socket: WebSocket[Any, Any, Any], server: ServerDep) -> None:
    """Every event as it happens, as CloudEvents 1.0 JSON, one per message:
    an agent gets its own (each offer followed by the customer's context)
    and its colleagues' states; everyone else every event, and with
    ``reports:read`` the live figures each second. A socket that falls
    behind loses its oldest messages and is told how many (``{"lost": n}``)."""
    principal: Principal = socket.state.principal
    agent = principal.agent if principal.own_only else None
    if principal.own_only and agent is None:  # pragma: no cover - an agent user always names its agent
        raise PermissionDeniedException("agent: this user works as no agent")
    await socket.accept()
    listener = server.dispatcher.listen(agent)

    async def send(message: dict[str, Any]) -> None:
        await socket.send_data(msgspec.json.encode(message).decode(), mode="text")

    async def forward() -> None:
        reported = 0
        while True:
            items = await listener.take()
            if listener.lost != reported:
                await send({"lost": listener.lost - reported})
                reported = listener.lost
            for text, offer in items:
                await socket.send_data(text, mode="text")
                if offer is not None:
                    context = await server.runtime.interaction_context(offer.task)
                    await send({"context": msgspec.to_builtins(context), "offer": offer.offer})

    async def tick() -> None:
        while True:
            await send({"figures": msgspec.to_builtins(await _figures_now(server))})
            await anyio.sleep(FIGURES_EVERY_SECONDS)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(forward)
            if agent is None and principal.may("reports:read"):
                tg.start_soon(tick)
            # Commands on the socket until the client goes away.
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] != "websocket.receive":
                    continue
                data = message.get("bytes")
                text = message.get("text") or (data.decode("utf-8", "replace") if data else None)
                if text:
                    tg.start_soon(_command, server, socket, text, send)
            tg.cancel_scope.cancel()
    finally:
        server.dispatcher.leave(listener)


# ----- configuration -----


@get("/config", opt=_scope("config:read"), tags=["configuration"])
async def get_config(server: ServerDep) -> EngineConfig:
    return server.runtime.config


@post("/config/validate", opt=_scope("config:write"), tags=["configuration"], status_code=HTTP_200_OK)
async def validate_config(server: ServerDep, data: JSONBody[EngineConfig]) -> dict[str, bool]:
    """Check a configuration as the engine would load it, without applying it."""
    await server.blocking(Engine, data, 0.0)
    return {"valid": True}


@put("/config", opt=_scope("config:write"), tags=["configuration"])
async def apply_config(server: ServerDep, data: JSONBody[EngineConfig]) -> EngineConfig:
    """Apply a configuration live: agents, queues and channels change, waiting work is re-evaluated."""
    return await server.runtime.apply_config(data)


# ----- users and tokens -----


@get("/users", opt=_scope("users:admin"), tags=["access"])
async def users(server: ServerDep) -> list[User]:
    return list(await server.blocking(server.access.users))


@post("/users", opt=_scope("users:admin"), tags=["access"], status_code=HTTP_201_CREATED)
async def add_user(server: ServerDep, data: JSONBody[NewUser]) -> User:
    user: User = await server.blocking(server.access.add_user, data)
    return user


@put("/users/{name:str}/password", opt=_AUTHENTICATED, tags=["access"], status_code=HTTP_204_NO_CONTENT)
async def set_password(
    server: ServerDep, principal: PrincipalDep, name: FromPath[str], data: JSONBody[PasswordBody]
) -> None:
    """A user changes its own password; an administrator anyone's. Every session of the user ends."""
    if not (principal.may("users:admin") or (principal.kind == "user" and principal.name == name)):
        raise PermissionDeniedException(f"name: only {name!r} or an administrator changes this password")
    await server.blocking(server.access.set_password, name, data.password)


@delete("/users/{name:str}", opt=_scope("users:admin"), tags=["access"], status_code=HTTP_204_NO_CONTENT)
async def disable_user(server: ServerDep, name: FromPath[str]) -> None:
    """The user can no longer log in; its sessions end. Its history stays."""
    await server.blocking(server.access.disable_user, name)


def _token_view(token: ApiToken, secret: str | None = None) -> TokenView:
    return TokenView(
        id=token.id,
        name=token.name,
        scopes=list(token.scopes),
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        token=secret,
    )


@get("/tokens", opt=_scope("users:admin"), tags=["access"])
async def tokens(server: ServerDep) -> list[TokenView]:
    return [_token_view(t) for t in await server.blocking(server.access.tokens)]


@post("/tokens", opt=_scope("users:admin"), tags=["access"], status_code=HTTP_201_CREATED)
async def add_token(server: ServerDep, data: JSONBody[NewToken]) -> TokenView:
    """A new API token; its secret is in this answer and nowhere else."""
    secret, token = await server.blocking(server.access.add_token, data)
    return _token_view(token, secret)


@delete("/tokens/{token_id:str}", opt=_scope("users:admin"), tags=["access"], status_code=HTTP_204_NO_CONTENT)
async def revoke_token(server: ServerDep, token_id: FromPath[str]) -> None:
    await server.blocking(server.access.revoke_token, token_id)


ROUTES = [
    health,
    ready,
    login,
    whoami,
    logout,
    create_interaction,
    get_interaction,
    get_messages,
    add_message,
    add_interaction_note,
    explain,
    get_conversation,
    close_conversation,
    get_customer,
    find_customer,
    get_context,
    add_customer_note,
    merge,
    undo_merge,
    agents,
    set_state,
    end_wrap_up,
    offers,
    accept,
    reject,
    complete,
    transfer,
    hold,
    resume,
    consult,
    cancel,
    priority,
    queues,
    live_figures,
    interval_report,
    interval_report_csv,
    staffing_report,
    events,
    stream,
    get_config,
    validate_config,
    apply_config,
    users,
    add_user,
    set_password,
    disable_user,
    tokens,
    add_token,
    revoke_token,
]
