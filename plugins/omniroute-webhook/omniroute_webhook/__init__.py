"""omniroute channel: a generic webhook, every request signed with HMAC-SHA256 over its timestamp and body.

Inbound, ``POST /api/v1/channels/{channel}/messages`` takes one customer
message and ``POST /api/v1/channels/{channel}/status`` a delivery report on
an agent's message; outbound, each agent's message is POSTed to
``outbound_url``. Both ways carry ``X-Omniroute-Timestamp`` (Unix seconds)
and ``X-Omniroute-Signature: sha256=<hex>``, the HMAC-SHA256 with the shared
secret of ``f"{timestamp}.{body}"``; a request older or newer than
``tolerance_seconds`` is refused, so a captured one cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

import httpx
import msgspec
from litestar import Request, Response, post
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_202_ACCEPTED
from msgspec import Meta, Struct

from omniroute import hookimpl
from omniroute.channels import (
    Capabilities,
    ChannelConnector,
    ChannelKind,
    ChannelSetup,
    DeliveryError,
    Inbound,
    Outbound,
)
from omniroute.channels.http import decode_json, refuse
from omniroute.errors import InvalidInputError
from omniroute.runtime.api import IdentityIn

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookConnector", "WebhookOptions", "sign"]

SIGNATURE_HEADER = "X-Omniroute-Signature"
TIMESTAMP_HEADER = "X-Omniroute-Timestamp"


class WebhookOptions(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Shared with the other side; long enough not to be guessed.
    secret: Annotated[str, Meta(min_length=16)]
    # Where agents' messages are POSTed; without it the channel only receives.
    outbound_url: str | None = None
    # How far a request's timestamp may be from now.
    tolerance_seconds: Annotated[float, Meta(gt=0, le=3600)] = 300.0
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0


class _Identity(Struct, frozen=True, forbid_unknown_fields=True):
    kind: Annotated[str, Meta(min_length=1, max_length=64)]
    value: Annotated[str, Meta(min_length=1, max_length=512)]


class _Message(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The sender's id of this message: a retried delivery carries the same one.
    id: Annotated[str, Meta(min_length=1, max_length=512)]
    # Who wrote it: one identity or more (a handle, an e-mail address, a phone number).
    sender: list[_Identity] = msgspec.field(name="from")
    text: Annotated[str, Meta(max_length=65536)]
    name: Annotated[str, Meta(max_length=256)] | None = None
    content_type: Annotated[str, Meta(min_length=3, max_length=255)] = "text/plain"


class _Status(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The id the network gave the agent's message (its answer to the outbound POST).
    id: Annotated[str, Meta(min_length=1, max_length=512)]
    status: Literal["delivered", "read", "failed"]
    detail: Annotated[str, Meta(max_length=1000)] | None = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookConnector(ChannelConnector):
    capabilities: ClassVar[Capabilities] = Capabilities(synchronous=False, rich_media=False, typing=False)
    options: WebhookOptions

    def __init__(self, setup: ChannelSetup, options: WebhookOptions) -> None:
        super().__init__(setup, options)
        self._client: httpx.AsyncClient | None = None

    def _check(self, request_headers: Any, body: bytes) -> str | None:
        """Why a request's signature is refused, or None when it holds."""
        timestamp = request_headers.get(TIMESTAMP_HEADER.lower())
        signature = request_headers.get(SIGNATURE_HEADER.lower())
        if not timestamp or not signature:
            return f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER}: both headers are required"
        try:
            sent = float(timestamp)
        except ValueError:
            return f"{TIMESTAMP_HEADER}: {timestamp[:40]!r} is not a Unix time in seconds"
        if abs(time.time() - sent) > self.options.tolerance_seconds:
            return f"{TIMESTAMP_HEADER}: more than {self.options.tolerance_seconds:g} s from now"
        if not hmac.compare_digest(sign(self.options.secret, timestamp, body), signature):
            return f"{SIGNATURE_HEADER}: does not match the body"
        return None

    def routes(self) -> list[BaseRouteHandler]:
        connector = self

        @post("/messages", status_code=HTTP_202_ACCEPTED, summary="A customer's message, signed")
        async def receive(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
            body = await request.body()
            refused = connector._check(request.headers, body)
            if refused is not None:
                return refuse(401, refused)
            message = decode_json(body, _Message)
            if isinstance(message, Response):
                return message
            inbound = Inbound(
                provider_id=message.id,
                identities=[IdentityIn(kind=i.kind, value=i.value) for i in message.sender],
                body=message.text,
                content_type=message.content_type,
                display_name=message.name,
            )
            try:
                received = await connector.gateway.receive(inbound)
            except InvalidInputError as e:
                return refuse(400, str(e))
            # Stored: only now is it acknowledged.
            return Response(msgspec.to_builtins(received), status_code=HTTP_202_ACCEPTED)

        @post("/status", status_code=HTTP_202_ACCEPTED, summary="A delivery report on an agent's message")
        async def status(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
            body = await request.body()
            refused = connector._check(request.headers, body)
            if refused is not None:
                return refuse(401, refused)
            report = decode_json(body, _Status)
            if isinstance(report, Response):
                return report
            try:
                delivery = await connector.gateway.report_by_provider_id(
                    report.id, report.status, detail=report.detail
                )
            except InvalidInputError as e:
                return refuse(400, str(e))
            if delivery is None:
                return refuse(404, f"id: no message of this channel has id {report.id!r}")
            return Response(msgspec.to_builtins(delivery), status_code=HTTP_202_ACCEPTED)

        return [receive, status]

    async def send(self, message: Outbound) -> str | None:
        url = self.options.outbound_url
        if url is None:
            raise DeliveryError("outbound_url: this webhook channel only receives", retry=False)
        if not message.to:
            raise DeliveryError("to: the customer has no identity to write to", retry=False)
        body = msgspec.json.encode(
            {
                "id": message.message_id,
                "to": [{"kind": i.kind, "value": i.value} for i in message.to],
                "text": message.body,
                "content_type": message.content_type,
                "conversation": message.interaction_id,
            }
        )
        timestamp = f"{time.time():.3f}"
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.options.secret, timestamp, body),
            # The other side may drop a repeat after a retry with this key.
            "Idempotency-Key": message.message_id,
        }
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.options.timeout_seconds)
        try:
            reply = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise DeliveryError(f"outbound_url: {e!r}", retry=True) from e
        if reply.status_code >= 500 or reply.status_code == 429:
            raise DeliveryError(f"outbound_url: answered {reply.status_code}", retry=True)
        if reply.status_code >= 400:
            raise DeliveryError(
                f"outbound_url: answered {reply.status_code}: {reply.text[:200]}", retry=False
            )
        try:
            answer = reply.json()
        except ValueError:
            return None
        provider_id = answer.get("id") if isinstance(answer, dict) else None
        return str(provider_id) if provider_id is not None else None


KIND = ChannelKind(
    name="webhook",
    connector=WebhookConnector,
    options=WebhookOptions,
    description="generic HTTP channel: signed JSON in and out (HMAC-SHA256 over timestamp and body)",
)


@hookimpl
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    register(KIND)
