"""The metrics through Python: the engine's events and the runtime's, one hand-computed morning."""

from __future__ import annotations

import pytest

import omniroute as o
from omniroute import metrics as m


def centre() -> o.EngineConfig:
    return o.EngineConfig(
        channels=[o.ChannelConfig(name="voice", cost=60)],
        queues=[o.QueueConfig(name="support", service_level_seconds=20.0)],
        agents=[o.AgentConfig(id="ann", queues={"support": 0})],
    )


def test_a_small_morning_computed_by_hand() -> None:
    """One agent, three calls. c1 arrives at 0 and is answered at 8 (wait 8);
    c2 arrives at 0, waits behind c1 and hangs up at 30 (abandoned after 30 s,
    over the threshold); c3 arrives at 200, answered at 229 (wait 29, over the
    threshold; the offer would have timed out at 230). Ann talks 100 s on c1
    and 50 s on c3, wraps up 10 s each, and resolves c1 only. CSAT 4 and 2."""
    engine = o.Engine(centre(), now=0.0)
    metrics = o.Metrics(o.MetricsConfig.for_engine(centre()))
    engine.roster(metrics=metrics)
    first = engine.process(
        [o.AddTask(task=o.NewTask(id=c, channel="voice", queue="support")) for c in ("c1", "c2")],
        now=0.0,
        metrics=metrics,
    )
    engine.process([o.Accept(offer=first.offers[0].offer)], now=8.0, metrics=metrics)
    engine.process([o.Cancel(task="c2")], now=30.0, metrics=metrics)
    segment = {"queue": "support", "channel": "voice", "agent": "ann"}
    metrics.record([m.Talk(at=108.0, task="c1", seconds=100.0, **segment)])
    engine.process([o.Complete(task="c1")], now=108.0, metrics=metrics)
    metrics.record(
        [
            m.WrapUp(at=118.0, task="c1", seconds=10.0, **segment),
            m.Disposition(at=118.0, task="c1", resolved=True, **segment),
            m.Csat(at=150.0, task="c1", score=4.0, **segment),
        ]
    )
    third = engine.process(
        [o.AddTask(task=o.NewTask(id="c3", channel="voice", queue="support"))], now=200.0, metrics=metrics
    )
    engine.process([o.Accept(offer=third.offers[0].offer)], now=229.0, metrics=metrics)
    metrics.record([m.Talk(at=280.0, task="c3", seconds=50.0, **segment)])
    engine.process([o.Complete(task="c3")], now=280.0, metrics=metrics)
    metrics.record(
        [
            m.WrapUp(at=290.0, task="c3", seconds=10.0, **segment),
            m.Disposition(at=290.0, task="c3", resolved=False, **segment),
            m.Csat(at=300.0, task="c3", score=2.0, **segment),
        ]
    )
    snap = metrics.snapshot(300.0)
    q = snap.queues["support"].since_start
    assert (q.offered, q.answered, q.abandoned, q.completed) == (3, 2, 1, 2)
    assert q.answered_within_threshold == 1  # c1 (8 s); c3 waited 29 s
    assert q.service_level_answered == pytest.approx(1 / 2)
    assert q.service_level_abandons_negative == pytest.approx(1 / 3)  # 1 within of 2 answered + 1 abandoned
    assert q.asa == pytest.approx((8 + 29) / 2)
    assert q.aht == pytest.approx((100 + 10 + 50 + 10) / 2)
    assert q.average_wrap_up == pytest.approx(10.0)
    assert q.resolution_rate == pytest.approx(1 / 2)
    assert q.average_csat == pytest.approx(3.0)
    assert q.abandon_rate == pytest.approx(1 / 3)
    ann = snap.agents["ann"].since_start
    # Handling (an accepted task held): 8→108 and 229→280 = 151 s. The rest of the 300 s
    # logged in she was available with no task (ringing offers hold no accepted task).
    assert ann.handling_seconds == pytest.approx(151.0)
    assert ann.available_idle_seconds == pytest.approx(149.0)
    assert ann.logged_in_seconds == pytest.approx(300.0)
    assert ann.occupancy == pytest.approx(151 / 300)
    assert snap.overall.staffing is not None
    assert snap.overall.staffing.available == 1
    assert snap.queues["support"].waiting == m.WaitingNow(contacts=0, longest_wait=None)
    intervals = metrics.intervals("queue", "support", 0.0, 900.0)
    assert [i.start for i in intervals] == [0.0]
    assert intervals[0].stats.offered == 3


def test_metrics_survive_a_round_trip_and_refuse_time_going_back() -> None:
    engine = o.Engine(centre(), now=0.0)
    metrics = o.Metrics()
    engine.process(
        [o.AddTask(task=o.NewTask(id="c1", channel="voice", queue="support"))], now=5.0, metrics=metrics
    )
    copy = o.Metrics.from_bytes(metrics.to_bytes())
    assert copy.snapshot(10.0) == metrics.snapshot(10.0)
    with pytest.raises(o.InvalidInputError, match="older than the last event or snapshot"):
        metrics.record(
            [m.Talk(at=1.0, task="c1", queue="support", channel="voice", agent="ann", seconds=1.0)]
        )
    with pytest.raises(o.InvalidInputError, match="before the metrics' time"):
        engine.process([], now=7.0, metrics=metrics)
    assert engine.now == 5.0  # refused before routing: nothing moved
    # Ann's offer of c1 times out at 35. Metrics read at 40 could no longer
    # take that event, so the engine refuses to move past it rather than lose it.
    metrics.snapshot(40.0)
    with pytest.raises(o.InvalidInputError, match="events at 35, before the metrics' time 40"):
        engine.process([], now=50.0, metrics=metrics)
    assert engine.now == 5.0
    with pytest.raises(o.InvalidInputError, match="seconds"):
        metrics.record(
            [m.Talk(at=60.0, task="c1", queue="support", channel="voice", agent="ann", seconds=-1.0)]
        )


def test_a_bad_metrics_configuration_names_the_field() -> None:
    with pytest.raises(o.InvalidConfigError, match="window"):
        o.Metrics(o.MetricsConfig(windows=[90], window_slot_seconds=60))
    with pytest.raises(o.InvalidInputError, match="accepted: overall, queue, channel, agent"):
        o.Metrics().intervals("team", "x", 0.0, 1.0)  # type: ignore[arg-type]
