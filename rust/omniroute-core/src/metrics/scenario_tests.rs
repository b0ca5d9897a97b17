//! The worked example of `docs/metrics.md`, computed by hand and checked figure by figure.
//!
//! One queue ("billing") on one channel ("voice"), service-level threshold
//! 20 s, short abandons under 5 s, two agents (ann and bob), default 15-minute
//! intervals and 15- and 60-minute windows of one-minute slots.
//!
//! | at  | what happens                                                           |
//! |-----|------------------------------------------------------------------------|
//! | 0   | ann and bob log in: Available, capacity 1, no task                     |
//! | 10  | contact 1 arrives                                                      |
//! | 20  | ann answers 1 (wait 10: within 20 s) and holds 1 task                  |
//! | 30  | contact 2 arrives                                                      |
//! | 33  | 2 abandons (wait 3: a short abandon)                                   |
//! | 40  | contact 3 arrives                                                      |
//! | 50  | contact 4 arrives                                                      |
//! | 55  | 3 abandons (wait 15: abandoned within threshold)                       |
//! | 60  | contact 5 arrives                                                      |
//! | 80  | bob answers 4 (wait 30: late) and holds 1 task                         |
//! | 100 | 5 abandons (wait 40: late)                                             |
//! | 140 | ann reports talk 100 s and hold 20 s for 1, drops the task, wraps up   |
//! | 170 | ann: wrap-up 30 s, resolved, completed 1; Available again              |
//! | 175 | CSAT 5 for ann on contact 1                                            |
//! | 200 | bob: talk 120 s, transfers 4 back to billing (it arrives again), wraps |
//! | 210 | bob: wrap-up 10 s, not resolved, completed his part of 4; goes Away     |
//! | 215 | ann answers 4 (wait 165, counted from its first arrival at 50)         |
//! | 250 | contact 6 arrives                                                      |
//! | 260 | ann reports talk 45 s for 4, drops the task, wraps up                  |
//! | 280 | ann: wrap-up 20 s, resolved, completed 4; Available again              |
//! | 290 | CSAT 4 for ann on contact 4                                            |
//! | 300 | bob logs out (Offline)                                                 |
//! | 320 | contact 7 arrives                                                      |
//! | 330 | snapshot; contacts 6 and 7 still wait                                  |

// Hand-computed figures that are exact in binary (0.0, 900.0, ...) are compared exactly.
#![allow(clippy::float_cmp)]

use super::*;
use AgentActivity::{Available, Away, Offline, WrapUp};

const EPSILON: f64 = 1e-12;

#[track_caller]
fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a figure was None");
    assert!((actual - expected).abs() <= EPSILON * expected.abs().max(1.0), "{actual} != {expected}");
}

#[track_caller]
fn seconds(actual: f64, expected: f64) {
    close(Some(actual), expected);
}

struct Example {
    metrics: Aggregator,
}

impl Example {
    // The whole timeline of the example, one event a line.
    #[allow(clippy::too_many_lines)]
    fn new() -> Self {
        let mut metrics = Aggregator::new(MetricsConfig {
            service_level_threshold: 20.0,
            short_abandon_seconds: 5.0,
            ..MetricsConfig::default()
        })
        .unwrap();
        let billing = metrics.queue_key("billing");
        let voice = metrics.channel_key("voice");
        let ann = metrics.agent_key("ann");
        let bob = metrics.agent_key("bob");
        let (q, c) = (billing, voice);
        let arrived = |at, task| MetricEvent::Arrived { at, task, queue: q, channel: c };
        let answered = |at, task, agent, wait| MetricEvent::Answered { at, task, queue: q, channel: c, agent, wait };
        let abandoned = |at, task, wait| MetricEvent::Abandoned { at, task, queue: q, channel: c, wait };
        let talk = |at, task, agent, seconds| MetricEvent::Talk { at, task, queue: q, channel: c, agent, seconds };
        let hold = |at, task, agent, seconds| MetricEvent::Hold { at, task, queue: q, channel: c, agent, seconds };
        let wrap_up = |at, task, agent, seconds| MetricEvent::WrapUp { at, task, queue: q, channel: c, agent, seconds };
        let resolved =
            |at, task, agent, resolved| MetricEvent::Disposition { at, task, queue: q, channel: c, agent, resolved };
        let completed = |at, task, agent| MetricEvent::Completed { at, task, queue: q, channel: c, agent };
        let csat =
            |at, task, agent, score| MetricEvent::Csat { at, task, queue: q, channel: c, agent: Some(agent), score };
        let state = |at, agent, state| MetricEvent::AgentState { at, agent, state };
        let load = |at, agent, tasks| MetricEvent::AgentLoad { at, agent, used: tasks, capacity: 1, tasks };
        let events = [
            state(0.0, ann, Available),
            load(0.0, ann, 0),
            state(0.0, bob, Available),
            load(0.0, bob, 0),
            arrived(10.0, 1),
            answered(20.0, 1, ann, 10.0),
            load(20.0, ann, 1),
            arrived(30.0, 2),
            abandoned(33.0, 2, 3.0),
            arrived(40.0, 3),
            arrived(50.0, 4),
            abandoned(55.0, 3, 15.0),
            arrived(60.0, 5),
            answered(80.0, 4, bob, 30.0),
            load(80.0, bob, 1),
            abandoned(100.0, 5, 40.0),
            talk(140.0, 1, ann, 100.0),
            hold(140.0, 1, ann, 20.0),
            load(140.0, ann, 0),
            state(140.0, ann, WrapUp),
            wrap_up(170.0, 1, ann, 30.0),
            resolved(170.0, 1, ann, true),
            completed(170.0, 1, ann),
            state(170.0, ann, Available),
            csat(175.0, 1, ann, 5.0),
            talk(200.0, 4, bob, 120.0),
            MetricEvent::Transferred { at: 200.0, task: 4, queue: q, channel: c, agent: Some(bob) },
            load(200.0, bob, 0),
            state(200.0, bob, WrapUp),
            arrived(200.0, 4),
            wrap_up(210.0, 4, bob, 10.0),
            resolved(210.0, 4, bob, false),
            completed(210.0, 4, bob),
            state(210.0, bob, Away),
            answered(215.0, 4, ann, 165.0),
            load(215.0, ann, 1),
            arrived(250.0, 6),
            talk(260.0, 4, ann, 45.0),
            load(260.0, ann, 0),
            state(260.0, ann, WrapUp),
            wrap_up(280.0, 4, ann, 20.0),
            resolved(280.0, 4, ann, true),
            completed(280.0, 4, ann),
            state(280.0, ann, Available),
            csat(290.0, 4, ann, 4.0),
            state(300.0, bob, Offline),
            arrived(320.0, 7),
        ];
        metrics.record_batch(&events).unwrap();
        Self { metrics }
    }
}

/// The contact figures of billing, which are also voice's and the overall ones (one queue, one channel).
#[track_caller]
fn assert_contact_figures(s: &Stats) {
    // Arrivals: 1, 2, 3, 4, 5, 4 again (after the transfer), 6 and 7.
    assert_eq!(s.offered, 8);
    // Answers: 1 (wait 10), 4 by bob (wait 30), 4 by ann (wait 165); only the first within 20 s.
    assert_eq!(s.answered, 3);
    assert_eq!(s.answered_within_threshold, 1);
    // Abandons: 2 (wait 3, short), 3 (wait 15, within), 5 (wait 40, late).
    assert_eq!(s.abandoned, 3);
    assert_eq!(s.short_abandoned, 1);
    assert_eq!(s.abandoned_within_threshold, 1);
    assert_eq!(s.transferred, 1);
    assert_eq!(s.completed, 3);
    assert_eq!((s.dispositions, s.resolved), (3, 2));
    assert_eq!(s.csat_responses, 2);

    // Service-level events: 3 answered + 3 abandoned - 1 short = 5.
    close(s.service_level_answered, 1.0 / 3.0); //  answered within / answered
    close(s.service_level_abandons_ignored, 1.0 / 4.0); // 1 / (5 - 1 abandoned within)
    close(s.service_level_abandons_negative, 1.0 / 5.0); // 1 / 5
    close(s.service_level_abandons_positive, 2.0 / 5.0); // (1 + 1) / 5
    close(s.abandon_rate, 2.0 / 5.0); // (3 - 1 short) / 5

    // ASA = (10 + 30 + 165) / 3.
    seconds(s.wait_seconds, 205.0);
    close(s.asa, 205.0 / 3.0);
    // Abandons waited 3 + 15 + 40.
    seconds(s.abandon_wait_seconds, 58.0);
    close(s.average_abandon_wait, 58.0 / 3.0);
    // Waits 10, 30, 165: p50 is the 2nd (30 s, reported as its bucket's middle 30.25 s), p90 and p99 the 3rd
    // (165 s, whose bucket [164, 168) - 1 s has its middle exactly at 165 s).
    close(s.wait_p50, 30.25);
    close(s.wait_p90, 165.0);
    close(s.wait_p99, 165.0);

    // Talk 100 + 120 + 45, hold 20, wrap-up 30 + 10 + 20, over 3 completed: AHT = 345 / 3 = 115.
    seconds(s.talk_seconds, 265.0);
    seconds(s.hold_seconds, 20.0);
    seconds(s.wrap_up_seconds, 60.0);
    close(s.aht, 115.0);
    close(s.average_talk, 265.0 / 3.0);
    close(s.average_hold, 20.0 / 3.0);
    close(s.average_wrap_up, 20.0);

    close(s.transfer_rate, 1.0 / 3.0);
    close(s.resolution_rate, 2.0 / 3.0);
    close(s.average_csat, 4.5);
}

#[test]
fn worked_example_at_330_seconds() {
    let mut example = Example::new();
    let snapshot = example.metrics.snapshot(330.0).unwrap();
    assert_eq!(snapshot.interval_start, 0.0);
    // Windows of 15 and 60 slots ending in slot 5 (300..360 s) start 14 and 59 slots earlier.
    assert_eq!(
        snapshot.windows,
        vec![WindowSpan { seconds: 900, start: -540.0 }, WindowSpan { seconds: 3600, start: -3240.0 }]
    );

    let billing = &snapshot.queues["billing"];
    // Everything happened in the first interval and inside both windows: every span agrees.
    for stats in [&billing.since_start, &billing.current_interval, &billing.windows[0].stats, &billing.windows[1].stats]
    {
        assert_contact_figures(stats);
        // Occupancy is per agent and overall; a queue has no agent time.
        assert_eq!(stats.occupancy, None);
        assert_eq!(stats.utilisation, None);
    }
    assert_contact_figures(&snapshot.channels["voice"].since_start);
    assert_contact_figures(&snapshot.overall.since_start);
    assert_eq!(snapshot.channels["voice"].since_start, snapshot.queues["billing"].since_start);

    // Contacts 6 (arrived 250) and 7 (arrived 320) still wait: the longest for 330 - 250 = 80 s.
    let waiting = WaitingNow { contacts: 2, longest_wait: Some(80.0) };
    assert_eq!(billing.waiting, Some(waiting));
    assert_eq!(snapshot.channels["voice"].waiting, Some(waiting));
    assert_eq!(snapshot.overall.waiting, Some(waiting));
    assert_eq!(billing.staffing, None);

    // ann: idle 0-20, handling 20-140 (task) and 140-170 (wrap-up), idle 170-215,
    // handling 215-260 and 260-280, idle 280-330.
    let ann = &snapshot.agents["ann"].since_start;
    seconds(ann.handling_seconds, 120.0 + 30.0 + 45.0 + 20.0);
    seconds(ann.available_idle_seconds, 20.0 + 45.0 + 50.0);
    seconds(ann.logged_in_seconds, 330.0);
    close(ann.occupancy, 215.0 / 330.0);
    close(ann.utilisation, 215.0 / 330.0);
    // ann answered 1 (wait 10) and 4 (wait 165), completed both: talk 145, hold 20, wrap-up 50.
    assert_eq!((ann.answered, ann.answered_within_threshold, ann.completed), (2, 1, 2));
    close(ann.asa, 87.5);
    close(ann.service_level_answered, 0.5);
    close(ann.aht, 215.0 / 2.0);
    close(ann.transfer_rate, 0.0);
    close(ann.resolution_rate, 1.0);
    close(ann.average_csat, 4.5);
    // Per agent, arrivals and abandons have no agent.
    assert_eq!((ann.offered, ann.abandoned), (0, 0));

    // bob: idle 0-80, handling 80-200 (task) and 200-210 (wrap-up), away 210-300, offline after.
    let bob = &snapshot.agents["bob"].since_start;
    seconds(bob.handling_seconds, 130.0);
    seconds(bob.available_idle_seconds, 80.0);
    seconds(bob.logged_in_seconds, 300.0);
    close(bob.occupancy, 130.0 / 210.0);
    close(bob.utilisation, 130.0 / 300.0);
    assert_eq!((bob.answered, bob.transferred, bob.completed), (1, 1, 1));
    close(bob.aht, 130.0);
    close(bob.transfer_rate, 1.0);
    close(bob.resolution_rate, 0.0);
    assert_eq!(bob.average_csat, None);

    // Overall agent time is the sum over agents.
    let overall = &snapshot.overall.since_start;
    seconds(overall.handling_seconds, 345.0);
    seconds(overall.available_idle_seconds, 195.0);
    seconds(overall.logged_in_seconds, 630.0);
    close(overall.occupancy, 345.0 / 540.0);
    close(overall.utilisation, 345.0 / 630.0);

    // Now: ann is Available with nothing in hand, bob is offline.
    let staffing = StaffingNow { offline: 1, available: 1, capacity_free: 1, ..StaffingNow::default() };
    assert_eq!(snapshot.overall.staffing, Some(staffing));
    assert_eq!(snapshot.agents["ann"].staffing, Some(StaffingNow { offline: 0, ..staffing }));
    assert_eq!(snapshot.agents["ann"].waiting, None);
}

#[test]
fn worked_example_at_1000_seconds_moves_the_window_and_the_interval() {
    let mut example = Example::new();
    let snapshot = example.metrics.snapshot(1_000.0).unwrap();
    // The second interval (900-1800 s) has started, with no contact in it yet.
    assert_eq!(snapshot.interval_start, 900.0);
    let billing = &snapshot.queues["billing"];
    assert_eq!(billing.current_interval.offered, 0);
    // The 15-minute window ends in slot 16 (960-1020 s) and starts 14 slots earlier, at 120 s.
    assert_eq!(snapshot.windows[0], WindowSpan { seconds: 900, start: 120.0 });
    let window = &billing.windows[0].stats;
    // Left in it: arrivals of 4 (again), 6 and 7; ann's answer of 4 (wait 165); the transfer;
    // the three completions with all their segments.
    assert_eq!((window.offered, window.answered, window.abandoned), (3, 1, 0));
    close(window.service_level_answered, 0.0);
    close(window.service_level_abandons_negative, 0.0);
    close(window.asa, 165.0);
    close(window.wait_p50, 165.0);
    close(window.aht, 115.0);
    close(window.transfer_rate, 1.0);
    // The hour window still holds everything.
    assert_contact_figures(&billing.windows[1].stats);
    assert_contact_figures(&billing.since_start);

    // ann in the window (120-1000 s): handling 120-140, 140-170, 215-260, 260-280; idle 170-215 and 280-1000.
    let ann = &snapshot.agents["ann"];
    seconds(ann.windows[0].stats.handling_seconds, 20.0 + 30.0 + 45.0 + 20.0);
    seconds(ann.windows[0].stats.available_idle_seconds, 45.0 + 720.0);
    seconds(ann.windows[0].stats.logged_in_seconds, 880.0);
    // ann in the current interval (900-1000 s): idle throughout.
    seconds(ann.current_interval.available_idle_seconds, 100.0);
    close(ann.current_interval.occupancy, 0.0);
    // bob in the window: handling 120-200 and 200-210, away until 300.
    let bob = &snapshot.agents["bob"].windows[0].stats;
    seconds(bob.handling_seconds, 90.0);
    seconds(bob.logged_in_seconds, 180.0);
    assert_eq!(snapshot.agents["bob"].current_interval.utilisation, None);

    // 6 and 7 still wait; 6 for 1000 - 250 s.
    assert_eq!(billing.waiting, Some(WaitingNow { contacts: 2, longest_wait: Some(750.0) }));

    // The historical report: the first interval holds everything, the second only ann's idle time so far.
    let history = example.metrics.intervals(DimensionKind::Queue, "billing", 0.0, 1_000.0).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].start, history[1].start), (0.0, 900.0));
    assert_contact_figures(&history[0].stats);
    assert_eq!(history[1].stats, Stats::default());
    let ann = example.metrics.intervals(DimensionKind::Agent, "ann", f64::NEG_INFINITY, f64::INFINITY).unwrap();
    seconds(ann[0].stats.handling_seconds, 215.0);
    seconds(ann[0].stats.available_idle_seconds, 115.0 + 570.0);
    seconds(ann[0].stats.logged_in_seconds, 900.0);
    seconds(ann[1].stats.available_idle_seconds, 100.0);
    let overall = example.metrics.intervals(DimensionKind::Overall, "", 0.0, 900.0).unwrap();
    assert_eq!(overall.len(), 1);
    seconds(overall[0].stats.logged_in_seconds, 900.0 + 300.0);
    assert_eq!(
        example.metrics.intervals(DimensionKind::Queue, "sales", 0.0, 900.0),
        Err(MetricsError::UnknownName { kind: DimensionKind::Queue, name: "sales".into() })
    );
}
