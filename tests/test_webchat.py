"""The web chat channel: the widget in headless Chromium and its socket, against a real server on loopback."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from procs import serve_channels
from test_browser import SHOTS, chromium

CONFIG = """
[[channels]]
name = "chat"
cost = 20

[[channels]]
name = "email"
cost = 10

[[channels]]
name = "voice"
cost = 60

[[queues]]
name = "support"

[[agents]]
id = "ann"
queues = { support = 0 }
"""

CONNECTORS = """
[[connector]]
kind = "webchat"
channel = "chat"
queue = "support"
[connector.options]
title = "Talk to Acme"
callback_channel = "voice"
callback_queue = "support"
abandon_after_seconds = 1
"""


class Centre:
    def __init__(self, workdir: Path) -> None:
        scopes = [
            "agents:read",
            "interactions:create",
            "interactions:read",
            "interactions:write",
            "customers:read",
            "events:read",
            "work",
        ]
        self.proc, port, self.token = serve_channels(workdir, CONFIG, CONNECTORS, scopes)
        self.base = f"http://127.0.0.1:{port}"
        self.api = httpx.Client(
            base_url=self.base + "/api/v1", headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )

    def offer_for(self, interaction: str) -> int:
        for _ in range(300):
            for offer in self.api.get("/offers").json():
                if offer["interaction"] == interaction:
                    number: int = offer["offer"]
                    return number
            time.sleep(0.02)
        raise AssertionError(f"no offer for {interaction}")

    def created(self, channel: str) -> list[dict[str, Any]]:
        events = self.api.get("/events", params={"limit": 10000}).json()
        return [
            e["data"]["interaction"]
            for e in events
            if e["type"] == "omniroute.interaction_created" and e["data"]["interaction"]["channel"] == channel
        ]


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Centre]:
    c = Centre(tmp_path)
    try:
        yield c
    finally:
        c.api.close()
        c.proc.send_signal(signal.SIGTERM)
        assert c.proc.wait(timeout=60) == 0, (tmp_path / "log").read_text()[-3000:]


def test_a_customer_who_emailed_chats_with_the_widget_and_asks_for_a_call(centre: Centre) -> None:
    api = centre.api
    # Pat e-mailed last week.
    mail = api.post(
        "/interactions",
        json={
            "channel": "email",
            "queue": "support",
            "identities": [{"kind": "email", "value": "pat@example.com"}],
            "display_name": "Pat Doe",
            "message": {"body": "My invoice is wrong"},
            "sticky": False,
        },
    ).json()
    assert api.post(f"/offers/{centre.offer_for(mail['interaction'])}/accept").status_code == 204
    assert (
        api.post(f"/tasks/{mail['interaction']}/complete", json={"disposition": "answered"}).status_code
        == 204
    )

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1000, "height": 700}).new_page()
            page.goto(centre.base + "/api/v1/channels/chat/demo")
            expect(page.locator("#omniroute-title")).to_have_text("Talk to Acme")
            page.fill("#omniroute-name", "Pat")
            page.fill("#omniroute-email", "PAT@example.com")
            page.click("#omniroute-start button")
            page.fill("#omniroute-text", "Is the corrected invoice ready?")
            page.click("#omniroute-send")
            log = page.locator("#omniroute-log")
            expect(log).to_contain_text("Is the corrected invoice ready?")

            # One customer: the chat's offer carries the e-mail before it.
            (chat,) = centre.created("chat")
            assert chat["customer_id"] == mail["customer"]
            context = api.get(f"/interactions/{chat['id']}").json()
            timeline = api.get(f"/customers/{context['customer_id']}/context").json()["timeline"]
            assert {e["interaction"]["channel"] for e in timeline} == {"email", "chat"}

            assert api.post(f"/offers/{centre.offer_for(chat['id'])}/accept").status_code == 204
            reply = api.post(
                f"/interactions/{chat['id']}/messages",
                json={"body": "Yes, it is on its way.", "direction": "outbound", "author": "ann"},
            )
            assert reply.status_code == 201
            expect(log).to_contain_text("Yes, it is on its way.")

            # Typing shows both ways, and is never stored.
            stream_url = centre.base.replace("http://", "ws://") + "/api/v1/stream"
            with connect(
                stream_url, additional_headers={"Authorization": f"Bearer {centre.token}"}
            ) as stream:
                time.sleep(0.2)
                page.type("#omniroute-text", "one more thing")
                for _ in range(200):
                    heard = json.loads(stream.recv(timeout=10))
                    if "signal" in heard:
                        break
                assert heard["signal"] == {"channel": "chat", "interaction": chat["id"], "typing": True}
                stream.send(json.dumps({"id": 1, "op": "typing", "task": chat["id"]}))
                expect(page.locator("#omniroute-note")).to_have_text("The agent is typing…")
                stream.send(json.dumps({"id": 2, "op": "typing", "task": mail["interaction"]}))
                for _ in range(200):
                    answer = json.loads(stream.recv(timeout=10))
                    if answer.get("reply") == 2:
                        break
                assert answer["error"]["detail"] == "task: channel 'email' shows no typing"
            page.fill("#omniroute-text", "")
            assert [m["body"] for m in api.get(f"/interactions/{chat['id']}/messages").json()] == [
                "Is the corrected invoice ready?",
                "Yes, it is on its way.",
            ]

            # A reload (or another tab) rejoins the live chat with its transcript.
            page.reload()
            expect(page.locator("#omniroute-log")).to_contain_text("Is the corrected invoice ready?")
            expect(page.locator("#omniroute-log")).to_contain_text("Yes, it is on its way.")

            # "Call me": a callback task on the voice channel, in the chat's conversation.
            page.fill("#omniroute-phone", "+44 20 7946 0958")
            page.click("#omniroute-call")
            expect(page.locator("#omniroute-note")).to_contain_text("call you back")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "5-webchat-widget.png"))
            (callback,) = centre.created("voice")
            assert (callback["direction"], callback["conversation_id"]) == (
                "outbound",
                chat["conversation_id"],
            )
            assert callback["attributes"]["callback_number"] == "+44 20 7946 0958"
            context = api.get(f"/customers/{callback['customer_id']}/context").json()
            # The conversation the e-mail opened, continued in the chat: the caller sees all of it.
            assert [m["body"] for m in context["transcript"]] == [
                "My invoice is wrong",
                "Is the corrected invoice ready?",
                "Yes, it is on its way.",
            ]
        finally:
            browser.close()


def test_the_chat_socket_refuses_bad_input_and_a_visitor_who_leaves_unanswered_abandons(
    centre: Centre,
) -> None:
    url = centre.base.replace("http://", "ws://") + "/api/v1/channels/chat/socket"
    with connect(url + "?visitor=short", open_timeout=10) as refused:
        with pytest.raises(ConnectionClosed) as closed:
            refused.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            4400,
            "visitor: 16 to 64 letters, digits, - or _",
        )
    visitor = "visitor-abcdefghijklmnop"
    with connect(f"{url}?visitor={visitor}", open_timeout=10) as socket:
        hello = json.loads(socket.recv(timeout=10))["hello"]
        assert (hello["title"], hello["callback"], hello["transcript"]) == ("Talk to Acme", True, [])
        socket.send("not json")
        assert json.loads(socket.recv(timeout=10))["error"].startswith("command: not JSON")
        socket.send(json.dumps({"op": "message", "id": "1"}))
        assert "text" in json.loads(socket.recv(timeout=10))["error"]
        socket.send(json.dumps({"op": "callback", "phone": "12"}))
        assert "phone" in json.loads(socket.recv(timeout=10))["error"]
        socket.send(json.dumps({"op": "message", "id": "1", "text": "Anyone there?"}))
        assert json.loads(socket.recv(timeout=10)) == {"ack": "1", "text": "Anyone there?"}
        # The same message again (a resend after a lost answer): stored once.
        socket.send(json.dumps({"op": "message", "id": "1", "text": "Anyone there?"}))
        json.loads(socket.recv(timeout=10))
    (chat,) = centre.created("chat")
    assert len(centre.api.get(f"/interactions/{chat['id']}/messages").json()) == 1
    # Gone without an answer: abandoned once abandon_after_seconds (1 s here) have passed.
    for _ in range(300):
        if centre.api.get(f"/interactions/{chat['id']}").json()["status"] == "abandoned":
            break
        time.sleep(0.05)
    assert centre.api.get(f"/interactions/{chat['id']}").json()["status"] == "abandoned"
