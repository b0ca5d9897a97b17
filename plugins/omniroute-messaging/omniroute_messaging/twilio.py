"""SMS (and WhatsApp) through Twilio Messaging: signed form webhooks in, the Messages API out.

Twilio signs each webhook with ``X-Twilio-Signature``: the Base64 of the
HMAC-SHA1, keyed with the account's auth token, of the full URL it requested
followed by every POST parameter sorted by name, each name then its value
(a repeated name's values sorted too). The URL is the one Twilio called:
behind a proxy, set ``public_url`` to the channel's address as Twilio sees
it (``https://centre.example/api/v1/channels/sms``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qsl

from litestar import Request, Response, post
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
from omniroute.channels.http import refuse
from omniroute.errors import InvalidInputError
from omniroute.runtime.api import IdentityIn
from omniroute.store.records import DeliveryStatus
from omniroute_messaging.common import Provider

__all__ = ["TWILIO", "TwilioConnector", "TwilioOptions", "twilio_signature"]

SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Twilio's message statuses as omniroute's delivery statuses (the others change nothing).
_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


class TwilioOptions(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account_sid: Annotated[str, Meta(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: Annotated[str, Meta(min_length=8)]
    # The number (or "whatsapp:+...") replies are sent from.
    from_number: Annotated[str, Meta(min_length=3, max_length=64)]
    api_base_url: str = "https://api.twilio.com"
    # This channel's address as Twilio calls it (signatures cover it); the request's own URL without it.
    public_url: str | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` for a request to ``url`` with these POST parameters."""
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    signed = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioConnector(ChannelConnector):
    capabilities: ClassVar[Capabilities] = Capabilities(synchronous=False, rich_media=True, typing=False)
    options: TwilioOptions

    def __init__(self, setup: ChannelSetup, options: TwilioOptions) -> None:
        super().__init__(setup, options)
        self._provider = Provider(options.timeout_seconds)
        # WhatsApp through Twilio writes numbers as "whatsapp:+44...".
        self._kind = "whatsapp" if options.from_number.startswith("whatsapp:") else "phone"

    async def _signed_form(self, request: Request[Any, Any, Any], path: str) -> list[tuple[str, str]] | str:
        """The request's form parameters, or why its signature is refused."""
        body = (await request.body()).decode("utf-8", "replace")
        params = parse_qsl(body, keep_blank_values=True)
        signature = request.headers.get(SIGNATURE_HEADER.lower())
        if not signature:
            return f"{SIGNATURE_HEADER}: the header is required"
        url = str(request.url)
        if self.options.public_url is not None:
            query = f"?{request.url.query}" if request.url.query else ""
            url = self.options.public_url.rstrip("/") + path + query
        expected = twilio_signature(self.options.auth_token, url, params)
        if not hmac.compare_digest(expected, signature):
            return f"{SIGNATURE_HEADER}: does not match the URL and the parameters"
        return params

    def routes(self) -> list[BaseRouteHandler]:
        connector = self

        @post("/messages", status_code=200, summary="Twilio's incoming-message webhook")
        async def receive(request: Request[Any, Any, Any]) -> Response[Any]:
            form = await connector._signed_form(request, "/messages")
            if isinstance(form, str):
                return refuse(403, form)
            fields = dict(form)
            sid = fields.get("MessageSid") or fields.get("SmsMessageSid")
            sender = fields.get("From")
            if not sid:
                return refuse(400, "MessageSid: the parameter is required")
            if not sender:
                return refuse(400, "From: the parameter is required")
            body = fields.get("Body", "")
            # Media stay at Twilio; the transcript names them.
            media = [
                f"[{fields.get(f'MediaContentType{n}', 'media')}: {fields[f'MediaUrl{n}']}]"
                for n in range(int(fields.get("NumMedia", "0") or 0))
                if f"MediaUrl{n}" in fields
            ]
            kind = "whatsapp" if sender.startswith("whatsapp:") else "phone"
            inbound = Inbound(
                provider_id=sid,
                identities=[IdentityIn(kind=kind, value=sender)],
                body="\n".join([body, *media]) if media else body,
                display_name=fields.get("ProfileName") or None,
            )
            try:
                await connector.gateway.receive(inbound)
            except InvalidInputError as e:
                return refuse(400, str(e))
            # Stored: now Twilio may forget it. No automatic reply.
            return Response(EMPTY_TWIML, status_code=200, media_type="text/xml")

        @post("/status", status_code=200, summary="Twilio's message status callback")
        async def status(request: Request[Any, Any, Any]) -> Response[Any]:
            form = await connector._signed_form(request, "/status")
            if isinstance(form, str):
                return refuse(403, form)
            fields = dict(form)
            sid, reported = fields.get("MessageSid"), fields.get("MessageStatus")
            if not sid or not reported:
                return refuse(400, "MessageSid, MessageStatus: both parameters are required")
            mapped = _STATUSES.get(reported)
            if mapped is None:
                return Response("", status_code=200, media_type="text/plain")  # queued, sending: nothing new
            detail = f"Twilio error {fields['ErrorCode']}" if fields.get("ErrorCode") else None
            try:
                delivery = await connector.gateway.report_by_provider_id(sid, mapped, detail=detail)
            except InvalidInputError as e:
                return refuse(400, str(e))
            if delivery is None:
                return refuse(404, f"MessageSid: no message of this channel is {sid!r}")
            return Response("", status_code=200, media_type="text/plain")

        return [receive, status]

    async def send(self, message: Outbound) -> str | None:
        to = next((i.value for i in message.to if i.kind == self._kind), None)
        if to is None:
            raise DeliveryError(f"to: the customer has no {self._kind} number", retry=False)
        if self._kind == "whatsapp":
            to = f"whatsapp:{to}"
        form = {"To": to, "From": self.options.from_number, "Body": message.body}
        if self.options.public_url is not None:
            form["StatusCallback"] = self.options.public_url.rstrip("/") + "/status"
        base = self.options.api_base_url.rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{self.options.account_sid}/Messages.json"
        answer = await self._provider.post(
            url, data=form, auth=(self.options.account_sid, self.options.auth_token)
        )
        sid = answer.get("sid")
        return str(sid) if sid is not None else None


TWILIO = ChannelKind(
    name="twilio",
    connector=TwilioConnector,
    options=TwilioOptions,
    description="SMS (or WhatsApp) through Twilio Messaging: X-Twilio-Signature webhooks, the Messages API",
)
