"""The runtime over a socket: one JSON object per line in, one per line out (``omniroute run``).

Each request carries an ``id`` of the caller's choosing and an ``op``; the
reply carries the same ``id``. Requests on one connection run concurrently,
so a client that sends many before reading gets them batched together;
replies come back as each call is stored, not necessarily in order.

    {"id": 1, "op": "create", "interaction": {"channel": "chat", "queue": "support",
     "identities": [{"kind": "email", "value": "jo@example.com"}]}}
    {"id": 1, "ok": true, "result": {"interaction": "...", "customer": "...", ...}}
    {"id": 2, "op": "accept", "offer": 7}
    {"id": 2, "ok": false, "error": {"kind": "unknown_id", "message": "offer: no open offer 7 ..."}}

After ``{"op": "subscribe"}`` the connection also receives ``{"event": {...}}``
lines: every event after the subscription, as CloudEvents 1.0 objects.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

import anyio
import msgspec
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from msgspec import Meta, Struct

from omniroute.errors import InvalidInputError, OmnirouteError, from_validation, kind_of
from omniroute.model import AgentState, EngineConfig, Priority
from omniroute.runtime.api import MessageIn, NewInteraction
from omniroute.runtime.bus import Subscription
from omniroute.runtime.events import to_cloudevent
from omniroute.runtime.runtime import Runtime

__all__ = ["MAX_LINE_BYTES", "handle_connection", "peek_id", "serve_lines"]

MAX_LINE_BYTES = 1024 * 1024
# Calls one connection may have in flight before it stops reading more.
MAX_IN_FLIGHT = 4096


class _Request(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="op"):
    id: int | str | None = None


class Create(_Request, tag="create", frozen=True):
    interaction: NewInteraction


class AddMessage(_Request, tag="message", frozen=True):
    interaction: str
    message: MessageIn


class AddNote(_Request, tag="note", frozen=True):
    body: str
    author: str
    interaction: str | None = None
    customer: str | None = None


class AcceptOffer(_Request, tag="accept", frozen=True):
    offer: Annotated[int, Meta(ge=0)]
    agent: str | None = None


class RejectOffer(_Request, tag="reject", frozen=True):
    offer: Annotated[int, Meta(ge=0)]
    agent: str | None = None


class CompleteTask(_Request, tag="complete", frozen=True):
    task: str
    agent: str | None = None
    disposition: str | None = None
    outcome: str | None = None
    resolved: bool | None = None
    note: str | None = None


class CancelTask(_Request, tag="cancel", frozen=True):
    task: str
    status: Literal["abandoned", "cancelled"] = "abandoned"


class TransferTask(_Request, tag="transfer", frozen=True):
    task: str
    to_queue: str | None = None
    to_agent: str | None = None
    agent: str | None = None


class EndWrapUpRequest(_Request, tag="end_wrap_up", frozen=True):
    agent: str


class AgentStateRequest(_Request, tag="agent_state", frozen=True):
    agent: str
    state: AgentState


class PriorityRequest(_Request, tag="priority", frozen=True):
    task: str
    priority: Priority


class MergeRequest(_Request, tag="merge", frozen=True):
    survivor: str
    merged: str


class UndoMergeRequest(_Request, tag="undo_merge", frozen=True):
    merge: str


class ConfigRequest(_Request, tag="config", frozen=True):
    config: EngineConfig


class ContextRequest(_Request, tag="context", frozen=True):
    customer: str
    limit: Annotated[int, Meta(ge=1)] | None = None


class InteractionRequest(_Request, tag="interaction", frozen=True):
    interaction: str


class Subscribe(_Request, tag="subscribe", frozen=True):
    types: list[str] | None = None
    after: Annotated[int, Meta(ge=0)] | None = None


class MetricsRequest(_Request, tag="metrics", frozen=True):
    pass


class Status(_Request, tag="status", frozen=True):
    pass


class Ping(_Request, tag="ping", frozen=True):
    pass


Request = (
    Create
    | AddMessage
    | AddNote
    | AcceptOffer
    | RejectOffer
    | CompleteTask
    | CancelTask
    | TransferTask
    | EndWrapUpRequest
    | AgentStateRequest
    | PriorityRequest
    | MergeRequest
    | UndoMergeRequest
    | ConfigRequest
    | ContextRequest
    | InteractionRequest
    | Subscribe
    | MetricsRequest
    | Status
    | Ping
)

_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_encoder = msgspec.json.Encoder()


def _decode(line: bytes) -> _Request:
    try:
        return _decoder.decode(line)
    except msgspec.ValidationError as e:
        raise from_validation(e) from e
    except msgspec.DecodeError as e:
        raise InvalidInputError(f"request: not a JSON object: {e}") from e


async def _call(runtime: Runtime, request: _Request) -> Any:
    match request:
        case Create(interaction=new):
            return await runtime.create_interaction(new)
        case AddMessage(interaction=interaction, message=message):
            return {"message": await runtime.add_message(interaction, message)}
        case AddNote():
            return await runtime.add_note(
                request.body,
                author=request.author,
                interaction=request.interaction,
                customer=request.customer,
            )
        case AcceptOffer(offer=offer, agent=agent):
            return await runtime.accept(offer, agent=agent)
        case RejectOffer(offer=offer, agent=agent):
            return await runtime.reject(offer, agent=agent)
        case CompleteTask():
            return await runtime.complete(
                request.task,
                agent=request.agent,
                disposition=request.disposition,
                outcome=request.outcome,
                resolved=request.resolved,
                note=request.note,
            )
        case CancelTask(task=task, status=status):
            return await runtime.cancel(task, status=status)
        case TransferTask():
            return await runtime.transfer(
                request.task, to_queue=request.to_queue, to_agent=request.to_agent, agent=request.agent
            )
        case EndWrapUpRequest(agent=agent):
            return await runtime.end_wrap_up(agent)
        case AgentStateRequest(agent=agent, state=state):
            return await runtime.set_agent_state(agent, state)
        case PriorityRequest(task=task, priority=priority):
            return await runtime.set_priority(task, priority)
        case MergeRequest(survivor=survivor, merged=merged):
            return await runtime.merge_customers(survivor, merged)
        case UndoMergeRequest(merge=merge):
            return await runtime.undo_merge(merge)
        case ConfigRequest(config=config):
            await runtime.apply_config(config)
            return None
        case ContextRequest(customer=customer, limit=limit):
            return await runtime.context(customer, limit=limit)
        case InteractionRequest(interaction=interaction):
            return await runtime.interaction(interaction)
        case MetricsRequest():
            return await runtime.metrics()
        case Status():
            engine = runtime.engine
            return {
                "tasks": engine.task_count,
                "waiting": engine.waiting,
                "offers": len(runtime.offers()),
                "last_event": runtime.last_event_seq,
                "subscribers": runtime.bus.stats(),
            }
        case Ping():
            return "pong"
    raise InvalidInputError(f"op: {type(request).__name__} is not handled")  # pragma: no cover


async def handle_connection(runtime: Runtime, stream: SocketStream) -> None:
    """Serve one client until it hangs up (or sends a line that is too long)."""
    lock = anyio.Lock()
    # Stop reading when this many calls are in flight: backpressure, not loss.
    slots = anyio.Semaphore(MAX_IN_FLIGHT)
    receive = BufferedByteReceiveStream(stream)

    async def reply(message: dict[str, Any]) -> None:
        data = _encoder.encode(message) + b"\n"
        # A client that hung up misses its replies; the calls still stand.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            async with lock:
                await stream.send(data)

    async def fail(request_id: Any, kind: str, message: str) -> None:
        await reply({"id": request_id, "ok": False, "error": {"kind": kind, "message": message}})

    async def serve(request: _Request) -> None:
        try:
            result = await _call(runtime, request)
        except OmnirouteError as e:
            await fail(request.id, kind_of(e), str(e))
        else:
            await reply({"id": request.id, "ok": True, "result": result})
        finally:
            slots.release()

    async def forward(subscription: Subscription) -> None:
        with subscription:
            async for envelope in subscription:
                await reply({"event": to_cloudevent(envelope)})

    async with stream, anyio.create_task_group() as tg:
        try:
            while True:
                try:
                    line = await receive.receive_until(b"\n", MAX_LINE_BYTES)
                except anyio.DelimiterNotFound:
                    line = None
                # receive_until returns a longer line when it arrived whole.
                if line is None or len(line) > MAX_LINE_BYTES:
                    message = f"request: longer than {MAX_LINE_BYTES} bytes; connection closed"
                    await fail(None, "invalid_input", message)
                    break
                if not line.strip():
                    continue
                try:
                    request = _decode(line)
                except InvalidInputError as e:
                    await fail(peek_id(line), "invalid_input", str(e))
                    continue
                if isinstance(request, Subscribe):
                    try:
                        subscription = runtime.subscribe(
                            types=request.types, after=request.after, name="line-client"
                        )
                    except ValueError as e:
                        await fail(request.id, "invalid_input", str(e))
                        continue
                    tg.start_soon(forward, subscription)
                    await reply({"id": request.id, "ok": True, "result": {"after": subscription.last_seq}})
                    continue
                await slots.acquire()
                tg.start_soon(serve, request)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ):
            pass
        tg.cancel_scope.cancel()


def peek_id(line: bytes | str) -> Any:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    return value.get("id") if isinstance(value, dict) else None


async def serve_lines(
    runtime: Runtime,
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` (port 0 picks one) and serve clients; reports the port when listening."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started(bound)

        async def handle(stream: SocketStream) -> None:
            await handle_connection(runtime, stream)

        await listener.serve(handle)
