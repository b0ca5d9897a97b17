"""Property-based fuzzing of the API from its own OpenAPI document
(schemathesis): against a real ``omniroute serve`` on loopback, every
operation gets generated requests, valid and not. No answer may be a 500,
and every answer the document describes must match its schema."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from omniroute.server import SCOPES, Access
from omniroute.server.access import NewToken
from omniroute.store import open_store
from procs import start_omniroute

CONFIG = """
[[channels]]
name = "chat"
cost = 20

[[queues]]
name = "support"

[[agents]]
id = "ann"
queues = { support = 0 }
"""

TOKEN: dict[str, str] = {}
# Generated requests per operation (valid and invalid ones alike).
EXAMPLES = 25


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("fuzz")
    store_url = f"sqlite:///{workdir}/fuzz.db"
    (workdir / "centre.toml").write_text(CONFIG)
    with open_store(store_url) as store:
        # An API token with every scope: the fuzzer reaches every operation
        # (and, being no user, cannot lock itself out through /users).
        TOKEN["secret"], _ = Access(store).add_token(NewToken(name="fuzzer", scopes=list(SCOPES)))  # type: ignore[arg-type]
    proc, port = start_omniroute(
        ["serve", "--store", store_url, "--config", str(workdir / "centre.toml")],
        workdir / "ready.json",
        workdir / "log",
    )
    try:
        yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/schema/openapi.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log = (workdir / "log").read_text()
        assert code == 0, log[-3000:]
        # Every error the fuzzer provoked was answered, none escaped as a traceback.
        assert "Traceback" not in log, log[-3000:]


def test_no_request_gets_a_500_and_answers_match_the_document(api: Any) -> None:
    headers = {"Authorization": f"Bearer {TOKEN['secret']}"}
    fuzzed = 0
    # Each operation through Hypothesis in turn (schemathesis's own pytest
    # parametrisation reaches into pytest internals that pytest 9 dropped).
    for result in api.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(
                headers=headers, checks=[response_schema_conformance, content_type_conformance]
            )

        try:
            run()
        except Exception as e:
            raise AssertionError(f"{operation.method.upper()} {operation.path}: {e}") from e
        fuzzed += 1
    assert fuzzed >= 40


def test_the_document_covers_the_api(api: Any) -> None:
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in api.get_all_operations()}
    assert "POST /api/v1/interactions" in operations
    assert "GET /api/v1/customers/{customer_id}/context" in operations
    assert len(operations) >= 40
