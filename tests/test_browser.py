"""The agent desktop and the supervisor wallboard in headless Chromium
(Debian's, driven by Playwright), against a real ``omniroute serve`` on
loopback. Screenshots are kept under ``artifacts/screenshots``."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from omniroute.server import Access
from omniroute.server.access import NewToken, NewUser
from omniroute.store import open_store
from procs import start_omniroute

CONFIG = """
[[channels]]
name = "chat"
cost = 20

[[channels]]
name = "email"
cost = 10

[[queues]]
name = "support"
wrap_up = 300

[[agents]]
id = "ann"
queues = { support = 0 }
available = false

[[agents]]
id = "bob"
queues = { support = 0 }
"""
PASSWORD = "browser-secret"
SHOTS = (
    Path(os.environ.get("OMNIROUTE_ARTIFACTS", Path(__file__).parent.parent / "artifacts")) / "screenshots"
)


def chromium() -> str:
    """Debian's chromium, which the test command installs (scripts/chromium.sh)."""
    path = os.environ.get("OMNIROUTE_CHROMIUM") or shutil.which("chromium")
    if path is None:
        raise AssertionError("no chromium on PATH: run `bash scripts/chromium.sh install` (make test does)")
    return path


class Centre:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.api = httpx.Client(
            base_url=base + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    workdir = tmp_path_factory.mktemp("browser")
    store_url = f"sqlite:///{workdir}/browser.db"
    (workdir / "centre.toml").write_text(CONFIG)
    with open_store(store_url) as store:
        access = Access(store)
        for name, role, agent in (("ann", "agent", "ann"), ("sue", "supervisor", None)):
            access.add_user(NewUser(name=name, role=role, agent=agent, password=PASSWORD))  # type: ignore[arg-type]
        # The test's own hands: a channel, and bob's side of the work.
        token, _ = access.add_token(
            NewToken(name="test", scopes=["interactions:create", "interactions:read", "work", "agents:write"])
        )
    proc, port = start_omniroute(
        ["serve", "--store", store_url, "--config", str(workdir / "centre.toml")],
        workdir / "ready.json",
        workdir / "log",
    )
    served = Centre(f"http://127.0.0.1:{port}", token)
    try:
        yield served
    finally:
        served.api.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (workdir / "log").read_text()[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(browser: Browser, base: str, name: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(base + "/")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    return page


def contact(centre: Centre, channel: str, body: str) -> dict[str, str]:
    reply = centre.api.post(
        "/interactions",
        json={
            "channel": channel,
            "queue": "support",
            "identities": [{"kind": "email", "value": "pat@example.com"}],
            "display_name": "Pat Doe",
            "message": {"body": body},
            # Not held for bob, who answered Pat last and has gone home.
            "sticky": False,
        },
    )
    assert reply.status_code == 201, reply.text
    ack: dict[str, str] = reply.json()
    return ack


def test_a_wrong_password_stays_on_the_login_page(centre: Centre, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(centre.base + "/")
    page.fill("#name", "ann")
    page.fill("#password", "not-her-password")
    page.click("#submit")
    expect(page.locator("#message")).to_contain_text("not a valid login")
    assert page.url.rstrip("/") == centre.base
    page.goto(centre.base + "/desktop")
    page.wait_for_url(centre.base + "/")  # the desktop sends an anonymous visitor back to log in
    page.close()


def test_an_agent_takes_a_chat_with_the_earlier_email_in_view_and_the_wallboard_follows(
    centre: Centre, browser: Browser
) -> None:
    # Earlier, bob answered Pat's e-mail and left a note.
    email = contact(centre, "email", "My invoice is wrong")
    offers = centre.api.get("/offers").json()
    offer = next(o for o in offers if o["interaction"] == email["interaction"])
    assert offer["agent"] == "bob"
    assert centre.api.post(f"/offers/{offer['offer']}/accept").status_code == 204
    done = centre.api.post(
        f"/tasks/{email['interaction']}/complete",
        json={"disposition": "resolved", "note": "Sent a corrected invoice"},
    )
    assert done.status_code == 204
    assert centre.api.put("/agents/bob/state", json={"state": "offline"}).status_code == 204

    wallboard = log_in(browser, centre.base, "sue")
    wallboard.wait_for_url(centre.base + "/wallboard")
    expect(wallboard.locator('tr[data-agent="ann"]')).to_contain_text("offline")

    desk = log_in(browser, centre.base, "ann")
    desk.wait_for_url(centre.base + "/desktop")
    expect(desk.locator("#link")).to_have_text("live")
    desk.select_option("#state", "available")
    expect(wallboard.locator('tr[data-agent="ann"]')).to_contain_text("available", timeout=10_000)
    expect(desk.locator("#state")).to_have_value("available")

    chat = contact(centre, "chat", "Hi, is the new invoice ready?")
    assert chat["customer"] == email["customer"]
    expect(desk.locator("#offer")).to_be_visible()
    expect(desk.locator("#offer-channel")).to_have_text("chat")
    expect(desk.locator("#offer-customer")).to_have_text("Pat Doe")
    expect(desk.locator("#offer-countdown")).to_contain_text(" s")
    shot(desk, "1-desktop-offer")
    desk.click("#accept")

    # The chat, with the e-mail before it: one conversation across channels.
    transcript = desk.locator("#transcript")
    expect(transcript).to_contain_text("My invoice is wrong")
    expect(transcript).to_contain_text("Hi, is the new invoice ready?")
    timeline = desk.locator("#timeline")
    expect(timeline).to_contain_text("email")
    expect(timeline).to_contain_text("Sent a corrected invoice")
    expect(desk.locator("#customer")).to_contain_text("email: pat@example.com")

    desk.fill("#reply", "Yes, it is on its way, Pat.")
    desk.click("#send")
    expect(transcript).to_contain_text("Yes, it is on its way, Pat.")
    messages = centre.api.get(f"/interactions/{chat['interaction']}/messages").json()
    assert (messages[-1]["direction"], messages[-1]["author"]) == ("outbound", "ann")
    shot(desk, "2-desktop-conversation")

    # Pat waits on hold while ann consults bob, who answers at once.
    desk.click("#hold")
    expect(desk.locator("#hold-state")).to_contain_text("on hold since")
    expect(desk.locator("#hold")).to_have_text("Resume")
    desk.select_option("#consult-to", "bob")
    desk.fill("#consult-body", "Can I waive the late fee?")
    desk.click("#consult-send")
    consults = desk.locator("#consults")
    expect(consults).to_contain_text("me → bob")
    answer = centre.api.post("/consults", json={"sender": "bob", "to": "ann", "body": "Yes, once."})
    assert answer.status_code == 201, answer.text
    expect(consults).to_contain_text("bob → me")
    expect(consults).to_contain_text("Yes, once.")
    shot(desk, "2b-desktop-hold-and-consult")
    desk.click("#hold")
    expect(desk.locator("#hold")).to_have_text("Hold")
    expect(desk.locator("#hold-state")).to_have_text("")
    held = centre.api.get(f"/interactions/{chat['interaction']}").json()
    assert held["held_at"] is None
    assert held["hold_seconds"] > 0

    desk.select_option("#disposition", "resolved")
    desk.fill("#note", "Confirmed the corrected invoice by chat")
    desk.click("#complete")
    expect(desk.locator("#end-wrap-up")).to_be_visible()
    expect(wallboard.locator('tr[data-agent="ann"]')).to_contain_text("wrap up", timeout=10_000)
    expect(wallboard.locator('[data-tile="answered"]')).to_contain_text("2", timeout=10_000)
    shot(wallboard, "3-wallboard-wrap-up")
    desk.click("#end-wrap-up")
    expect(wallboard.locator('tr[data-agent="ann"]')).to_contain_text("available", timeout=10_000)
    expect(desk.locator("#end-wrap-up")).to_be_hidden()
    expect(desk.locator("#state")).to_have_value("available")

    finished = centre.api.get(f"/interactions/{chat['interaction']}").json()
    assert (finished["status"], finished["agent"], finished["disposition"]) == (
        "completed",
        "ann",
        "resolved",
    )
    shot(wallboard, "4-wallboard")
    desk.click("#logout")
    desk.wait_for_url(centre.base + "/")
