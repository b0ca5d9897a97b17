"""The main job: the demo runs, decides, explains and reports."""

from __future__ import annotations

import pytest

from omniroute import cli, demo


def test_the_demo_routes_every_channel_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--hours", "0.5", "--agents", "12", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "offers the engine made, with its reasons" in out
    for channel in ("voice", "chat", "email", "sms"):
        assert f"/{channel}]" in out or f"  {channel} " in out
    assert "Metrics since start" in out
    assert "occupancy" in out


def test_the_demo_is_reproducible() -> None:
    first = demo.run(hours=0.3, agents=10, seed=5)
    second = demo.run(hours=0.3, agents=10, seed=5)
    assert [(o.task, o.agent, o.at) for o in first.offers] == [(o.task, o.agent, o.at) for o in second.offers]
    assert first.metrics == second.metrics
    assert first.answered + first.abandoned <= first.arrivals
    assert first.metrics.overall.since_start.answered == first.answered


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--hours", "-1"])
