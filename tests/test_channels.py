"""Channels as plugins: the gateway, the host that sends, the webhook channel over real HTTP on loopback."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from omniroute.channels import Inbound, build_connectors, load_setups
from omniroute.channels.connector import ChannelSetup
from omniroute.errors import InvalidConfigError, InvalidInputError
from omniroute.runtime import MessageIn, Runtime
from omniroute.runtime.api import IdentityIn
from omniroute.store import open_store
from omniroute.testing import ChannelRuntime, centre_config
from omniroute_webhook import KIND, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookConnector, WebhookOptions, sign
from procs import serve_channels

SECRET = "a-shared-secret-of-some-length"
PAT = [IdentityIn(kind="x", value="@PatDoe")]


class Receiver:
    """The other side of an outbound webhook, on 127.0.0.1: it records each
    request and answers with the next scripted status (200 with a provider id
    once the script runs out)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.script.pop(0) if receiver.script else 200
                answer = json.dumps({"id": f"net-{len(receiver.requests)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verified(self, n: int) -> dict[str, Any]:
        """The n-th request's body, after checking its signature as the other side must."""
        headers, body = self.requests[n]
        assert headers[SIGNATURE_HEADER.lower()] == sign(SECRET, headers[TIMESTAMP_HEADER.lower()], body)
        decoded: dict[str, Any] = json.loads(body)
        return decoded


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


async def delivered(runtime: Runtime, message: str, status: str = "sent") -> Any:
    for _ in range(500):
        found = await runtime.delivery(message)
        if found is not None and found.status == status:
            return found
        await anyio.sleep(0.01)
    raise AssertionError(f"message {message}: no {status} delivery ({await runtime.delivery(message)})")


# ----- the gateway and the host, in a runtime -----


@pytest.mark.anyio
async def test_a_channel_stores_once_joins_the_live_interaction_and_sends_with_retries(
    channel_runtime: ChannelRuntime, receiver: Receiver
) -> None:
    options = WebhookOptions(secret=SECRET, outbound_url=receiver.url)
    async with channel_runtime(WebhookConnector, options, kind="webhook", channel="social") as (
        rt,
        connector,
    ):
        first = await connector.gateway.receive(
            Inbound(provider_id="p1", identities=PAT, body="Hi", display_name="Pat")
        )
        assert (first.new_interaction, first.duplicate) == (True, False)
        again = await connector.gateway.receive(Inbound(provider_id="p1", identities=PAT, body="Hi"))
        assert (again.duplicate, again.message, again.interaction) == (True, first.message, first.interaction)
        # The same customer writes on: the live interaction takes it (an asynchronous channel).
        second = await connector.gateway.receive(
            Inbound(provider_id="p2", identities=[IdentityIn(kind="x", value="@patdoe")], body="Still there?")
        )
        assert (second.interaction, second.new_interaction, second.duplicate) == (
            first.interaction,
            False,
            False,
        )
        assert [m.body for m in await rt.messages(first.interaction)] == ["Hi", "Still there?"]
        with pytest.raises(InvalidInputError, match=r"inbound\.identities\[0\]"):
            await connector.gateway.receive(
                Inbound(provider_id="p3", identities=[IdentityIn(kind="sms", value="1")], body="x")
            )

        (offer,) = [o for o, (task, _) in rt.offers().items() if task == first.interaction]
        await rt.accept(offer)
        # The network fails once (503), then takes it: one message, sent once it got through.
        receiver.script = [503]
        reply = await rt.add_message(
            first.interaction, MessageIn(body="Hello Pat", direction="outbound", author="agent-1")
        )
        sent = await delivered(rt, reply)
        assert (sent.provider_id, sent.channel) == ("net-2", "social")
        assert len(receiver.requests) == 2
        body = receiver.verified(1)
        assert (body["id"], body["text"], body["to"]) == (
            reply,
            "Hello Pat",
            [{"kind": "x", "value": "patdoe"}],
        )
        assert receiver.requests[1][0]["idempotency-key"] == reply

        # Status reports move forward only; a repeated or late one changes nothing.
        assert (await connector.gateway.report_by_provider_id("net-2", "delivered")).status == "delivered"  # type: ignore[union-attr]
        assert (await connector.gateway.report_by_provider_id("net-2", "sent")).status == "delivered"  # type: ignore[union-attr]
        assert (await connector.gateway.report_by_provider_id("net-2", "read")).status == "read"  # type: ignore[union-attr]
        assert await connector.gateway.report_by_provider_id("net-unknown", "read") is None
        updates = [e for e in await rt.events(0, limit=10_000) if e.type == "delivery_updated"]
        assert [e.data.delivery.status for e in updates] == ["sent", "delivered", "read"]  # type: ignore[union-attr]

        # Refused for good (400): failed, with the network's answer, and not retried.
        receiver.script = [400]
        refused = await rt.add_message(
            first.interaction, MessageIn(body="again", direction="outbound", author="agent-1")
        )
        failed = await delivered(rt, refused, "failed")
        assert failed.detail.startswith("outbound_url: answered 400")
        assert len(receiver.requests) == 3
        rt.check_invariants()


@pytest.mark.anyio
async def test_after_a_restart_the_host_sends_what_it_had_not_and_nothing_twice(
    channel_runtime: ChannelRuntime, receiver: Receiver, tmp_path: Path
) -> None:
    options = WebhookOptions(secret=SECRET, outbound_url=receiver.url)
    async with channel_runtime(WebhookConnector, options, kind="webhook", channel="social") as (
        rt,
        connector,
    ):
        got = await connector.gateway.receive(Inbound(provider_id="r1", identities=PAT, body="Hi"))
        (offer,) = [o for o, (task, _) in rt.offers().items() if task == got.interaction]
        await rt.accept(offer)
        sent = await rt.add_message(
            got.interaction, MessageIn(body="one", direction="outbound", author="agent-1")
        )
        await delivered(rt, sent)
    # While the channel is down an agent's reply is stored (through a runtime without the host).
    url = f"sqlite:///{tmp_path}/channel-social.db"
    async with Runtime.open(open_store(url)) as bare:
        waiting = await bare.add_message(
            got.interaction, MessageIn(body="two", direction="outbound", author="agent-1")
        )
        assert await bare.delivery(waiting) is None
    async with channel_runtime(WebhookConnector, options, kind="webhook", channel="social") as (rt, _):
        await delivered(rt, waiting)
        await anyio.sleep(0.2)
        assert [receiver.verified(n)["text"] for n in range(len(receiver.requests))] == ["one", "two"]


def test_a_connectors_file_is_checked_naming_the_field(tmp_path: Path) -> None:
    config = centre_config("social")
    kinds = {"webhook": KIND}
    path = tmp_path / "connectors.toml"
    cases = [
        (
            '[[connector]]\nkind = "fax"\nchannel = "social"\nqueue = "support"\n',
            "connector[0].kind: no channel kind 'fax'",
        ),
        (
            '[[connector]]\nkind = "webhook"\nchannel = "pigeon"\nqueue = "support"\n',
            "connector[0].channel: 'pigeon'",
        ),
        (
            '[[connector]]\nkind = "webhook"\nchannel = "social"\nqueue = "nowhere"\n',
            "connector[0].queue: 'nowhere'",
        ),
        (
            '[[connector]]\nkind = "webhook"\nchannel = "social"\nqueue = "support"\n'
            'options = { secret = "short" }\n',
            "connector[0].options.secret",
        ),
        ('[[connector]]\nkind = "webhook"\nchannel = "social"\nqueue = "support"\ncolour = 1\n', "colour"),
        ("[[connector]\n", "cannot read"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(InvalidConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            build_connectors(load_setups(path), kinds, config)
    twice = ChannelSetup(kind="webhook", channel="social", queue="support", options={"secret": SECRET})
    with pytest.raises(
        InvalidConfigError, match=r"connector\[1\]\.channel: channel 'social' has a connector already"
    ):
        build_connectors([twice, twice], kinds, config)


# ----- the webhook channel in a real server -----

CONFIG = """
[[channels]]
name = "social"
cost = 10

[[channels]]
name = "email"
cost = 10

[[queues]]
name = "support"

[[agents]]
id = "ann"
queues = { support = 0 }
"""


class Served:
    def __init__(self, workdir: Path, outbound_url: str) -> None:
        self.workdir = workdir
        connectors = (
            '[[connector]]\nkind = "webhook"\nchannel = "social"\nqueue = "support"\n'
            f'options = {{ secret = "{SECRET}", outbound_url = "{outbound_url}" }}\n'
        )
        scopes = [
            "interactions:create",
            "interactions:read",
            "interactions:write",
            "customers:read",
            "events:read",
            "work",
        ]
        self.proc, port, self.token = serve_channels(workdir, CONFIG, connectors, scopes)
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def signed(
        self, client: httpx.Client, path: str, document: Any, *, secret: str = SECRET, age: float = 0.0
    ) -> httpx.Response:
        body = json.dumps(document).encode()
        timestamp = f"{time.time() - age:.3f}"
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        return client.post(f"/channels/social/{path}", content=body, headers=headers)


@pytest.fixture
def served(tmp_path: Path, receiver: Receiver) -> Iterator[Served]:
    s = Served(tmp_path, receiver.url)
    try:
        yield s
    finally:
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=60) == 0, (tmp_path / "log").read_text()[-3000:]


def test_the_webhook_channel_over_http_signed_idempotent_and_continuous(
    served: Served, receiver: Receiver
) -> None:
    with (
        httpx.Client(base_url=served.base, timeout=10) as network,
        httpx.Client(
            base_url=served.base, headers={"Authorization": f"Bearer {served.token}"}, timeout=10
        ) as api,
    ):
        # The customer e-mailed first, through the API.
        mail = api.post(
            "/interactions",
            json={
                "channel": "email",
                "queue": "support",
                "identities": [{"kind": "email", "value": "pat@example.com"}],
                "message": {"body": "My order is late"},
            },
        ).json()
        message = {
            "id": "w-1",
            "from": [{"kind": "x", "value": "@pat"}, {"kind": "email", "value": "PAT@example.com"}],
            "text": "Any news?",
            "name": "Pat",
        }
        # Unsigned, wrongly signed, or replayed later: refused, nothing stored.
        assert network.post("/channels/social/messages", json=message).status_code == 401
        wrong = served.signed(network, "messages", message, secret="not-the-secret-at-all")
        assert (wrong.status_code, wrong.json()["detail"]) == (
            401,
            f"{SIGNATURE_HEADER}: does not match the body",
        )
        stale = served.signed(network, "messages", message, age=3600)
        assert stale.status_code == 401
        assert "from now" in stale.json()["detail"]
        malformed = served.signed(network, "messages", {"id": "w-2", "from": [], "text": 5})
        assert malformed.status_code == 400
        assert malformed.json()["detail"].startswith("text:")
        stamp = f"{time.time():.0f}"
        not_json = network.post(
            "/channels/social/messages",
            content=b"{",
            headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, b"{")},
        )
        assert not_json.status_code == 400
        assert not_json.json()["detail"].startswith("body: not JSON")

        first = served.signed(network, "messages", message)
        assert first.status_code == 202, first.text
        got = first.json()
        # The same customer as the e-mail: one record across channels.
        assert got["customer"] == mail["customer"]
        retried = served.signed(network, "messages", message)
        assert retried.json() == {**got, "new_interaction": False, "duplicate": True}
        assert [m["body"] for m in api.get(f"/interactions/{got['interaction']}/messages").json()] == [
            "Any news?"
        ]
        context = api.get(f"/customers/{got['customer']}/context").json()
        assert {e["interaction"]["channel"] for e in context["timeline"]} == {"email", "social"}

        # ann takes it and replies from the desktop's route: the reply leaves through the channel.
        for _ in range(200):
            offers = [o for o in api.get("/offers").json() if o["interaction"] == got["interaction"]]
            if offers:
                break
            time.sleep(0.02)
        assert api.post(f"/offers/{offers[0]['offer']}/accept").status_code == 204
        reply = api.post(
            f"/interactions/{got['interaction']}/messages",
            json={"body": "It ships today", "direction": "outbound", "author": "ann"},
        )
        assert reply.status_code == 201
        for _ in range(300):
            if receiver.requests:
                break
            time.sleep(0.02)
        sent = receiver.verified(0)
        assert (sent["id"], sent["text"]) == (reply.json()["message"], "It ships today")
        # The network's id is known once the host has stored the delivery as sent.
        for _ in range(300):
            events = api.get("/events", params={"limit": 10000}).json()
            if any(e["type"] == "omniroute.delivery_updated" for e in events):
                break
            time.sleep(0.02)
        status = served.signed(network, "status", {"id": "net-1", "status": "delivered"})
        assert status.status_code == 202, status.text
        assert status.json()["status"] == "delivered"
        assert served.signed(network, "status", {"id": "net-404", "status": "read"}).status_code == 404
        events = api.get("/events", params={"limit": 10000}).json()
        statuses = [
            e["data"]["delivery"]["status"] for e in events if e["type"] == "omniroute.delivery_updated"
        ]
        assert statuses == ["sent", "delivered"]
