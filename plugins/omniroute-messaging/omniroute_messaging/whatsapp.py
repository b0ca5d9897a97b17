"""WhatsApp through Meta's WhatsApp Cloud API: its webhook in, the Graph API out.

Meta signs each webhook POST with ``X-Hub-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body keyed with the app secret. Subscribing, Meta
first sends ``GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``
and expects the challenge back when the token is the one configured.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import BaseRouteHandler
from msgspec import Meta, Struct

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
from omniroute_messaging.common import Provider

__all__ = ["WHATSAPP", "WhatsAppConnector", "WhatsAppOptions", "hub_signature"]

SIGNATURE_HEADER = "X-Hub-Signature-256"


class WhatsAppOptions(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    app_secret: Annotated[str, Meta(min_length=8)]
    # What Meta sends back in the subscription handshake.
    verify_token: Annotated[str, Meta(min_length=8)]
    access_token: Annotated[str, Meta(min_length=8)]
    phone_number_id: Annotated[str, Meta(pattern=r"^[0-9]{1,32}$")]
    api_base_url: str = "https://graph.facebook.com"
    api_version: Annotated[str, Meta(pattern=r"^v[0-9]+\.[0-9]+$")] = "v21.0"
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0


# The webhook's payload, as much of it as a channel needs; the rest is ignored.
class _Text(Struct, frozen=True):
    body: str


class _Message(Struct, frozen=True, kw_only=True):
    id: Annotated[str, Meta(min_length=1, max_length=512)]
    sender: Annotated[str, Meta(pattern=r"^[0-9]{5,20}$")] = msgspec.field(name="from")
    type: str
    text: _Text | None = None


class _Profile(Struct, frozen=True):
    name: str | None = None


class _Contact(Struct, frozen=True, kw_only=True):
    wa_id: str
    profile: _Profile | None = None


class _Error(Struct, frozen=True, kw_only=True):
    code: int | None = None
    title: str | None = None


class _Status(Struct, frozen=True, kw_only=True):
    id: str
    status: str
    errors: list[_Error] = []


class _Value(Struct, frozen=True, kw_only=True):
    messaging_product: str | None = None
    contacts: list[_Contact] = []
    messages: list[_Message] = []
    statuses: list[_Status] = []


class _Change(Struct, frozen=True, kw_only=True):
    field: str
    value: _Value


class _Entry(Struct, frozen=True, kw_only=True):
    changes: list[_Change] = []


class _Notification(Struct, frozen=True, kw_only=True):
    object: Literal["whatsapp_business_account"]
    entry: list[_Entry]


_STATUSES: dict[str, Literal["sent", "delivered", "read", "failed"]] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}


def hub_signature(app_secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` for a webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WhatsAppConnector(ChannelConnector):
    capabilities: ClassVar[Capabilities] = Capabilities(synchronous=False, rich_media=True, typing=False)
    options: WhatsAppOptions

    def __init__(self, setup: ChannelSetup, options: WhatsAppOptions) -> None:
        super().__init__(setup, options)
        self._provider = Provider(options.timeout_seconds)

    def routes(self) -> list[BaseRouteHandler]:
        connector = self

        @get("/webhook", summary="Meta's subscription handshake", media_type="text/plain")
        async def handshake(request: Request[Any, Any, Any]) -> Response[str]:
            query = request.query_params
            if query.get("hub.mode") != "subscribe" or not query.get("hub.challenge"):
                return Response(
                    "hub.mode, hub.challenge: a subscription handshake sends both", status_code=400
                )
            if not hmac.compare_digest(
                str(query.get("hub.verify_token", "")), connector.options.verify_token
            ):
                return Response("hub.verify_token: not the token this channel was given", status_code=403)
            return Response(str(query["hub.challenge"]), status_code=200)

        @post("/webhook", status_code=200, summary="Meta's messages and statuses webhook")
        async def notify(request: Request[Any, Any, Any]) -> Response[Any]:
            body = await request.body()
            signature = request.headers.get(SIGNATURE_HEADER.lower())
            if not signature:
                return refuse(401, f"{SIGNATURE_HEADER}: the header is required")
            if not hmac.compare_digest(hub_signature(connector.options.app_secret, body), signature):
                return refuse(401, f"{SIGNATURE_HEADER}: does not match the body")
            notification = decode_json(body, _Notification)
            if isinstance(notification, Response):
                return notification
            try:
                await connector._take(notification)
            except InvalidInputError as e:
                return refuse(400, str(e))
            # Everything in it is stored (Meta retries anything not answered 200).
            return Response({"received": True}, status_code=200)

        return [handshake, notify]

    async def _take(self, notification: _Notification) -> None:
        for entry in notification.entry:
            for change in entry.changes:
                if change.field != "messages":
                    continue
                value = change.value
                names = {c.wa_id: c.profile.name for c in value.contacts if c.profile is not None}
                for message in value.messages:
                    if message.type == "text" and message.text is not None:
                        text = message.text.body
                    else:
                        # Media and other kinds stay at Meta; the transcript says what came.
                        text = f"[{message.type} message]"
                    await self.gateway.receive(
                        Inbound(
                            provider_id=message.id,
                            identities=[IdentityIn(kind="whatsapp", value=f"+{message.sender}")],
                            body=text,
                            display_name=names.get(message.sender),
                        )
                    )
                for status in value.statuses:
                    mapped = _STATUSES.get(status.status)
                    if mapped is None:
                        continue
                    detail = "; ".join(f"{e.code}: {e.title}" for e in status.errors) or None
                    # A status of a message sent from elsewhere is not ours: nothing to record.
                    await self.gateway.report_by_provider_id(status.id, mapped, detail=detail)

    async def send(self, message: Outbound) -> str | None:
        to = next((i.value for i in message.to if i.kind == "whatsapp"), None)
        if to is None:
            raise DeliveryError("to: the customer has no WhatsApp number", retry=False)
        base = self.options.api_base_url.rstrip("/")
        url = f"{base}/{self.options.api_version}/{self.options.phone_number_id}/messages"
        answer = await self._provider.post(
            url,
            json={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.lstrip("+"),
                "type": "text",
                "text": {"body": message.body},
            },
            headers={"Authorization": f"Bearer {self.options.access_token}"},
        )
        messages = answer.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict) and "id" in messages[0]:
            return str(messages[0]["id"])
        return None


WHATSAPP = ChannelKind(
    name="whatsapp",
    connector=WhatsAppConnector,
    options=WhatsAppOptions,
    description="WhatsApp through Meta's WhatsApp Cloud API: X-Hub-Signature-256 webhooks, the Graph API",
)
