"""SMS through Twilio and WhatsApp through Meta: real signed webhooks into a real server, replies to a
provider API on loopback."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from omniroute_messaging import hub_signature, twilio_signature
from procs import serve_channels

ACCOUNT = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-123"
APP_SECRET = "meta-app-secret-456"
VERIFY_TOKEN = "meta-verify-token-789"
ACCESS_TOKEN = "meta-access-token-abc"
PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = "+447911123456"


def test_the_twilio_signature_is_twilios_documented_example() -> None:
    # The worked example of Twilio's request-validation documentation and client libraries.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature("12345", url + "&x=1", params.items()) != "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    # The order parameters arrive in does not matter.
    assert twilio_signature("12345", url, reversed(list(params.items()))) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


class Providers:
    """Twilio's Messages API and Meta's Graph API, as far as sending goes, on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        providers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                providers.requests.append((self.path, headers, body))
                n = len(providers.requests)
                if self.path.startswith("/2010-04-01/"):
                    expected = base64.b64encode(f"{ACCOUNT}:{AUTH_TOKEN}".encode()).decode()
                    ok = headers.get("authorization") == f"Basic {expected}"
                    answer: dict[str, Any] = {"sid": f"SM{n:032d}", "status": "queued"}
                else:
                    ok = headers.get("authorization") == f"Bearer {ACCESS_TOKEN}"
                    answer = {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.out{n}"}]}
                payload = json.dumps(answer if ok else {"error": "unauthorised"}).encode()
                self.send_response(201 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int) -> None:
        for _ in range(500):
            if len(self.requests) >= count:
                return
            time.sleep(0.01)
        raise AssertionError(f"{len(self.requests)} requests to the providers, not {count}")


CONFIG = """
[[channels]]
name = "sms"
cost = 10

[[channels]]
name = "whatsapp"
cost = 10

[[queues]]
name = "support"

[[agents]]
id = "ann"
queues = { support = 0 }
"""


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[tuple[str, str, Providers]]:
    providers = Providers()
    connectors = f"""
[[connector]]
kind = "twilio"
channel = "sms"
queue = "support"
[connector.options]
account_sid = "{ACCOUNT}"
auth_token = "{AUTH_TOKEN}"
from_number = "+14155550123"
api_base_url = "{providers.base}"

[[connector]]
kind = "whatsapp"
channel = "whatsapp"
queue = "support"
[connector.options]
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "{ACCESS_TOKEN}"
phone_number_id = "{PHONE_NUMBER_ID}"
api_base_url = "{providers.base}"
"""
    scopes = ["interactions:read", "interactions:write", "customers:read", "events:read", "work"]
    proc, port, token = serve_channels(tmp_path, CONFIG, connectors, scopes)
    try:
        yield f"http://127.0.0.1:{port}/api/v1", token, providers
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "log").read_text()[-3000:]
        providers.server.shutdown()
        providers.server.server_close()


def twilio_post(
    client: httpx.Client, base: str, path: str, params: dict[str, str], token: str = AUTH_TOKEN
) -> httpx.Response:
    url = f"{base}/channels/sms/{path}"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(token, url, params.items()),
    }
    return client.post(url, content=urlencode(params), headers=headers)


def meta_post(client: httpx.Client, base: str, document: Any, secret: str = APP_SECRET) -> httpx.Response:
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": hub_signature(secret, body)}
    return client.post(f"{base}/channels/whatsapp/webhook", content=body, headers=headers)


def notification(value: dict[str, Any]) -> dict[str, Any]:
    """A WhatsApp Cloud API webhook body around one change's value, as Meta sends it."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def accept_and_reply(api: httpx.Client, interaction: str, text: str) -> str:
    for _ in range(200):
        offers = [o for o in api.get("/offers").json() if o["interaction"] == interaction]
        if offers:
            break
        time.sleep(0.02)
    assert api.post(f"/offers/{offers[0]['offer']}/accept").status_code == 204
    reply = api.post(
        f"/interactions/{interaction}/messages", json={"body": text, "direction": "outbound", "author": "ann"}
    )
    assert reply.status_code == 201, reply.text
    message: str = reply.json()["message"]
    return message


def delivery_statuses(api: httpx.Client) -> list[tuple[str, str]]:
    events = api.get("/events", params={"limit": 10000}).json()
    return [
        (e["data"]["delivery"]["channel"], e["data"]["delivery"]["status"])
        for e in events
        if e["type"] == "omniroute.delivery_updated"
    ]


def test_an_sms_conversation_answered_from_the_desktop_leaves_through_twilio(
    centre: tuple[str, str, Providers],
) -> None:
    base, token, providers = centre
    sms = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": ACCOUNT,
        "From": CUSTOMER,
        "To": "+14155550123",
        "Body": "Is my parcel coming?",
        "NumMedia": "0",
    }
    with (
        httpx.Client(timeout=10) as twilio,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api,
    ):
        # Unsigned, signed with another token, or missing its sid: refused, nothing stored.
        assert twilio.post(f"{base}/channels/sms/messages", data=sms).status_code == 403
        assert twilio_post(twilio, base, "messages", sms, token="not-the-auth-token").status_code == 403
        missing = twilio_post(twilio, base, "messages", {k: v for k, v in sms.items() if k != "MessageSid"})
        assert (missing.status_code, missing.json()["detail"]) == (
            400,
            "MessageSid: the parameter is required",
        )
        bad_number = twilio_post(
            twilio, base, "messages", {**sms, "MessageSid": "SM" + "b" * 32, "From": "12"}
        )
        assert bad_number.status_code == 400
        assert bad_number.json()["detail"].startswith("inbound.identities[0]")

        first = twilio_post(twilio, base, "messages", sms)
        assert first.status_code == 200, first.text
        assert first.headers["content-type"].startswith("text/xml")
        assert "<Response>" in first.text
        # Twilio retries a webhook it got no answer to: the same sid is one message.
        assert twilio_post(twilio, base, "messages", sms).status_code == 200
        found = api.get("/events", params={"limit": 10000}).json()
        created = [e for e in found if e["type"] == "omniroute.interaction_created"]
        assert len(created) == 1
        interaction = created[0]["data"]["interaction"]["id"]
        assert [m["body"] for m in api.get(f"/interactions/{interaction}/messages").json()] == [
            "Is my parcel coming?"
        ]

        sent_id = accept_and_reply(api, interaction, "Yes, tomorrow morning")
        providers.wait(1)
        path, _, body = providers.requests[0]
        assert path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        assert dict(parse_qsl(body.decode())) == {
            "To": CUSTOMER,
            "From": "+14155550123",
            "Body": "Yes, tomorrow morning",
        }
        for _ in range(200):
            if ("sms", "sent") in delivery_statuses(api):
                break
            time.sleep(0.02)
        sid = "SM" + "1".zfill(32)
        callback = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": ACCOUNT}
        assert twilio_post(twilio, base, "status", callback).status_code == 200
        assert twilio_post(twilio, base, "status", callback).status_code == 200  # retried: no change
        assert (
            twilio_post(twilio, base, "status", {**callback, "MessageStatus": "sending"}).status_code == 200
        )
        unknown = twilio_post(twilio, base, "status", {**callback, "MessageSid": "SM" + "9" * 32})
        assert unknown.status_code == 404
        assert twilio.post(f"{base}/channels/sms/status", data=callback).status_code == 403
        assert delivery_statuses(api) == [("sms", "sent"), ("sms", "delivered")]
        # Both reports are about the agent's reply, and the sid is the one Twilio gave it.
        reports = [
            e["data"]["delivery"]
            for e in api.get("/events", params={"limit": 10000}).json()
            if e["type"] == "omniroute.delivery_updated"
        ]
        assert {(r["message_id"], r["provider_id"]) for r in reports} == {(sent_id, sid)}


def test_whatsapp_through_the_cloud_api_handshake_messages_and_statuses(
    centre: tuple[str, str, Providers],
) -> None:
    base, token, providers = centre
    with (
        httpx.Client(timeout=10) as meta,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api,
    ):
        handshake = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
        answer = meta.get(f"{base}/channels/whatsapp/webhook", params=handshake)
        assert (answer.status_code, answer.text) == (200, "1158201444")
        wrong = meta.get(
            f"{base}/channels/whatsapp/webhook", params={**handshake, "hub.verify_token": "guess-guess"}
        )
        assert wrong.status_code == 403

        incoming = notification(
            {
                "contacts": [{"profile": {"name": "Pat Doe"}, "wa_id": CUSTOMER.lstrip("+")}],
                "messages": [
                    {
                        "from": CUSTOMER.lstrip("+"),
                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                        "timestamp": "1700000000",
                        "type": "text",
                        "text": {"body": "Hello from WhatsApp"},
                    }
                ],
            }
        )
        assert meta.post(f"{base}/channels/whatsapp/webhook", json=incoming).status_code == 401
        assert meta_post(meta, base, incoming, secret="another-secret").status_code == 401
        malformed = meta_post(meta, base, {"object": "whatsapp_business_account", "entry": "x"})
        assert malformed.status_code == 400
        assert malformed.json()["detail"].startswith("entry:")
        assert meta_post(meta, base, incoming).status_code == 200
        assert meta_post(meta, base, incoming).status_code == 200  # Meta's retry: one message
        created = [
            e
            for e in api.get("/events", params={"limit": 10000}).json()
            if e["type"] == "omniroute.interaction_created"
        ]
        assert len(created) == 1
        interaction = created[0]["data"]["interaction"]["id"]
        customer = created[0]["data"]["interaction"]["customer_id"]
        assert api.get(f"/customers/{customer}").json()["display_name"] == "Pat Doe"

        accept_and_reply(api, interaction, "Hi Pat, how can we help?")
        providers.wait(1)
        path, _, body = providers.requests[0]
        assert path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
        assert json.loads(body)["to"] == CUSTOMER.lstrip("+")
        assert json.loads(body)["text"] == {"body": "Hi Pat, how can we help?"}
        for _ in range(200):
            if ("whatsapp", "sent") in delivery_statuses(api):
                break
            time.sleep(0.02)
        statuses = notification(
            {
                "statuses": [
                    {
                        "id": "wamid.out1",
                        "status": "read",
                        "timestamp": "1700000100",
                        "recipient_id": CUSTOMER.lstrip("+"),
                    }
                ]
            }
        )
        assert meta_post(meta, base, statuses).status_code == 200
        assert delivery_statuses(api) == [("whatsapp", "sent"), ("whatsapp", "read")]
