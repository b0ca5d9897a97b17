"""``omniroute serve`` over real HTTP on loopback: the REST API, who may do
what (every rule expects its 401 or 403), and bad input naming the field."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from websockets.sync.client import ClientConnection, connect

from omniroute.errors import InvalidInputError
from omniroute.server import ROLE_SCOPES, SCOPES, Access
from omniroute.server.access import NewToken, NewUser
from omniroute.server.app import MAX_BODY_BYTES, create_app
from omniroute.server.demo import DEMO_PASSWORD
from omniroute.server.routes import ROUTES, SESSION_COOKIE, csv_filename
from omniroute.store import SqlStore, open_store
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
wrap_up = 120

[[queues]]
name = "sales"

[[agents]]
id = "ann"
queues = { support = 0 }
team = "front"

[[agents]]
id = "bob"
queues = { sales = 0 }
team = "front"
"""

PASSWORDS = {"admin": "admin-secret", "sue": "supervisor-secret", "ann": "ann-secret", "bob": "bob-secret"}


class Served:
    """A real ``omniroute serve`` process on 127.0.0.1 and what the tests log in with."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.store_url = f"sqlite:///{workdir}/server.db"
        self.tokens: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def prepare(self) -> None:
        (self.workdir / "centre.toml").write_text(CONFIG)
        # Two-second report intervals, so a test sees some close.
        (self.workdir / "settings.toml").write_text("[metrics]\ninterval_seconds = 2\n")
        with open_store(self.store_url) as store:
            access = Access(store)
            access.add_user(NewUser(name="admin", role="administrator", password=PASSWORDS["admin"]))
            access.add_user(NewUser(name="sue", role="supervisor", password=PASSWORDS["sue"]))
            for agent in ("ann", "bob"):
                access.add_user(NewUser(name=agent, role="agent", agent=agent, password=PASSWORDS[agent]))
            # A channel connector's token, and one for each scope alone.
            self.tokens["channel"] = access.add_token(
                NewToken(
                    name="channel", scopes=["interactions:create", "interactions:read", "interactions:write"]
                )
            )[0]
            for scope in SCOPES:
                self.tokens[scope] = access.add_token(NewToken(name=f"only {scope}", scopes=[scope]))[0]  # type: ignore[list-item]

    def start(self) -> None:
        ready = self.workdir / "ready.json"
        self.proc, port = start_omniroute(
            [
                "serve",
                "--store",
                self.store_url,
                "--config",
                str(self.workdir / "centre.toml"),
                "--settings",
                str(self.workdir / "settings.toml"),
            ],
            ready,
            self.workdir / "server.log",
        )
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def log(self) -> str:
        return (self.workdir / "server.log").read_text()[-3000:]

    def client(self, *, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base + "/api/v1", headers=headers, timeout=10)

    def socket(self, name: str) -> ClientConnection:
        """The live stream, as the user logged in with a new session (its bearer token)."""
        with self.client() as client:
            reply = client.post("/session", json={"name": name, "password": PASSWORDS[name]})
            assert reply.status_code == 201, reply.text
            token = reply.json()["token"]
        url = self.base.replace("http://", "ws://") + "/api/v1/stream"
        return connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10)

    @contextmanager
    def login(self, name: str) -> Iterator[httpx.Client]:
        """A client that holds the user's session cookie, as a browser does."""
        with self.client() as client:
            reply = client.post("/session", json={"name": name, "password": PASSWORDS[name]})
            assert reply.status_code == 201, reply.text
            assert SESSION_COOKIE in client.cookies
            yield client


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("serve"))
    s.prepare()
    s.start()
    try:
        yield s
    finally:
        assert s.stop() == 0, s.log()
        assert "stopped cleanly" in s.log()


def new_contact(
    client: httpx.Client, email: str, channel: str = "chat", queue: str = "support"
) -> dict[str, Any]:
    reply = client.post(
        "/interactions",
        json={
            "channel": channel,
            "queue": queue,
            "identities": [{"kind": "email", "value": email}],
            "message": {"body": f"Hello from {email} on {channel}"},
        },
    )
    assert reply.status_code == 201, reply.text
    ack: dict[str, Any] = reply.json()
    return ack


def offer_for(client: httpx.Client, interaction: str) -> dict[str, Any]:
    for _ in range(200):
        for offer in client.get("/offers").json():
            if offer["interaction"] == interaction:
                return offer  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise AssertionError(f"no offer for {interaction}")


# ----- the rules, route by route -----


def _routes() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path with sample parameters, opt) of every API route."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for handler in ROUTES:
        if not isinstance(handler, HTTPRouteHandler):
            continue  # the live stream has tests of its own
        for method in sorted(handler.http_methods):
            for path in handler.paths:
                sample = re.sub(r"\{(\w+):int\}", "1", path)
                sample = re.sub(r"\{(\w+):str\}", "x", sample)
                found.append((str(method), sample, dict(handler.opt)))
    return found


ROUTE_RULES = _routes()


def test_every_route_declares_who_may_call_it() -> None:
    app = create_app("sqlite:///:memory:")
    declared = 0
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        handlers = route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]
        for handler in handlers:
            if isinstance(handler, HTTPRouteHandler) and handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's own, answering preflight requests
            opt = handler.opt
            assert opt.get("public") or opt.get("authenticated") or opt.get("scope") in SCOPES, route.path
            declared += 1
    assert declared == len(ROUTES) >= 35
    # Each role's scopes are known ones; an agent's are a supervisor's, a supervisor's an administrator's.
    assert ROLE_SCOPES["agent"] < ROLE_SCOPES["supervisor"] < ROLE_SCOPES["administrator"] == set(SCOPES)


@pytest.mark.parametrize(("method", "path", "opt"), ROUTE_RULES, ids=[f"{m} {p}" for m, p, _ in ROUTE_RULES])
def test_a_route_without_credentials_gets_401(
    served: Served, method: str, path: str, opt: dict[str, Any]
) -> None:
    with served.client() as anonymous, served.client(token="not-a-token") as forged:
        for client in (anonymous, forged):
            reply = client.request(method, path, json={} if method in ("POST", "PUT") else None)
            if opt.get("public"):
                assert reply.status_code != 401, reply.text
            else:
                assert reply.status_code == 401, (method, path, reply.text)
                assert reply.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "opt"),
    [r for r in ROUTE_RULES if r[2].get("scope")],
    ids=[f"{m} {p}" for m, p, o in ROUTE_RULES if o.get("scope")],
)
def test_a_token_without_the_scope_gets_403(
    served: Served, method: str, path: str, opt: dict[str, Any]
) -> None:
    other = next(s for s in SCOPES if s != opt["scope"])
    with served.client(token=served.tokens[other]) as client:
        reply = client.request(method, path, json={} if method in ("POST", "PUT") else None)
        assert reply.status_code == 403, (method, path, reply.text)
        assert opt["scope"] in reply.json()["detail"]


AGENT_FORBIDDEN = [r for r in ROUTE_RULES if r[2].get("scope") and r[2]["scope"] not in ROLE_SCOPES["agent"]]


@pytest.mark.parametrize(
    ("method", "path", "opt"), AGENT_FORBIDDEN, ids=[f"{m} {p}" for m, p, _ in AGENT_FORBIDDEN]
)
def test_an_agent_outside_its_role_gets_403(
    served: Served, method: str, path: str, opt: dict[str, Any]
) -> None:
    with served.login("ann") as ann:
        reply = ann.request(method, path, json={} if method in ("POST", "PUT") else None)
        assert reply.status_code == 403, (method, path, reply.text)


def test_health_readiness_and_the_openapi_document_are_public(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=10) as client:
        assert client.get("/api/v1/health").json() == {"status": "ok"}
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        document = client.get("/schema/openapi.json").json()
        assert document["info"]["title"] == "omniroute"
        paths = document["paths"]
        for path in (
            "/api/v1/interactions",
            "/api/v1/customers/{customer_id}/context",
            "/api/v1/offers/{offer}/accept",
        ):
            assert path in paths
        # The request body of a new interaction is documented from the runtime's own type.
        body = paths["/api/v1/interactions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].endswith("NewInteraction")


# ----- an agent's day, over HTTP -----


def test_an_agent_takes_a_chat_sees_the_earlier_email_replies_and_wraps_up(served: Served) -> None:
    with (
        served.client(token=served.tokens["channel"]) as channel,
        served.login("ann") as ann,
        served.login("bob") as bob,
        served.login("sue") as sue,
    ):
        # bob works sales only: he is away, so nothing goes to him.
        assert sue.put("/agents/bob/state", json={"state": "away", "reason": "break"}).status_code == 204
        earlier = new_contact(channel, "pat@example.com", channel="email")
        offer = offer_for(ann, earlier["interaction"])
        assert ann.post(f"/offers/{offer['offer']}/accept").status_code == 204
        assert (
            ann.post(
                f"/tasks/{earlier['interaction']}/complete", json={"disposition": "answered"}
            ).status_code
            == 204
        )
        assert ann.post("/agents/ann/wrap-up/end").status_code == 204

        chat = new_contact(channel, "PAT@example.com")
        assert chat["customer"] == earlier["customer"]
        offer = offer_for(ann, chat["interaction"])
        assert offer["agent"] == "ann"
        # Not bob's offer, not bob's task.
        assert bob.post(f"/offers/{offer['offer']}/accept").status_code == 403
        assert bob.get("/offers").json() == []
        assert ann.post(f"/offers/{offer['offer']}/accept").status_code == 204

        context = ann.get(f"/customers/{chat['customer']}/context").json()
        channels = [entry["interaction"]["channel"] for entry in context["timeline"]]
        assert channels == ["chat", "email"]
        assert [m["body"] for m in context["transcript"]] == [
            "Hello from pat@example.com on email",
            "Hello from PAT@example.com on chat",
        ]
        reply = ann.post(
            f"/interactions/{chat['interaction']}/messages", json={"body": "Hi Pat", "direction": "outbound"}
        )
        assert reply.status_code == 201
        messages = ann.get(f"/interactions/{chat['interaction']}/messages").json()
        assert [(m["direction"], m["author"], m["body"]) for m in messages][-1] == (
            "outbound",
            "ann",
            "Hi Pat",
        )
        assert (
            bob.post(f"/interactions/{chat['interaction']}/messages", json={"body": "x"}).status_code == 403
        )
        # Not as the customer either.
        as_customer = ann.post(f"/interactions/{chat['interaction']}/messages", json={"body": "x"})
        assert as_customer.status_code == 403
        assert bob.post(f"/tasks/{chat['interaction']}/complete", json={}).status_code == 403
        assert (
            ann.post(
                f"/interactions/{chat['interaction']}/messages",
                json={"body": "as bob", "direction": "outbound", "author": "bob"},
            ).status_code
            == 403
        )

        done = ann.post(
            f"/tasks/{chat['interaction']}/complete",
            json={"disposition": "resolved", "resolved": True, "note": "Pat's order is on its way"},
        )
        assert done.status_code == 204
        states = {a["id"]: a["state"] for a in sue.get("/agents").json()}
        assert states == {"ann": "wrap_up", "bob": "away"}
        assert bob.post("/agents/ann/wrap-up/end").status_code == 403
        assert bob.put("/agents/ann/state", json={"state": "offline"}).status_code == 403
        assert ann.post("/agents/ann/wrap-up/end").status_code == 204

        finished = sue.get(f"/interactions/{chat['interaction']}").json()
        assert (finished["status"], finished["agent"], finished["disposition"]) == (
            "completed",
            "ann",
            "resolved",
        )
        timeline = sue.get(f"/customers/{chat['customer']}/context").json()["timeline"]
        assert [n["body"] for n in timeline[0]["notes"]] == ["Pat's order is on its way"]
        assert timeline[0]["notes"][0]["author"] == "ann"
        found = sue.get("/customers", params={"kind": "email", "value": "pat@EXAMPLE.com"}).json()
        assert found["id"] == chat["customer"]
        queues = {q["name"]: q for q in sue.get("/queues").json()}
        assert queues["support"]["figures"]["answered"] >= 2
        figures = sue.get("/figures").json()
        assert figures["channels"]["chat"]["completed"] >= 1
        assert sue.put("/agents/bob/state", json={"state": "available"}).status_code == 204


def test_a_supervisor_merges_and_undoes_and_an_agent_may_not(served: Served) -> None:
    with (
        served.client(token=served.tokens["channel"]) as channel,
        served.login("sue") as sue,
        served.login("ann") as ann,
    ):
        a = new_contact(channel, "first@example.com", queue="sales")
        b = new_contact(channel, "second@example.com", queue="sales")
        body = {"survivor": a["customer"], "merged": b["customer"]}
        assert ann.post("/merges", json=body).status_code == 403
        merged = sue.post("/merges", json=body)
        assert merged.status_code == 201, merged.text
        context = sue.get(f"/customers/{b['customer']}/context").json()
        assert context["customer"]["id"] == a["customer"]
        assert {e["interaction"]["id"] for e in context["timeline"]} >= {a["interaction"], b["interaction"]}
        assert ann.post(f"/merges/{merged.json()['id']}/undo").status_code == 403
        assert sue.post(f"/merges/{merged.json()['id']}/undo").status_code == 200
        assert sue.get(f"/customers/{b['customer']}/context").json()["customer"]["id"] == b["customer"]
        for interaction in (a["interaction"], b["interaction"]):
            assert sue.post(f"/tasks/{interaction}/cancel", json={"status": "cancelled"}).status_code == 204


# ----- bad input -----


def test_bad_input_gets_a_4xx_naming_the_field_and_stores_nothing(served: Served) -> None:
    with served.client(token=served.tokens["channel"]) as channel, served.login("sue") as sue:
        before = sue.get("/events", params={"limit": 10000}).json()
        cases: list[tuple[Any, int, str]] = [
            ({"channel": 5, "queue": "support"}, 400, "channel"),
            ({"queue": "support"}, 400, "channel"),
            ({"channel": "fax", "queue": "support"}, 400, "channel"),
            ({"channel": "chat", "queue": "nowhere"}, 400, "queue"),
            (
                {
                    "channel": "chat",
                    "queue": "support",
                    "identities": [{"kind": "phone", "value": "not a number"}],
                },
                400,
                "identities",
            ),
            ({"channel": "chat", "queue": "support", "colour": "blue"}, 400, "colour"),
            ({"channel": "chat", "queue": "support", "message": {"body": "x" * 70_000}}, 400, "body"),
        ]
        for body, status, field in cases:
            reply = channel.post("/interactions", json=body)
            assert reply.status_code == status, (body, reply.text)
            assert field in reply.text, (body, reply.text)
        not_json = channel.post(
            "/interactions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 400
        too_big = channel.post(
            "/interactions",
            content=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413
        unknown = sue.get("/interactions/no-such-interaction")
        assert unknown.status_code == 404
        assert "no-such-interaction" in unknown.json()["detail"]
        assert sue.post("/offers/999999/accept").status_code == 404
        assert sue.get("/events", params={"limit": 10000}).json() == before
        bad_state = sue.put("/agents/bob/state", json={"state": "away"})
        assert bad_state.status_code == 400
        assert "reason" in bad_state.json()["detail"]


def test_configuration_is_validated_and_only_an_administrator_applies_it(served: Served) -> None:
    with served.login("admin") as admin, served.login("sue") as sue:
        current = admin.get("/config").json()
        assert sue.put("/config", json=current).status_code == 403
        broken = dict(current, agents=[*current["agents"], {"id": "cy", "queues": {"nowhere": 0}}])
        reply = admin.post("/config/validate", json=broken)
        assert reply.status_code == 400
        assert "nowhere" in reply.json()["detail"]
        grown = dict(current, agents=[*current["agents"], {"id": "cy", "queues": {"sales": 0}}])
        assert admin.post("/config/validate", json=grown).json() == {"valid": True}
        assert "cy" not in {a["id"] for a in admin.get("/agents").json()}
        applied = admin.put("/config", json=grown)
        assert applied.status_code == 200, applied.text
        assert "cy" in {a["id"] for a in admin.get("/agents").json()}
        assert admin.put("/config", json=current).status_code == 200


# ----- sessions, users, tokens -----


def test_logout_disable_and_revoke_take_effect_at_once(served: Served) -> None:
    with served.login("admin") as admin:
        assert (
            admin.post(
                "/users", json={"name": "tom", "role": "agent", "agent": "bob", "password": "short"}
            ).status_code
            == 400
        )
        made = admin.post("/users", json={"name": "tom", "role": "supervisor", "password": "tom-secret-1"})
        assert made.status_code == 201, made.text
        assert (
            admin.post(
                "/users", json={"name": "tom", "role": "supervisor", "password": "tom-secret-1"}
            ).status_code
            == 409
        )
        assert (
            admin.post(
                "/users", json={"name": "ann2", "role": "agent", "agent": "ann", "password": "ann2-secret"}
            ).status_code
            == 409
        )
        with served.client() as tom:
            assert tom.post("/session", json={"name": "tom", "password": "wrong-password"}).status_code == 401
            session = tom.post("/session", json={"name": "tom", "password": "tom-secret-1"}).json()
            assert session["role"] == "supervisor"
            assert "work" in session["scopes"]
            assert tom.get("/agents").status_code == 200
            # The session's token works as a bearer token too.
            with served.client(token=session["token"]) as bearer:
                assert bearer.get("/session").json()["name"] == "tom"
            assert tom.delete("/session").status_code == 204
            assert tom.get("/agents").status_code == 401
            tom.post("/session", json={"name": "tom", "password": "tom-secret-1"})
            assert tom.get("/agents").status_code == 200
            assert admin.delete("/users/tom").status_code == 204
            assert tom.get("/agents").status_code == 401
            assert tom.post("/session", json={"name": "tom", "password": "tom-secret-1"}).status_code == 401

        issued = admin.post("/tokens", json={"name": "crm", "scopes": ["customers:read"]}).json()
        assert issued["token"]
        assert issued["scopes"] == ["customers:read"]
        assert all(t.get("token") is None for t in admin.get("/tokens").json())
        assert admin.post("/tokens", json={"name": "crm", "scopes": ["everything"]}).status_code == 400
        with served.client(token=issued["token"]) as crm:
            assert crm.get("/customers/nobody").status_code == 404
            assert admin.delete(f"/tokens/{issued['id']}").status_code == 204
            assert crm.get("/customers/nobody").status_code == 401

        # An open socket loses what it may do with its token, command by command.
        desk = admin.post("/tokens", json={"name": "desk", "scopes": ["agents:read", "agents:write"]}).json()
        url = served.base.replace("http://", "ws://") + "/api/v1/stream"
        with connect(
            url, additional_headers={"Authorization": f"Bearer {desk['token']}"}, open_timeout=10
        ) as sock:
            state = {"op": "state", "agent": "bob", "state": {"state": "available"}}
            assert socket_reply(sock, {"id": 1, **state}) == {"reply": 1, "ok": True}
            assert admin.delete(f"/tokens/{desk['id']}").status_code == 204
            refused = socket_reply(sock, {"id": 2, **state})
            assert refused["error"]["status_code"] == 401


def socket_reply(socket: Any, command: dict[str, Any]) -> dict[str, Any]:
    """Send a command on the stream and wait for its reply (events in between are skipped)."""
    socket.send(json.dumps(command))
    for _ in range(200):
        message = json.loads(socket.recv(timeout=10))
        if message.get("reply") == command.get("id"):
            return message  # type: ignore[no-any-return]
    raise AssertionError(f"no reply to {command}")


def test_a_password_change_ends_the_users_sessions(served: Served) -> None:
    with served.login("admin") as admin:
        admin.post("/users", json={"name": "val", "role": "supervisor", "password": "val-secret-1"})
        with served.client() as val:
            val.post("/session", json={"name": "val", "password": "val-secret-1"})
            assert val.put("/users/admin/password", json={"password": "taken-over"}).status_code == 403
            assert val.put("/users/val/password", json={"password": "val-secret-2"}).status_code == 204
            assert val.get("/agents").status_code == 401
            assert val.post("/session", json={"name": "val", "password": "val-secret-2"}).status_code == 201


def test_a_session_expires(tmp_path: Path) -> None:
    now = [1000.0]
    with open_store(f"sqlite:///{tmp_path}/a.db") as store:
        access = Access(store, session_seconds=60, clock=lambda: now[0])
        access.add_user(NewUser(name="ann", role="agent", agent="ann", password="ann-secret"))
        found = access.login("ann", "ann-secret")
        assert found is not None
        token = found[0]
        principal = access.authenticate(session=token)
        assert principal is not None
        assert principal.agent == "ann"
        assert principal.own_only
        now[0] += 59
        assert access.authenticate(bearer=token) is not None
        now[0] += 1
        assert access.authenticate(session=token) is None
        assert access.login("ann", "wrong") is None
        assert access.login("nobody", "ann-secret") is None
        token_secret, _ = access.add_token(NewToken(name="t", scopes=["work"], expires_in_seconds=10))
        assert access.authenticate(bearer=token_secret) is not None
        now[0] += 10
        assert access.authenticate(bearer=token_secret) is None


def test_names_holding_a_nul_character_are_refused_on_both_stores(store: SqlStore) -> None:
    """PostgreSQL's text takes no NUL: a user or token named with one is
    refused naming the field, and logging in with one is a wrong name."""
    access = Access(store)
    ann = access.add_user(NewUser(name="ann", role="agent", agent="ann", password="ann-secret"))
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: access.add_user(NewUser(name="b\x00", role="administrator", password="pw-12345")), "name"),
        (
            lambda: access.add_user(NewUser(name="cy", role="agent", agent="c\x00", password="pw-12345")),
            "agent",
        ),
        (lambda: access.set_password("ann\x00", "another-secret"), "name"),
        (lambda: access.disable_user("ann\x00"), "name"),
        (lambda: access.add_token(NewToken(name="t\x00", scopes=["work"])), "name"),
        (lambda: access.revoke_token("t\x00"), "token"),
    ]
    for call, field in calls:
        with pytest.raises(InvalidInputError, match=f"^{field}: contains a NUL character"):
            call()
    assert access.login("ann\x00", "ann-secret") is None
    assert [u.name for u in access.users()] == [ann.name]
    assert access.tokens() == []
    assert access.login("ann", "ann-secret") is not None


def test_users_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/cli.db"

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "omniroute", *args, "--store", store],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = run("users", "add", "admin", "--role", "administrator", stdin="a-long-password\n")
    assert added.returncode == 0, added.stderr
    short = run("users", "add", "ann", "--role", "agent", "--agent", "ann", stdin="short\n")
    assert short.returncode == 2
    assert "password" in short.stderr
    no_agent = run("users", "add", "ann", "--role", "agent", stdin="a-long-password\n")
    assert no_agent.returncode == 2
    assert "agent:" in no_agent.stderr
    assert "admin\tadministrator\t-\tactive" in run("users", "list").stdout
    token = run("tokens", "add", "crm", "--scope", "customers:read")
    assert token.returncode == 0
    assert len(token.stdout.strip()) >= 40
    bad = run("tokens", "add", "crm", "--scope", "root")
    assert bad.returncode == 2
    assert "scopes: unknown root" in bad.stderr
    settings = tmp_path / "settings.toml"
    settings.write_text("sticky_seconds = -1\n")
    refused = run("serve", "--settings", str(settings), "--port", "0")
    assert refused.returncode == 2
    assert f"{settings}: sticky_seconds: expected a number ≥ 0" in refused.stderr
    with open_store(store) as opened:
        principal = Access(opened).authenticate(bearer=token.stdout.strip())
    assert principal is not None
    assert principal.scopes == {"customers:read"}


# ----- the live stream -----


def until(socket: Any, event_type: str) -> list[dict[str, Any]]:
    """The events a socket receives up to and including the first of this type."""
    heard = []
    for _ in range(100):
        message = json.loads(socket.recv(timeout=10))
        if "event" in message:
            heard.append(message["event"])
            if message["event"]["type"] == event_type:
                return heard
    raise AssertionError(f"no {event_type} in {heard}")


def test_an_agent_streams_its_own_offers_with_the_customers_context(served: Served) -> None:
    url = served.base.replace("http://", "ws://") + "/api/v1/stream"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        connect(url, open_timeout=10).close()
    # A socket refused before its handshake completes gets 403: the only
    # refusal the ASGI server can give before accepting (the HTTP routes say 401).
    assert refused.value.response.status_code == 403
    with served.login("ann") as ann_client, served.login("sue") as sue_client:
        with (
            served.socket("ann") as ann,
            served.socket("sue") as sue,
            served.client(token=served.tokens["channel"]) as channel,
        ):
            time.sleep(0.2)  # both subscribed before the contacts arrive
            for_bob = new_contact(channel, "sales-lead@example.com", queue="sales")
            for_ann = new_contact(channel, "stream@example.com")
            offer = json.loads(ann.recv(timeout=10))["event"]
            assert offer["type"] == "omniroute.offer_made"
            assert offer["data"]["task"] == for_ann["interaction"]
            assert offer["data"]["agent"] == "ann"
            assert offer["data"]["expires_at"] > 0
            context = json.loads(ann.recv(timeout=10))
            assert context["offer"] == offer["data"]["offer"]
            assert context["context"]["customer"]["id"] == for_ann["customer"]
            assert [m["body"] for m in context["context"]["transcript"]] == [
                "Hello from stream@example.com on chat"
            ]
            # The supervisor sees everyone's work, bob's sales lead included.
            seen: set[str] = set()
            figures: list[dict[str, Any]] = []
            while (
                for_bob["interaction"] not in seen
                or for_ann["interaction"] not in seen
                or not figures
                or "chat" not in figures[-1]["channels"]
            ):
                message = json.loads(sue.recv(timeout=10))
                if "figures" in message:
                    figures.append(message["figures"])
                elif message["event"]["type"] == "omniroute.interaction_created":
                    seen.add(message["event"]["data"]["interaction"]["id"])
            # ... and the live figures each second.
            assert figures[-1]["channels"]["chat"]["offered"] >= 1
            assert ann_client.post(f"/offers/{offer['data']['offer']}/accept").status_code == 204
            heard = until(ann, "omniroute.task_assigned")
            assert heard[-1]["data"]["task"] == for_ann["interaction"]
            said = channel.post(
                f"/interactions/{for_ann['interaction']}/messages", json={"body": "Are you there?"}
            )
            assert said.status_code == 201, said.text
            heard += until(ann, "omniroute.message_added")
            assert heard[-1]["data"]["message"]["body"] == "Are you there?"
            # Everything ann heard was hers, or a colleague's state: never bob's lead.
            assert all(
                e["data"].get("agent", "ann") == "ann" or e["type"] == "omniroute.agent_state_changed"
                for e in heard
            )
            assert for_bob["interaction"] not in json.dumps(heard)
        assert ann_client.post(f"/tasks/{for_ann['interaction']}/complete", json={}).status_code == 204
        assert ann_client.post("/agents/ann/wrap-up/end").status_code == 204
        assert sue_client.post(f"/tasks/{for_bob['interaction']}/cancel", json={}).status_code == 204


def test_reports_by_interval_as_json_and_csv(served: Served) -> None:
    with (
        served.client(token=served.tokens["channel"]) as channel,
        served.login("sue") as sue,
        served.login("bob") as bob,
    ):
        assert sue.put("/agents/bob/state", json={"state": "available"}).status_code == 204
        answered = new_contact(channel, "report-answered@example.com", queue="sales")
        offer = offer_for(bob, answered["interaction"])
        assert bob.post(f"/offers/{offer['offer']}/accept").status_code == 204
        assert bob.post(f"/tasks/{answered['interaction']}/complete", json={}).status_code == 204
        for n in range(3):
            ack = new_contact(channel, f"report-{n}@example.com", queue="sales")
            assert (
                sue.post(f"/tasks/{ack['interaction']}/cancel", json={"status": "abandoned"}).status_code
                == 204
            )
        time.sleep(2.2)  # the two-second interval closes
        sue.get("/figures")
        rows = sue.get("/reports/intervals", params={"dimension": "queue", "name": "sales"}).json()
        assert rows, "no closed interval"
        assert all(r["seconds"] == 2 for r in rows)
        assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
        assert sum(r["offered"] for r in rows) >= 3
        assert sum(r["abandoned"] for r in rows) >= 3
        csv_reply = sue.get("/reports/intervals.csv", params={"dimension": "queue", "name": "sales"})
        assert csv_reply.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv_reply.headers["content-disposition"]
        assert 'filename="omniroute-queue-sales-intervals.csv"' in csv_reply.headers["content-disposition"]
        assert (
            csv_filename("queue", "sales\r\nX-Evil: 1 é")
            == "omniroute-queue-sales__X-Evil__1__-intervals.csv"
        )
        unknown = sue.get("/reports/intervals", params={"dimension": "queue", "name": "nowhere"})
        assert unknown.status_code == 400
        assert unknown.json()["detail"] == "name: there is no queue 'nowhere'"
        # A configured agent with no figures yet: no intervals, not an error.
        assert sue.get("/reports/intervals", params={"dimension": "agent", "name": "bob"}).status_code == 200
        lines = csv_reply.text.splitlines()
        assert lines[0].startswith("start,seconds,offered,answered")
        assert len(lines) == len(rows) + 1
        assert lines[1].split(",")[0].endswith("Z")
        staffing = sue.get("/reports/staffing", params={"dimension": "queue", "name": "sales"}).json()
        assert [(r["start"], r["offered"]) for r in staffing] == [(r["start"], r["offered"]) for r in rows]
        # Abandoned contacts have no handle time, so Erlang C has nothing to staff for.
        assert all(r["required_agents"] >= 0 and r["actual_agents"] >= 0 for r in staffing)
        bad_target = sue.get("/reports/staffing", params={"service_level": 1.5})
        assert bad_target.status_code == 400
        assert "service_level" in bad_target.text
        overall = sue.get("/reports/intervals").json()
        assert sum(r["offered"] for r in overall) >= sum(r["offered"] for r in rows)
        cases: list[tuple[dict[str, str | int], str]] = [
            ({"dimension": "queue"}, "name"),
            ({"dimension": "team", "name": "x"}, "name: no agent is in team 'x' (teams: front)"),
            ({"start": 10, "end": 5}, "end"),
            ({"dimension": "weekday"}, "dimension"),
        ]
        # A team's report is its agents' figures added up, interval by interval.
        agents = {
            name: {
                r["start"]: r
                for r in sue.get("/reports/intervals", params={"dimension": "agent", "name": name}).json()
            }
            for name in ("ann", "bob")
        }
        team = sue.get("/reports/intervals", params={"dimension": "team", "name": "front"}).json()
        assert sum(r["answered"] for r in team) >= 1
        for row in team:
            for field in ("answered", "completed", "transferred"):
                assert row[field] == sum(a[row["start"]][field] for a in agents.values() if row["start"] in a)
        team_csv = sue.get("/reports/intervals.csv", params={"dimension": "team", "name": "front"})
        assert 'filename="omniroute-team-front-intervals.csv"' in team_csv.headers["content-disposition"]
        assert {a["id"]: a["team"] for a in sue.get("/agents").json()} == {"ann": "front", "bob": "front"}
        for params, field in cases:
            bad = sue.get("/reports/intervals", params=params)
            assert bad.status_code == 400, params
            assert field in bad.text, (params, bad.text)


# ----- the demo -----


def test_the_demo_runs_by_itself_and_a_person_can_log_in_beside_it(tmp_path: Path) -> None:
    proc, port = start_omniroute(
        ["serve", "--demo", "--store", f"sqlite:///{tmp_path}/demo.db"],
        tmp_path / "ready.json",
        tmp_path / "log",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10) as sue:
            assert sue.post("/session", json={"name": "sue", "password": DEMO_PASSWORD}).status_code == 201
            agents = {a["id"]: a for a in sue.get("/agents").json()}
            assert {"ann", "bob", "sim01", "sim12"} <= set(agents)
            assert agents["ann"]["state"] == "offline"
            # Customers arrive on several channels and simulated agents answer them.
            deadline = time.monotonic() + 60
            figures = sue.get("/figures").json()
            while figures["overall"]["answered"] < 3 or len(figures["channels"]) < 2:
                assert time.monotonic() < deadline, figures
                time.sleep(0.5)
                figures = sue.get("/figures").json()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10) as ann:
                session = ann.post("/session", json={"name": "ann", "password": DEMO_PASSWORD}).json()
                assert session["agent"] == "ann"
                assert ann.put("/agents/ann/state", json={"state": "available"}).status_code == 204
                assert ann.put("/agents/sim01/state", json={"state": "offline"}).status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "log").read_text()[-3000:]
    log = (tmp_path / "log").read_text()
    assert "password 'omniroute-demo'" in log
    assert "stopped cleanly" in log


def test_a_change_made_by_another_process_is_seen_within_the_cache_time(tmp_path: Path) -> None:
    now = [1000.0]
    with open_store(f"sqlite:///{tmp_path}/c.db") as store:
        server = Access(store, cache_seconds=5, clock=lambda: now[0])
        other = Access(store, clock=lambda: now[0])  # the command line, say
        secret, token = other.add_token(NewToken(name="crm", scopes=["customers:read"]))
        assert server.cached(bearer=secret) is None  # never looked up yet
        assert server.authenticate(bearer=secret) is not None
        assert server.cached(bearer=secret) is not None
        other.revoke_token(token.id)
        now[0] += 4.9
        assert server.cached(bearer=secret) is not None
        now[0] += 0.1
        assert server.cached(bearer=secret) is None
        assert server.authenticate(bearer=secret) is None
        # What the server itself changes takes effect at once.
        secret, token = server.add_token(NewToken(name="crm2", scopes=["work"]))
        assert server.authenticate(bearer=secret) is not None
        server.revoke_token(token.id)
        assert server.cached(bearer=secret) is None


def test_an_agent_works_through_commands_on_its_socket(served: Served) -> None:
    with served.login("ann") as ann_client:
        with (
            served.socket("ann") as ann,
            served.socket("bob") as bob,
            served.client(token=served.tokens["channel"]) as channel,
        ):
            time.sleep(0.2)
            ack = new_contact(channel, "socket@example.com")
            offer = until(ann, "omniroute.offer_made")[-1]["data"]
            assert offer["task"] == ack["interaction"]

            reply = socket_reply

            # Not bob's offer; a malformed command names its field; an unknown offer is 404.
            refused = reply(bob, {"id": 1, "op": "accept", "offer": offer["offer"]})
            assert refused["error"]["status_code"] == 403
            malformed = reply(ann, {"id": 2, "op": "accept", "offer": "first"})
            assert malformed["error"]["status_code"] == 400
            assert malformed["error"]["detail"].startswith("offer: expected a whole number")
            assert reply(ann, {"id": 3, "op": "accept", "offer": 10**9})["error"]["status_code"] == 404
            assert reply(ann, {"id": 4, "op": "teleport"})["error"]["status_code"] == 400
            assert (
                reply(ann, {"id": 5, "op": "state", "agent": "bob", "state": {"state": "offline"}})["error"][
                    "status_code"
                ]
                == 403
            )

            assert reply(ann, {"id": 6, "op": "accept", "offer": offer["offer"]}) == {"reply": 6, "ok": True}
            assert (
                reply(bob, {"id": 7, "op": "complete", "task": ack["interaction"]})["error"]["status_code"]
                == 403
            )
            done = reply(
                ann, {"id": 8, "op": "complete", "task": ack["interaction"], "disposition": "resolved"}
            )
            assert done == {"reply": 8, "ok": True}
        finished = ann_client.get(f"/interactions/{ack['interaction']}").json()
        assert (finished["status"], finished["agent"], finished["disposition"]) == (
            "completed",
            "ann",
            "resolved",
        )
        assert ann_client.post("/agents/ann/wrap-up/end").status_code == 204


def test_an_agent_holds_a_customer_and_consults_a_colleague(served: Served) -> None:
    with (
        served.login("ann") as ann_client,
        served.login("bob") as bob_client,
        served.login("sue") as sue,
        served.client(token=served.tokens["channel"]) as channel,
        served.socket("ann") as ann,
        served.socket("bob") as bob,
    ):
        time.sleep(0.2)
        ack = new_contact(channel, "hold@example.com")
        task = ack["interaction"]
        offer = offer_for(ann_client, task)
        # Not accepted yet: nothing to hold.
        assert ann_client.post(f"/tasks/{task}/hold").status_code == 409
        assert ann_client.post(f"/offers/{offer['offer']}/accept").status_code == 204
        assert bob_client.post(f"/tasks/{task}/hold").status_code == 403
        assert ann_client.post(f"/tasks/{task}/resume").status_code == 409
        assert ann_client.post(f"/tasks/{task}/hold").status_code == 204
        again = ann_client.post(f"/tasks/{task}/hold")
        assert again.status_code == 409
        assert again.json()["detail"].startswith(f"task: interaction {task!r} is on hold already")
        held = until(ann, "omniroute.task_held")[-1]
        assert (held["subject"], held["data"]["agent"]) == (task, "ann")
        assert sue.get(f"/interactions/{task}").json()["held_at"] is not None

        # While the customer waits, ann asks bob on her socket; bob answers over HTTP.
        ask = {"id": 1, "op": "consult", "to": "bob", "body": "Refund over 100?", "task": task}
        ann.send(json.dumps(ask))
        asked = until(bob, "omniroute.consult_sent")[-1]
        assert asked["subject"] == "bob"
        assert {k: asked["data"][k] for k in ("sender", "to", "body", "task")} == {
            "sender": "ann",
            "to": "bob",
            "body": "Refund over 100?",
            "task": task,
        }
        answer = bob_client.post("/consults", json={"to": "ann", "body": "Yes, go ahead"})
        assert answer.status_code == 201, answer.text
        assert (answer.json()["sender"], answer.json()["type"]) == ("bob", "consult_sent")
        # ann's stream carries both: what she sent, then bob's answer.
        bodies = [until(ann, "omniroute.consult_sent")[-1]["data"]["body"] for _ in range(2)]
        assert bodies == ["Refund over 100?", "Yes, go ahead"]
        # An agent speaks as itself only; a supervisor must say for whom; nobody consults themselves.
        as_ann = bob_client.post("/consults", json={"to": "bob", "body": "x", "sender": "ann"})
        assert as_ann.status_code == 403
        unnamed = sue.post("/consults", json={"to": "ann", "body": "x"})
        assert unnamed.status_code == 400
        assert unnamed.json()["detail"].startswith("sender:")
        itself = ann_client.post("/consults", json={"to": "ann", "body": "x"})
        assert itself.status_code == 400
        assert itself.json()["detail"].startswith("to:")
        unknown = ann_client.post("/consults", json={"to": "zed", "body": "x"})
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith("to: no agent 'zed'")

        time.sleep(0.05)
        ann.send(json.dumps({"id": 2, "op": "resume", "task": task}))
        resumed = until(ann, "omniroute.task_resumed")[-1]
        assert resumed["data"]["seconds"] > 0
        assert ann_client.post(f"/tasks/{task}/complete", json={"disposition": "refunded"}).status_code == 204
        done = sue.get(f"/interactions/{task}").json()
        assert done["held_at"] is None
        assert done["hold_seconds"] == pytest.approx(resumed["data"]["seconds"])
        figures = sue.get("/figures").json()
        assert figures["channels"]["chat"]["average_hold"] > 0
        assert ann_client.post("/agents/ann/wrap-up/end").status_code == 204


def test_a_conversation_across_channels_is_read_and_closed(served: Served) -> None:
    with (
        served.client(token=served.tokens["channel"]) as channel,
        served.login("ann") as ann,
        served.login("bob") as bob,
        served.login("sue") as sue,
    ):
        assert sue.put("/agents/ann/state", json={"state": "available"}).status_code == 204
        mail = new_contact(channel, "conv@example.com", channel="email")
        chat = new_contact(channel, "conv@example.com")
        assert chat["conversation"] == mail["conversation"]
        detail = ann.get(f"/conversations/{chat['conversation']}").json()
        assert [i["channel"] for i in detail["interactions"]] == ["email", "chat"]
        assert [m["body"] for m in detail["messages"]] == [
            "Hello from conv@example.com on email",
            "Hello from conv@example.com on chat",
        ]
        assert detail["conversation"]["closed_at"] is None
        offer = offer_for(ann, mail["interaction"])
        assert ann.post(f"/offers/{offer['offer']}/accept").status_code == 204
        # bob has no work in it; ann has.
        assert bob.post(f"/conversations/{chat['conversation']}/close").status_code == 403
        assert ann.post(f"/conversations/{chat['conversation']}/close").status_code == 204
        closed = ann.get(f"/conversations/{chat['conversation']}").json()["conversation"]
        assert closed["closed_at"] is not None
        later = new_contact(channel, "conv@example.com", channel="email")
        assert later["conversation"] != chat["conversation"]
        assert later["customer"] == chat["customer"]
        missing = sue.get("/conversations/nope")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "conversation: no conversation 'nope'"
        assert ann.post(f"/tasks/{mail['interaction']}/complete", json={}).status_code == 204
        assert ann.post("/agents/ann/wrap-up/end").status_code == 204
        for task in (chat["interaction"], later["interaction"]):
            reply = sue.post(f"/tasks/{task}/cancel", json={"status": "cancelled"})
            assert reply.status_code in (204, 409), reply.text  # 409: ann took it meanwhile
