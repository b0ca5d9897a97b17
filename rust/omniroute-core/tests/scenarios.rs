//! Scenarios of the routing engine, one behaviour each, told as a story in
//! contact-center words: they are tests and the engine's documentation.

// Times in these scenarios are sums of small whole numbers: exact in f64.
#![allow(clippy::float_cmp)]

mod common;

use common::*;
use omniroute_core::model::{
    AgentStatus, ChannelConfig, EngineConfig, Input, NewTask, Output, QueueConfig, RequestedState, StepAction,
    Strategy, Verdict,
};
use omniroute_core::{Engine, Error, FEATURES};
use std::collections::BTreeMap;

/// A task that only `agent` may take (for the next ~30 years): the way these
/// scenarios give one agent a history of work.
fn steered(id: &str, channel: &str, queue: &str, agent: &str) -> NewTask {
    NewTask { preferred_agents: vec![agent.into()], preferred_until: Some(1e9), ..task(id, channel, queue) }
}

/// Give `agent` a task and have it accepted: a history of work.
fn give(w: &mut World, now: f64, id: &str, channel: &str, queue: &str, agent: &str) {
    let got = w.assign(now, steered(id, channel, queue, agent));
    assert_eq!(got, agent);
}

fn has_event(events: &[Output], keep: impl Fn(&Output) -> bool) -> bool {
    events.iter().any(keep)
}

// ===================================================================
// Strategies
// ===================================================================

#[test]
fn longest_idle_offers_the_call_to_the_agent_free_the_longest() {
    // Ann finished her call at 200 s, Bob finished his chat at 100 s. A new
    // call at 300 s goes to Bob: he has been idle 200 s, Ann only 100 s,
    // whatever channel their last work was on.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support"), member("bob", "support")]));
    w.run(0.0, &[add(steered("old-call", "voice", "support", "ann"))]);
    let o = offer_of(&w.log, "old-call");
    w.run(0.0, &[accept(o.id)]);
    give(&mut w, 10.0, "old-chat", "chat", "support", "bob");
    w.run(100.0, &[complete("old-chat")]);
    w.run(200.0, &[complete("old-call")]);

    let events = w.arrive(300.0, task("call", "voice", "support"));
    let offer = offer_of(&events, "call");
    assert_eq!(offer.agent, "bob");
    assert_eq!(offer.reason.strategy, "longest_idle");
    assert_eq!(offer.reason.trigger, "task_arrived");
    assert_eq!(offer.reason.score, 200.0);
    assert_eq!(offer.reason.parts[0].feature, "idle_seconds");
}

#[test]
fn longest_idle_spreads_chats_instead_of_piling_them_on_one_agent() {
    // Ann and Bob both start the day at 0 s, free. A chat comes in at 10 s
    // and goes to Ann. A second chat at 11 s must go to Bob, who is idle,
    // not to Ann who is already chatting: an agent at work is not idle.
    let mut w = World::new(&config(vec![queue("chat")], vec![member("ann", "chat"), member("bob", "chat")]));
    let first = w.arrive(10.0, task("c1", "chat", "chat"));
    assert_eq!(offered_to(&first, "c1"), "ann");
    let second = w.arrive(11.0, task("c2", "chat", "chat"));
    assert_eq!(offered_to(&second, "c2"), "bob");
}

/// The history of the per-channel story: Ann's last chat ended at 50 s and
/// her last call at 150 s; Bob's last chat ended at 100 s.
fn idle_history(per_channel: bool) -> World {
    let q = queue_with("chat", Strategy::LongestIdle { per_channel });
    let mut w = World::new(&config(vec![q], vec![member("ann", "chat"), member("bob", "chat")]));
    give(&mut w, 0.0, "k1", "chat", "chat", "ann");
    w.run(50.0, &[complete("k1")]);
    give(&mut w, 60.0, "k2", "chat", "chat", "bob");
    w.run(100.0, &[complete("k2")]);
    give(&mut w, 110.0, "v1", "voice", "chat", "ann");
    w.run(150.0, &[complete("v1")]);
    w
}

#[test]
fn longest_idle_per_channel_counts_from_the_last_task_of_the_same_channel() {
    // A chat at 200 s. Counted across channels, Bob has been idle longer
    // (since 100 s; Ann since her call ended at 150 s). Counted per channel,
    // Ann has not chatted since 50 s, Bob since 100 s: Ann gets it.
    let mut across = idle_history(false);
    let events = across.arrive(200.0, task("new", "chat", "chat"));
    assert_eq!(offered_to(&events, "new"), "bob");

    let mut per_channel = idle_history(true);
    let events = per_channel.arrive(200.0, task("new", "chat", "chat"));
    let offer = offer_of(&events, "new");
    assert_eq!(offer.agent, "ann");
    assert_eq!(offer.reason.strategy, "longest_idle_per_channel");
    assert_eq!(offer.reason.parts[0].feature, "channel_idle_seconds");
    assert_eq!(offer.reason.score, 150.0);
}

#[test]
fn least_occupied_offers_the_chat_to_the_agent_with_the_most_room() {
    // Ann is in two chats, Bob in one: the next chat goes to Bob, whose
    // capacity is a third used against Ann's two thirds.
    let q = queue_with("chat", Strategy::LeastOccupied);
    let mut w = World::new(&config(vec![q], vec![member("ann", "chat"), member("bob", "chat")]));
    give(&mut w, 0.0, "c1", "chat", "chat", "ann");
    give(&mut w, 1.0, "c2", "chat", "chat", "ann");
    give(&mut w, 2.0, "c3", "chat", "chat", "bob");
    let events = w.arrive(3.0, task("c4", "chat", "chat"));
    let offer = offer_of(&events, "c4");
    assert_eq!(offer.agent, "bob");
    assert_eq!(offer.reason.strategy, "least_occupied");
    assert!((offer.reason.score + 1.0 / 3.0).abs() < 1e-12, "score {}", offer.reason.score);
}

#[test]
fn most_skilled_offers_the_task_to_the_best_qualified_agent() {
    // A billing question needs billing level 2. Cid (level 1) cannot take
    // it; Ann (3) and Bob (5) can, and Bob, the expert, gets it.
    let q = queue_with("billing", Strategy::MostSkilled);
    let agents = vec![
        agent("ann", &[("billing", 0)], &[("billing", 3)]),
        agent("bob", &[("billing", 0)], &[("billing", 5)]),
        agent("cid", &[("billing", 0)], &[("billing", 1)]),
    ];
    let mut w = World::new(&config(vec![q], agents));
    let events = w.arrive(0.0, NewTask { requires: Some(skill("billing", 2)), ..task("t", "voice", "billing") });
    let offer = offer_of(&events, "t");
    assert_eq!(offer.agent, "bob");
    assert_eq!(offer.reason.score, 5.0);
    assert_eq!(&*offer.reason.requirement, "billing>=2");
}

#[test]
fn round_robin_takes_the_agents_in_turn_and_skips_those_away() {
    // Chats go to Ann, Bob, Cid, then Ann again. When Bob steps away, the
    // turn after Ann passes him over and goes to Cid.
    let q = queue_with("chat", Strategy::RoundRobin);
    let agents = vec![member("ann", "chat"), member("bob", "chat"), member("cid", "chat")];
    let mut w = World::new(&config(vec![q], agents));
    let mut order = Vec::new();
    for i in 0..4 {
        let id = format!("c{i}");
        let offer = offer_of(&w.arrive(f64::from(i), task(&id, "chat", "chat")), &id);
        w.run(f64::from(i), &[accept(offer.id)]);
        order.push(offer.agent);
    }
    assert_eq!(order, ["ann", "bob", "cid", "ann"]);
    w.run(10.0, &[away("bob")]);
    let events = w.arrive(11.0, task("c5", "chat", "chat"));
    assert_eq!(offered_to(&events, "c5"), "cid");
    assert_eq!(offer_of(&events, "c5").reason.strategy, "round_robin");
}

#[test]
fn fewest_handled_offers_the_call_to_the_agent_who_took_the_fewest() {
    // Ann has handled two calls today, Bob one, Cid three: Bob is next.
    let q = queue_with("support", Strategy::FewestHandled);
    let agents = vec![member("ann", "support"), member("bob", "support"), member("cid", "support")];
    let mut w = World::new(&config(vec![q], agents));
    let history = [("ann", 2), ("bob", 1), ("cid", 3)];
    let mut now = 0.0;
    for (agent, n) in history {
        for i in 0..n {
            let id = format!("{agent}-{i}");
            give(&mut w, now, &id, "voice", "support", agent);
            w.run(now + 1.0, &[complete(&id)]);
            now += 2.0;
        }
    }
    let events = w.arrive(now, task("t", "voice", "support"));
    let offer = offer_of(&events, "t");
    assert_eq!(offer.agent, "bob");
    assert_eq!(offer.reason.score, -1.0);
}

/// Sixty chats decided one after the other by weighted random over
/// occupancy, each cancelled at once so every decision sees the same floor:
/// Ann in one chat, Bob in two, Cid in none (when `busy`).
fn weighted_draws(seed: u64, busy: bool) -> Vec<String> {
    let q = queue_with("chat", Strategy::WeightedRandom { feature: "occupancy".into() });
    let agents = vec![member("ann", "chat"), member("bob", "chat"), member("cid", "chat")];
    let mut w = World::new(&EngineConfig { seed, ..config(vec![q], agents) });
    if busy {
        give(&mut w, 0.0, "a1", "chat", "chat", "ann");
        give(&mut w, 0.0, "b1", "chat", "chat", "bob");
        give(&mut w, 0.0, "b2", "chat", "chat", "bob");
    }
    (0..60)
        .map(|i| {
            let id = format!("n{i}");
            let events = w.arrive(1.0, task(&id, "chat", "chat"));
            w.run(1.0, &[cancel(&id)]);
            offered_to(&events, &id)
        })
        .collect()
}

#[test]
fn weighted_random_draws_in_proportion_and_never_picks_a_zero_weight() {
    // Drawing by occupancy, Bob (two thirds busy) should be picked about
    // twice as often as Ann (one third), and Cid (weight 0) never.
    let draws = weighted_draws(0, true);
    let count = |a: &str| draws.iter().filter(|d| *d == a).count();
    assert_eq!(count("cid"), 0, "{draws:?}");
    assert!(count("ann") > 0 && count("bob") > count("ann"), "{draws:?}");

    // When every weight is 0, the draw is uniform: everyone gets some.
    let draws = weighted_draws(0, false);
    for a in ["ann", "bob", "cid"] {
        assert!(draws.iter().any(|d| d == a), "{a} never drawn in {draws:?}");
    }
}

#[test]
fn weighted_random_is_reproducible_from_its_seed() {
    // The same seed gives the same choices (a simulation can be replayed);
    // other seeds give other choices.
    assert_eq!(weighted_draws(7, true), weighted_draws(7, true));
    let base = weighted_draws(0, true);
    assert!((1..=5).any(|seed| weighted_draws(seed, true) != base));
}

#[test]
fn score_weighs_named_features() {
    // The sales queue weighs skill (x10) against occupancy (x-30). Ann is
    // the better seller (3) but busy with two chats: 30 - 20 = 10. Bob
    // sells at level 2 and is free: 20. Bob gets the chat, and the offer
    // says why, feature by feature.
    let weights = BTreeMap::from([("skill_level".to_owned(), 10.0), ("occupancy".to_owned(), -30.0)]);
    let q = queue_with("sales", Strategy::Score { weights });
    let agents = vec![agent("ann", &[("sales", 0)], &[("sales", 3)]), agent("bob", &[("sales", 0)], &[("sales", 2)])];
    let mut w = World::new(&config(vec![q], agents));
    give(&mut w, 0.0, "c1", "chat", "sales", "ann");
    give(&mut w, 0.0, "c2", "chat", "sales", "ann");
    let events = w.arrive(1.0, NewTask { requires: Some(skill("sales", 1)), ..task("c3", "chat", "sales") });
    let offer = offer_of(&events, "c3");
    assert_eq!(offer.agent, "bob");
    assert_eq!(offer.reason.score, 20.0);
    let parts: Vec<(String, f64, f64)> =
        offer.reason.parts.iter().map(|p| (p.feature.to_string(), p.value, p.weight)).collect();
    assert_eq!(parts, [("occupancy".to_owned(), 0.0, -30.0), ("skill_level".to_owned(), 2.0, 10.0)]);
    assert_eq!(w.explain("c3").agents.len(), 2);
}

#[test]
fn external_strategy_lets_the_caller_pick_among_eligible_agents() {
    // The concierge queue is routed by an outside model. A VIP request
    // lists Ann and Bob (both VIP-trained) with their features; Cid is not
    // a candidate. Nothing is offered until the caller picks Bob. Picking
    // Cid, who is not trained, is refused.
    let q = queue_with("concierge", Strategy::External);
    let agents = vec![
        agent("ann", &[("concierge", 0)], &[("vip", 1)]),
        agent("bob", &[("concierge", 0)], &[("vip", 2)]),
        agent("cid", &[("concierge", 0)], &[]),
    ];
    let mut w = World::new(&config(vec![q], agents));
    let events = w.arrive(0.0, NewTask { requires: Some(skill("vip", 1)), ..task("r", "chat", "concierge") });
    assert!(no_offer(&events));
    let picks = select(&events, |e| matches!(e, Output::PickRequested { .. }));
    let [Output::PickRequested { task, queue, candidates, .. }] = picks.as_slice() else {
        panic!("expected one pick request in {events:#?}")
    };
    assert_eq!((&**task, &**queue), ("r", "concierge"));
    let names: Vec<&str> = candidates.iter().map(|c| &*c.agent).collect();
    assert_eq!(names, ["ann", "bob"]);
    let features: Vec<&str> = candidates[1].features.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(features, FEATURES);
    assert_eq!(candidates[1].features.iter().find(|(f, _)| f == "skill_level").unwrap().1, 2.0);
    assert!(matches!(verdict_of(&w.explain("r"), "ann"), Verdict::Eligible { .. }));

    let (kind, message) = w.refused(1.0, Input::Pick { task: "r".into(), agent: "cid".into() });
    assert_eq!(kind, "invalid_transition", "{message}");
    let (kind, _) = w.refused(1.0, Input::Pick { task: "r".into(), agent: "nobody".into() });
    assert_eq!(kind, "unknown_id");

    let events = w.run(2.0, &[Input::Pick { task: "r".into(), agent: "bob".into() }]);
    let offer = offer_of(&events, "r");
    assert_eq!(offer.agent, "bob");
    assert_eq!((offer.reason.trigger.as_ref(), offer.reason.strategy.as_ref()), ("picked", "external"));
    let (kind, _) = w.refused(3.0, Input::Pick { task: "r".into(), agent: "ann".into() });
    assert_eq!(kind, "invalid_transition");
}

// ===================================================================
// Relaxation steps
// ===================================================================

fn relaxing_queue(name: &str, after: f64, action: StepAction) -> QueueConfig {
    QueueConfig { steps: vec![step(after, action)], ..queue(name) }
}

#[test]
fn lower_level_accepts_a_less_skilled_agent_after_a_wait() {
    // A billing question asks for level 4. Only Ann (level 2) is free. After
    // 30 s the queue settles for level 2: the step is reported, and Ann is
    // offered the task at 30 s even though nothing happened until 45 s.
    let q = relaxing_queue("billing", 30.0, StepAction::LowerLevel { skill: "billing".into(), min_level: 2 });
    let mut w = World::new(&config(vec![q], vec![agent("ann", &[("billing", 0)], &[("billing", 2)])]));
    let events = w.arrive(0.0, NewTask { requires: Some(skill("billing", 4)), ..task("t", "voice", "billing") });
    assert!(no_offer(&events));
    assert!(no_offer(&w.wait(29.0)));
    let events = w.wait(45.0);
    let reached = select(&events, |e| matches!(e, Output::StepReached { .. }));
    let [Output::StepReached { at, step, requirement, .. }] = reached.as_slice() else { panic!("{events:#?}") };
    assert_eq!((*at, *step, &**requirement), (30.0, 1, "billing>=2"));
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.at, offer.reason.step), ("ann", 30.0, 1));
    assert_eq!(offer.expires_at, 60.0);
}

#[test]
fn drop_condition_stops_asking_for_a_skill() {
    // A Spanish-speaking billing customer; Ann knows billing but not
    // Spanish. After 20 s the queue drops the language requirement.
    let q = relaxing_queue("billing", 20.0, StepAction::DropCondition { skill: "es".into() });
    let mut w = World::new(&config(vec![q], vec![agent("ann", &[("billing", 0)], &[("billing", 1)])]));
    let requires = all(vec![skill("billing", 1), skill("es", 1)]);
    let events = w.arrive(0.0, NewTask { requires: Some(requires), ..task("t", "chat", "billing") });
    assert!(no_offer(&events));
    assert!(
        matches!(verdict_of(&w.explain("t"), "ann"), Verdict::MissingSkill { ref skill, required: 1, has: 0 } if skill == "es")
    );
    let events = w.wait(25.0);
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.at, offer.reason.step), ("ann", 20.0, 1));
    assert_eq!(&*offer.reason.requirement, "(billing>=1 & true)");
}

#[test]
fn add_queue_overflows_to_another_team_after_a_wait() {
    // Sales is swamped; after a minute its callers may be helped by the
    // support team too. Sam (support) is free all along but only gets the
    // sales call at 60 s.
    let sales = relaxing_queue("sales", 60.0, StepAction::AddQueue { queue: "support".into() });
    let agents = vec![member("sally", "sales"), member("sam", "support")];
    let mut w = World::new(&config(vec![sales, queue("support")], agents));
    w.run(0.0, &[away("sally")]);
    assert!(no_offer(&w.arrive(1.0, task("t", "voice", "sales"))));
    assert_eq!(verdict_of(&w.explain("t"), "sam"), Verdict::NotServingQueue);
    assert!(no_offer(&w.wait(60.0)));
    let events = w.wait(61.0);
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.at, offer.queue.as_str()), ("sam", 61.0, "sales"));
}

#[test]
fn add_condition_narrows_the_requirement_for_a_long_wait() {
    // Reverse bullseye: a claim that has waited two minutes should go to a
    // senior who can settle it in one go. When the junior frees up after
    // that, he is passed over; the senior gets it when she is free.
    let q = relaxing_queue("claims", 120.0, StepAction::AddCondition { condition: skill("senior", 1) });
    let agents = vec![member("jim", "claims"), agent("sue", &[("claims", 0)], &[("senior", 1)])];
    let mut w = World::new(&config(vec![q], agents));
    give(&mut w, 0.0, "busy-jim", "voice", "claims", "jim");
    give(&mut w, 0.0, "busy-sue", "voice", "claims", "sue");
    w.arrive(1.0, task("claim", "voice", "claims"));
    let events = w.wait(130.0);
    assert!(has_event(&events, |e| matches!(e, Output::StepReached { at, step: 1, .. } if *at == 121.0)));
    let events = w.run(140.0, &[complete("busy-jim")]);
    assert!(no_offer(&events));
    assert!(
        matches!(verdict_of(&w.explain("claim"), "jim"), Verdict::MissingSkill { ref skill, .. } if skill == "senior")
    );
    let events = w.run(150.0, &[complete("busy-sue")]);
    assert_eq!(offered_to(&events, "claim"), "sue");
}

#[test]
fn steps_fire_once_each_on_wall_clock_timestamps() {
    // Production drives the engine with Unix timestamps. A step due after
    // 10.1 s must fire once, at its time, and not spin: 1.7e9 + 10.1 does
    // not round-trip exactly in floating point.
    let q = relaxing_queue("billing", 10.1, StepAction::LowerLevel { skill: "billing".into(), min_level: 1 });
    let cfg = config(vec![q], vec![agent("ann", &[("billing", 0)], &[("billing", 1)])]);
    let start = 1_700_000_000.25;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut w = World::at(&cfg, start);
        w.arrive(start, NewTask { requires: Some(skill("billing", 3)), ..task("t", "voice", "billing") });
        let events = w.wait(start + 20.0);
        let _ = tx.send(events);
    });
    let events = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the step timer never settled");
    let reached = select(&events, |e| matches!(e, Output::StepReached { .. }));
    assert_eq!(reached.len(), 1, "{events:#?}");
    assert_eq!(offered_to(&events, "t"), "ann");
}

// ===================================================================
// Sticky routing
// ===================================================================

/// Bob is on a call; a returning customer asks for Bob until 70 s.
fn sticky_world() -> World {
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support"), member("bob", "support")]));
    give(&mut w, 0.0, "call", "voice", "support", "bob");
    let t =
        NewTask { preferred_agents: vec!["bob".into()], preferred_until: Some(70.0), ..task("t", "chat", "support") };
    assert!(no_offer(&w.arrive(10.0, t)));
    w
}

#[test]
fn sticky_task_waits_for_its_agent_until_the_reservation_ends() {
    // Ann is free, but the customer asked for Bob: only Bob may take it
    // until 70 s. Bob stays busy; at 70 s the reservation ends and Ann
    // gets the chat.
    let mut w = sticky_world();
    let e = w.explain("t");
    assert_eq!(verdict_of(&e, "ann"), Verdict::ReservedForOthers { until: 70.0 });
    assert!(matches!(verdict_of(&e, "bob"), Verdict::NoCapacity { needed: 20, free: 0 }));
    assert!(no_offer(&w.wait(69.0)));
    let events = w.wait(100.0);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::ReservationExpired { at, task } if *at == 70.0 && &**task == "t")
    ));
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.at, offer.reason.reserved), ("ann", 70.0, false));
}

#[test]
fn sticky_task_goes_to_its_agent_as_soon_as_he_is_free() {
    // Bob finishes his call at 40 s and is offered his returning customer
    // at once, marked as reserved.
    let mut w = sticky_world();
    let events = w.run(40.0, &[complete("call")]);
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.reason.reserved), ("bob", true));
    assert_eq!(offer.reason.trigger, "agent_freed");
    assert_eq!(offer.reason.strategy, "reserved");
}

#[test]
fn sticky_task_is_released_when_its_agent_declines_it() {
    // Bob rejects his returning customer. Keeping the customer waiting for
    // Bob until 70 s would help nobody: the task goes to Ann at once.
    let mut w = sticky_world();
    let events = w.run(40.0, &[complete("call")]);
    let offer = offer_of(&events, "t");
    let events = w.run(45.0, &[reject(offer.id)]);
    assert_eq!(offered_to(&events, "t"), "ann");
}

#[test]
fn a_preferred_agent_listed_twice_is_one_preference() {
    // The CRM sends the last agent twice; the task is still reserved for
    // Bob alone, and the engine stays consistent.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support"), member("bob", "support")]));
    give(&mut w, 0.0, "call", "voice", "support", "bob");
    let t = NewTask {
        preferred_agents: vec!["bob".into(), "bob".into()],
        preferred_until: Some(70.0),
        ..task("t", "chat", "support")
    };
    assert!(no_offer(&w.arrive(10.0, t)));
    let events = w.run(20.0, &[complete("call")]);
    assert_eq!(offered_to(&events, "t"), "bob");
}

// ===================================================================
// Capacity
// ===================================================================

fn load_of(events: &[Output], agent: &str) -> Option<(u32, u32, u32)> {
    events.iter().rev().find_map(|e| match e {
        Output::AgentLoad { agent: a, used, capacity, tasks, .. } if &**a == agent => Some((*used, *capacity, *tasks)),
        _ => None,
    })
}

#[test]
fn a_call_interrupts_email_work_but_nothing_exceeds_capacity() {
    // Ann has five e-mails open: her capacity is full of interruptible
    // work. A sixth e-mail waits, but a call may interrupt the e-mails and
    // is offered to her. While on the call, she gets no chat.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    for i in 0..5 {
        give(&mut w, 0.0, &format!("e{i}"), "email", "support", "ann");
    }
    assert_eq!(load_of(&w.log, "ann"), Some((60, 60, 5)));
    assert!(no_offer(&w.arrive(1.0, task("e5", "email", "support"))));
    assert_eq!(verdict_of(&w.explain("e5"), "ann"), Verdict::NoCapacity { needed: 12, free: 0 });

    let events = w.arrive(2.0, task("call", "voice", "support"));
    let offer = offer_of(&events, "call");
    assert_eq!(offer.agent, "ann");
    let events = w.run(3.0, &[accept(offer.id)]);
    assert_eq!(load_of(&events, "ann"), Some((60, 60, 6)));

    assert!(no_offer(&w.arrive(4.0, task("chat", "chat", "support"))));
    assert_eq!(verdict_of(&w.explain("chat"), "ann"), Verdict::NoCapacity { needed: 20, free: 0 });
    // The call ends: the chat is offered (firm work fits beside e-mails),
    // the waiting e-mail still does not fit.
    let events = w.run(100.0, &[complete("call")]);
    assert_eq!(pairs(&events), [("chat".to_owned(), "ann".to_owned())]);
}

#[test]
fn an_interrupted_agent_can_still_be_reconfigured() {
    // Ann is on a call with five e-mails open. A supervisor gives her a new
    // skill, keeping her capacity: that must be accepted.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    for i in 0..5 {
        give(&mut w, 0.0, &format!("e{i}"), "email", "support", "ann");
    }
    give(&mut w, 1.0, "call", "voice", "support", "ann");
    let upgraded = agent("ann", &[("support", 0)], &[("billing", 2)]);
    w.run(2.0, &[Input::UpsertAgent { agent: upgraded }]);
    // Shrinking her below the call she is on is still refused.
    let smaller = omniroute_core::model::AgentConfig { capacity: 40, ..member("ann", "support") };
    let (kind, message) = w.refused(3.0, Input::UpsertAgent { agent: smaller });
    assert_eq!(kind, "invalid_config", "{message}");
}

#[test]
fn chats_stop_at_the_channel_maximum_even_with_capacity_left() {
    // Ann has a double capacity (120), but three chats is the most anyone
    // handles: the fourth chat waits. A call (60) still fits beside them.
    let big = omniroute_core::model::AgentConfig { capacity: 120, ..member("ann", "chat") };
    let mut w = World::new(&config(vec![queue("chat")], vec![big]));
    for i in 0..3 {
        give(&mut w, 0.0, &format!("c{i}"), "chat", "chat", "ann");
    }
    assert!(no_offer(&w.arrive(1.0, task("c3", "chat", "chat"))));
    assert_eq!(verdict_of(&w.explain("c3"), "ann"), Verdict::ChannelLimit { channel: "chat".into(), max: 3 });
    assert_eq!(offered_to(&w.arrive(2.0, task("v", "voice", "chat")), "v"), "ann");
}

#[test]
fn lowering_a_channel_maximum_below_current_work_is_refused() {
    // Ann is in three chats. Lowering the chat maximum to two would put her
    // over the limit: the change is refused until nobody holds more.
    let mut w = World::new(&config(vec![queue("chat")], vec![member("ann", "chat")]));
    for i in 0..3 {
        give(&mut w, 0.0, &format!("c{i}"), "chat", "chat", "ann");
    }
    let two = ChannelConfig { max_per_agent: Some(2), ..chat() };
    let (kind, _) = w.refused(1.0, Input::UpsertChannel { channel: two.clone() });
    assert_eq!(kind, "invalid_transition");
    w.run(2.0, &[complete("c0")]);
    w.run(3.0, &[Input::UpsertChannel { channel: two }]);
    assert!(no_offer(&w.arrive(4.0, task("c3", "chat", "chat"))));
}

#[test]
fn a_new_channel_can_make_a_small_agent_ready() {
    // Tom is a trainee with 10 units of capacity: nothing fits him yet.
    // When a light "note" channel (5 units) is added, notes go to him.
    let tom = omniroute_core::model::AgentConfig { capacity: 10, ..member("tom", "support") };
    let mut w = World::new(&config(vec![queue("support")], vec![tom]));
    let note =
        ChannelConfig { name: "note".into(), cost: 5, max_per_agent: None, interruptible: false, inactive_after: None };
    w.run(1.0, &[Input::UpsertChannel { channel: note }]);
    assert_eq!(offered_to(&w.arrive(2.0, task("n", "note", "support")), "n"), "tom");
}

// ===================================================================
// Inactive asynchronous work
// ===================================================================

/// Ann (capacity 60) holds three SMS conversations since 0 s; another SMS,
/// s4, waits since 10 s; the customers of s2 and s3 wrote again at 30 s.
fn sms_world() -> World {
    let mut w = World::new(&config(vec![queue("sms")], vec![member("ann", "sms")]));
    for id in ["s1", "s2", "s3"] {
        give(&mut w, 0.0, id, "sms", "sms", "ann");
    }
    assert!(no_offer(&w.arrive(10.0, task("s4", "sms", "sms"))));
    w.run(30.0, &[activity("s2"), activity("s3")]);
    w
}

#[test]
fn a_silent_sms_conversation_gives_its_capacity_back() {
    // The customer of s1 has been silent for a minute at 60 s: the
    // conversation stops counting, and the SMS waiting since 10 s is
    // offered to Ann at once.
    let mut w = sms_world();
    let events = w.wait(65.0);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskInactive { at, task, .. } if *at == 60.0 && &**task == "s1")
    ));
    let offer = offer_of(&events, "s4");
    assert_eq!((offer.agent.as_str(), offer.at), ("ann", 60.0));
    let events = w.wait(95.0);
    let inactive = select(&events, |e| matches!(e, Output::TaskInactive { at, .. } if *at == 90.0));
    assert_eq!(inactive.len(), 2, "{events:#?}");
}

#[test]
fn a_customer_writing_again_reactivates_the_conversation() {
    // s1 went quiet at 60 s; the SMS offered to Ann in its place rang out
    // and its customer gave up. The customer of s1 writes at 95 s: Ann has
    // room, so the conversation counts again at once. A minute of silence
    // later it is released again.
    let mut w = sms_world();
    w.run(95.0, &[cancel("s4")]);
    let events = w.run(95.0, &[activity("s1")]);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskReactivated { at, task, .. } if *at == 95.0 && &**task == "s1")
    ));
    let events = w.wait(160.0);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskInactive { at, task, .. } if *at == 155.0 && &**task == "s1")
    ));
}

#[test]
fn reactivation_waits_for_room_and_the_conversation_can_go_quiet_again() {
    // s1 went quiet at 60 s and Ann took a new SMS, s4, in its place; the
    // other customers keep writing. The customer of s1 writes at 70 s: Ann
    // is full, so s1 waits for room. When s4 is finished at 150 s, s1
    // counts again. After a minute of silence since it came back (210 s)
    // it is released again, like any conversation.
    let mut w = sms_world();
    let events = w.wait(60.0);
    w.run(61.0, &[accept(offer_of(&events, "s4").id)]);
    let events = w.run(70.0, &[activity("s1")]);
    assert!(!has_event(&events, |e| matches!(e, Output::TaskReactivated { .. })));
    w.run(80.0, &[activity("s2"), activity("s3")]);
    w.run(100.0, &[activity("s4")]);
    let events = w.run(130.0, &[activity("s2"), activity("s3")]);
    assert!(!has_event(&events, |e| matches!(e, Output::TaskReactivated { .. } | Output::TaskInactive { .. })));
    let events = w.run(150.0, &[complete("s4")]);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskReactivated { at, task, .. } if *at == 150.0 && &**task == "s1")
    ));
    let events = w.wait(300.0);
    let quiet: Vec<(f64, String)> = events
        .iter()
        .filter_map(|e| match e {
            Output::TaskInactive { at, task, .. } => Some((*at, task.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(quiet, [(190.0, "s2".to_owned()), (190.0, "s3".to_owned()), (210.0, "s1".to_owned())]);
}

#[test]
fn inactivity_fires_on_wall_clock_timestamps() {
    // With Unix timestamps and a 45.3 s silence threshold, the silent
    // conversation is still released on time.
    let quick = ChannelConfig { inactive_after: Some(45.3), ..sms() };
    let cfg = EngineConfig { channels: vec![quick], ..config(vec![queue("sms")], vec![member("ann", "sms")]) };
    let start = 1_700_000_000.25;
    let mut w = World::at(&cfg, start);
    give(&mut w, start, "s1", "sms", "sms", "ann");
    let events = w.wait(start + 100.0);
    assert!(has_event(&events, |e| matches!(e, Output::TaskInactive { task, .. } if &**task == "s1")), "{events:#?}");
}

// ===================================================================
// Offers
// ===================================================================

#[test]
fn accepting_an_offer_assigns_the_task() {
    // The call rings Ann at 5 s; she answers at 8 s: it waited 8 s.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    let events = w.arrive(5.0, NewTask { enqueued_at: Some(0.0), ..task("t", "voice", "support") });
    let offer = offer_of(&events, "t");
    assert_eq!(offer.expires_at, 35.0);
    let events = w.run(8.0, &[accept(offer.id)]);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskAssigned { task, agent, wait, .. } if &**task == "t" && &**agent == "ann" && *wait == 8.0)
    ));
    assert_eq!(w.explain("t").phase, "assigned");
}

#[test]
fn a_rejected_task_keeps_its_place_and_goes_to_the_next_agent() {
    // Two calls wait: t1 since 0 s, t2 since 10 s. Bob frees up at 20 s and
    // is offered t1, the oldest; he rejects it. He is not offered t1 again
    // but takes t2. t1 keeps its place: when Ann frees up at 30 s she gets
    // t1 before t3, which arrived at 26 s.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support"), member("bob", "support")]));
    give(&mut w, 0.0, "ann-call", "voice", "support", "ann");
    give(&mut w, 0.0, "bob-call", "voice", "support", "bob");
    w.arrive(0.0, task("t1", "voice", "support"));
    w.arrive(10.0, task("t2", "voice", "support"));
    let events = w.run(20.0, &[complete("bob-call")]);
    let offer = offer_of(&events, "t1");
    assert_eq!(offer.agent, "bob");
    let events = w.run(25.0, &[reject(offer.id)]);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::OfferRejected { task, agent, .. } if &**task == "t1" && &**agent == "bob")
    ));
    assert_eq!(pairs(&events), [("t2".to_owned(), "bob".to_owned())]);
    assert_eq!(verdict_of(&w.explain("t1"), "bob"), Verdict::DeclinedBefore);
    w.arrive(26.0, task("t3", "voice", "support"));
    let events = w.run(30.0, &[complete("ann-call")]);
    let offer = offer_of(&events, "t1");
    assert_eq!(offer.agent, "ann");
    let events = w.run(31.0, &[accept(offer.id)]);
    assert!(has_event(&events, |e| matches!(e, Output::TaskAssigned { wait, .. } if *wait == 31.0)));
}

#[test]
fn an_unanswered_offer_times_out_and_moves_on() {
    // Ann does not answer within 30 s: the offer times out at 30 s and the
    // call goes to Bob, who frees up later. Ann is not offered it again.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support"), member("bob", "support")]));
    give(&mut w, 0.0, "bob-call", "voice", "support", "bob");
    let offer = offer_of(&w.arrive(0.0, task("t", "voice", "support")), "t");
    assert_eq!(offer.agent, "ann");
    let events = w.wait(40.0);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::OfferTimedOut { at, offer: o, .. } if *at == 30.0 && *o == offer.id)
    ));
    assert!(no_offer(&events));
    let events = w.run(50.0, &[complete("bob-call")]);
    assert_eq!(offered_to(&events, "t"), "bob");
}

#[test]
fn an_agent_who_misses_offers_in_a_row_is_set_not_responding() {
    // Ann lets three calls in a row ring out: after the third she is
    // marked not responding and gets nothing more until she is back.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    for (i, start) in [0.0, 31.0, 62.0].into_iter().enumerate() {
        let id = format!("v{i}");
        assert_eq!(offered_to(&w.arrive(start, task(&id, "voice", "support")), &id), "ann");
    }
    // Each call timed out before the next arrived.
    let events = w.wait(100.0);
    assert_eq!(statuses(&events, "ann"), [AgentStatus::NotResponding]);
    assert!(no_offer(&w.arrive(101.0, task("v3", "voice", "support"))));
    assert_eq!(verdict_of(&w.explain("v3"), "ann"), Verdict::NotAvailable { status: AgentStatus::NotResponding });
    let events = w.run(110.0, &[available("ann")]);
    assert_eq!(offered_to(&events, "v3"), "ann");
}

#[test]
fn a_rejection_breaks_a_run_of_missed_offers() {
    // Ann lets two calls ring out, rejects the third, lets the fourth ring
    // out: she answered in between, so she is still available.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    let mut now = 0.0;
    for i in 0..4 {
        let id = format!("v{i}");
        let offer = offer_of(&w.arrive(now, task(&id, "voice", "support")), &id);
        if i == 2 {
            w.run(now + 1.0, &[reject(offer.id)]);
        } else {
            w.wait(now + 30.0);
        }
        now += 31.0;
    }
    assert_eq!(w.status("ann"), AgentStatus::Available);
    assert!(statuses(&w.log, "ann").is_empty());
}

#[test]
fn a_customer_who_hangs_up_is_cancelled_while_waiting_or_ringing() {
    // t1 waits (nobody free) and its caller hangs up; t2 is ringing at Ann
    // when its caller hangs up: the offer is rescinded and Ann is free.
    // Ann then answering the rescinded offer is refused, as is an offer
    // that never existed.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    w.run(0.0, &[away("ann")]);
    w.arrive(0.0, task("t1", "voice", "support"));
    let events = w.run(5.0, &[cancel("t1")]);
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskCancelled { task, wait, .. } if &**task == "t1" && *wait == 5.0)
    ));
    w.run(6.0, &[available("ann")]);
    let offer = offer_of(&w.arrive(6.0, task("t2", "voice", "support")), "t2");
    let events = w.run(7.0, &[cancel("t2")]);
    assert!(has_event(&events, |e| matches!(e, Output::OfferRescinded { why, .. } if why == "cancelled")));
    assert!(has_event(&events, |e| matches!(e, Output::TaskCancelled { task, .. } if &**task == "t2")));
    assert_eq!(load_of(&events, "ann"), Some((0, 60, 0)));
    assert_eq!(w.refused(8.0, accept(offer.id)).0, "invalid_transition");
    assert_eq!(w.refused(8.0, accept(999)).0, "unknown_id");
    assert_eq!(w.refused(8.0, reject(0)).0, "unknown_id");
    assert_eq!(w.refused(8.0, cancel("t2")).0, "unknown_id");
    assert_eq!(w.engine.task_count(), 0);
}

#[test]
fn an_agent_going_away_gives_back_the_offers_ringing_at_her() {
    // A call rings at Ann; she goes on break. The offer is rescinded and
    // the call goes to Bob.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support"), member("bob", "support")]));
    give(&mut w, 0.0, "bob-call", "voice", "support", "bob");
    let offer = offer_of(&w.arrive(1.0, task("t", "voice", "support")), "t");
    assert_eq!(offer.agent, "ann");
    let events = w.run(2.0, &[away("ann")]);
    assert!(has_event(&events, |e| matches!(e, Output::OfferRescinded { why, .. } if why == "agent_unavailable")));
    let events = w.run(3.0, &[complete("bob-call")]);
    assert_eq!(offered_to(&events, "t"), "bob");
}

// ===================================================================
// Wrap-up
// ===================================================================

fn wrap_world() -> World {
    let q = QueueConfig { wrap_up: Some(20.0), ..queue("support") };
    let mut w = World::new(&config(vec![q], vec![member("ann", "support")]));
    give(&mut w, 0.0, "v1", "voice", "support", "ann");
    let events = w.run(100.0, &[complete("v1")]);
    assert_eq!(statuses(&events, "ann"), [AgentStatus::WrapUp]);
    assert!(no_offer(&w.arrive(105.0, task("v2", "voice", "support"))));
    assert_eq!(verdict_of(&w.explain("v2"), "ann"), Verdict::NotAvailable { status: AgentStatus::WrapUp });
    w
}

#[test]
fn wrap_up_holds_offers_until_it_ends() {
    // Ann completes a call at 100 s and has 20 s of wrap-up: a call that
    // arrives at 105 s waits until 120 s, when she is available again.
    let mut w = wrap_world();
    let events = w.wait(130.0);
    assert_eq!(statuses(&events, "ann"), [AgentStatus::Available]);
    let offer = offer_of(&events, "v2");
    assert_eq!((offer.agent.as_str(), offer.at), ("ann", 120.0));
}

#[test]
fn an_agent_may_end_wrap_up_early() {
    // Ann finishes her notes at 110 s: the waiting call is offered then,
    // and the wrap-up timer that falls due later changes nothing.
    let mut w = wrap_world();
    let events = w.run(110.0, &[Input::EndWrapUp { agent: "ann".into() }]);
    assert_eq!(offer_of(&events, "v2").at, 110.0);
    let events = w.wait(130.0);
    assert!(statuses(&events, "ann").is_empty());
    assert_eq!(w.refused(131.0, Input::EndWrapUp { agent: "ann".into() }).0, "invalid_transition");
}

// ===================================================================
// Transfers
// ===================================================================

#[test]
fn a_transfer_to_a_queue_keeps_the_wait_and_not_the_transferring_agent() {
    // Ann takes a sales call (arrived at 0 s) at 5 s and at 50 s transfers
    // it to support. Ann serves support too and is now free, but the call
    // goes to Bob; its wait still counts from 0 s.
    let agents = vec![agent("ann", &[("sales", 0), ("support", 0)], &[]), member("bob", "support")];
    let mut w = World::new(&config(vec![queue("sales"), queue("support")], agents));
    w.run(0.0, &[away("bob")]);
    let offer = offer_of(&w.arrive(0.0, task("t", "voice", "sales")), "t");
    w.run(5.0, &[accept(offer.id), available("bob")]);
    let events = w.run(50.0, &[to_queue("t", "support")]);
    assert!(has_event(&events, |e| matches!(e,
        Output::TaskTransferred { from_queue, from_agent: Some(a), to_queue: Some(q), to_agent: None, .. }
            if &**from_queue == "sales" && &**a == "ann" && &**q == "support")));
    assert!(has_event(
        &events,
        |e| matches!(e, Output::TaskQueued { queue, arrived_at, .. } if &**queue == "support" && *arrived_at == 0.0)
    ));
    let offer = offer_of(&events, "t");
    assert_eq!(offer.agent, "bob");
    assert_eq!(verdict_of(&w.explain("t"), "ann"), Verdict::Excluded);
    let events = w.run(55.0, &[accept(offer.id)]);
    assert!(has_event(&events, |e| matches!(e, Output::TaskAssigned { wait, .. } if *wait == 55.0)));
}

#[test]
fn a_transfer_to_a_named_agent_reaches_that_agent_only() {
    // Ann transfers a billing call to Dora, a supervisor who is in no queue
    // and has no billing skill: the call is offered to Dora, reserved.
    let agents = vec![agent("ann", &[("billing", 0)], &[("billing", 1)]), agent("dora", &[], &[])];
    let mut w = World::new(&config(vec![queue("billing")], agents));
    w.assign(0.0, NewTask { requires: Some(skill("billing", 1)), ..task("t", "voice", "billing") });
    let events = w.run(10.0, &[to_agent("t", "dora")]);
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.reason.reserved), ("dora", true));
    assert_eq!(w.refused(11.0, to_agent("t", "dora")).0, "invalid_transition");
}

#[test]
fn a_named_transfer_declined_by_its_agent_returns_to_the_queue() {
    // Ann sends a call to Dora, who rejects it. The caller must not wait
    // forever for Dora: the call goes back to the queue, to Bob.
    let agents = vec![member("ann", "support"), member("bob", "support"), agent("dora", &[], &[])];
    let mut w = World::new(&config(vec![queue("support")], agents));
    give(&mut w, 0.0, "bob-call", "voice", "support", "bob");
    give(&mut w, 0.0, "t", "voice", "support", "ann");
    let offer = offer_of(&w.run(10.0, &[to_agent("t", "dora"), offline("ann")]), "t");
    assert_eq!(offer.agent, "dora");
    w.run(12.0, &[reject(offer.id)]);
    let events = w.run(20.0, &[complete("bob-call")]);
    assert_eq!(offered_to(&events, "t"), "bob");
}

// ===================================================================
// Draining the backlog across queues
// ===================================================================

/// Ann serves the given queues and is on a call until she completes it.
fn draining_world(queues: &[(&str, i32)], extra: Vec<QueueConfig>) -> World {
    let mut qs: Vec<QueueConfig> = queues.iter().map(|(q, _)| queue(q)).collect();
    for q in extra {
        qs.retain(|x| x.name != q.name);
        qs.push(q);
    }
    let mut w = World::new(&config(qs, vec![agent("ann", queues, &[])]));
    give(&mut w, 0.0, "busy", "voice", queues[0].0, "ann");
    w
}

/// Complete tasks one by one, accepting each offer: the order Ann takes
/// the backlog in.
fn drain(w: &mut World, mut now: f64, first: &str) -> Vec<String> {
    let mut order = Vec::new();
    let mut current = first.to_owned();
    loop {
        let events = w.run(now, &[complete(&current)]);
        let Some(offer) = offers(&events).into_iter().next() else {
            break;
        };
        w.run(now, &[accept(offer.id)]);
        current.clone_from(&offer.task);
        order.push(offer.task);
        now += 10.0;
    }
    order
}

#[test]
fn an_agent_serves_her_higher_priority_queue_first() {
    // Ann's main queue is gold (priority 2); she helps silver (1) when gold
    // is empty. An older silver call waits while she takes the gold one.
    let mut w = draining_world(&[("gold", 2), ("silver", 1)], vec![]);
    w.arrive(1.0, task("s1", "voice", "silver"));
    w.arrive(2.0, task("g1", "voice", "gold"));
    assert_eq!(drain(&mut w, 10.0, "busy"), ["g1", "s1"]);
}

#[test]
fn within_a_tier_the_highest_priority_then_the_oldest_goes_first() {
    // Two queues at the same priority for Ann: a priority-3 call beats
    // older priority-0 work, and between equal priorities the older wins.
    let mut w = draining_world(&[("q1", 0), ("q2", 0)], vec![]);
    w.arrive(1.0, task("x", "voice", "q1"));
    w.arrive(2.0, NewTask { priority: 3, ..task("y", "voice", "q2") });
    w.arrive(3.0, NewTask { priority: 3, ..task("z", "voice", "q1") });
    assert_eq!(drain(&mut w, 10.0, "busy"), ["y", "z", "x"]);
}

#[test]
fn the_backlog_drains_oldest_first_across_queues() {
    // Calls alternate between two queues: Ann takes them in arrival order.
    let mut w = draining_world(&[("q1", 0), ("q2", 0)], vec![]);
    for i in 0..6 {
        let q = if i % 2 == 0 { "q2" } else { "q1" };
        w.arrive(f64::from(i + 1), task(&format!("t{i}"), "voice", q));
    }
    assert_eq!(drain(&mut w, 10.0, "busy"), ["t0", "t1", "t2", "t3", "t4", "t5"]);
}

#[test]
fn aging_lets_an_old_low_priority_task_overtake() {
    // Callbacks gain 0.1 priority point per second of wait. A callback
    // queued at 0 s and a priority-5 sales call at 30 s: at 40 s the
    // callback is worth 4 and the sale goes first; at 100 s the callback
    // is worth 10 and goes first.
    let callbacks = QueueConfig { aging_per_second: 0.1, ..queue("callbacks") };
    for (free_at, expected) in [(40.0, ["sale", "cb"]), (100.0, ["cb", "sale"])] {
        let mut w = draining_world(&[("sales", 0), ("callbacks", 0)], vec![callbacks.clone()]);
        w.arrive(0.0, task("cb", "voice", "callbacks"));
        w.arrive(30.0, NewTask { priority: 5, ..task("sale", "voice", "sales") });
        assert_eq!(drain(&mut w, free_at, "busy"), expected);
    }
}

// ===================================================================
// Explanations
// ===================================================================

#[test]
fn explain_tells_why_each_agent_was_or_was_not_offered_the_task() {
    // A billing call (level 2) from a customer who wanted Ann until 100 s.
    // One agent for each reason it cannot go to them, then the reservation
    // ends and Ann, who rejected it, is passed over for Eve.
    let agents = vec![
        agent("ann", &[("billing", 0)], &[("billing", 2)]),
        agent("bob", &[("billing", 0)], &[]),
        agent("cid", &[("sales", 0)], &[("billing", 5)]),
        agent("dan", &[("billing", 0)], &[("billing", 3)]),
        agent("eve", &[("billing", 0)], &[("billing", 2)]),
        agent("fay", &[("billing", 0)], &[("billing", 4)]),
    ];
    let mut w = World::new(&config(vec![queue("billing"), queue("sales")], agents));
    give(&mut w, 0.0, "dan-call", "voice", "billing", "dan");
    w.run(0.0, &[away("fay")]);
    let t = NewTask {
        requires: Some(skill("billing", 2)),
        preferred_agents: vec!["ann".into()],
        preferred_until: Some(100.0),
        ..task("t", "voice", "billing")
    };
    let offer = offer_of(&w.arrive(1.0, t), "t");
    assert_eq!(offer.agent, "ann");
    let e = w.explain("t");
    assert_eq!((e.phase.as_str(), e.requirement.as_str()), ("offered", "billing>=2"));
    assert_eq!(verdict_of(&e, "ann"), Verdict::Offered);
    assert_eq!(verdict_of(&e, "eve"), Verdict::ReservedForOthers { until: 100.0 });

    let events = w.run(2.0, &[reject(offer.id)]);
    assert_eq!(offered_to(&events, "t"), "eve", "the declined sticky task goes to the next agent");
    let e = w.explain("t");
    assert_eq!(verdict_of(&e, "ann"), Verdict::DeclinedBefore);
    assert_eq!(verdict_of(&e, "bob"), Verdict::MissingSkill { skill: "billing".into(), required: 2, has: 0 });
    assert_eq!(verdict_of(&e, "cid"), Verdict::NotServingQueue);
    assert_eq!(verdict_of(&e, "dan"), Verdict::NoCapacity { needed: 60, free: 0 });
    assert_eq!(verdict_of(&e, "eve"), Verdict::Offered);
    assert_eq!(verdict_of(&e, "fay"), Verdict::NotAvailable { status: AgentStatus::Away { reason: "break".into() } });

    // Ann leaves, Fay comes back and takes a second call; when Dan's call
    // ends he could take it too, and says so.
    w.run(3.0, &[away("ann"), available("fay")]);
    let events = w.arrive(4.0, NewTask { requires: Some(skill("billing", 2)), ..task("t2", "voice", "billing") });
    assert_eq!(offered_to(&events, "t2"), "fay");
    w.run(5.0, &[complete("dan-call")]);
    let e = w.explain("t2");
    assert_eq!(verdict_of(&e, "fay"), Verdict::Offered);
    assert!(matches!(verdict_of(&e, "dan"), Verdict::Eligible { .. }), "{e:#?}");
}

// ===================================================================
// Live reconfiguration
// ===================================================================

#[test]
fn a_new_skill_makes_a_waiting_task_routable_at_once() {
    // A French call waits: nobody speaks French. A supervisor records that
    // Ann does; she is offered the call in the same batch.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    w.arrive(0.0, NewTask { requires: Some(skill("fr", 1)), ..task("t", "voice", "support") });
    let events = w.run(10.0, &[Input::UpsertAgent { agent: agent("ann", &[("support", 0)], &[("fr", 2)]) }]);
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.at, offer.reason.trigger.as_ref()), ("ann", 10.0, "agent_freed"));
}

#[test]
fn changing_a_queue_applies_its_steps_and_strategy_to_waiting_tasks() {
    // A call for billing level 5 waits at 0 s; Ann (level 2, idle longer)
    // and Bob (level 4) are free. At 100 s the queue is changed: lower the
    // level to 1 after 60 s, and prefer the most skilled. The waiting call
    // reaches the step at once and goes to Bob.
    let agents =
        vec![agent("ann", &[("billing", 0)], &[("billing", 2)]), agent("bob", &[("billing", 0)], &[("billing", 4)])];
    let mut w = World::new(&config(vec![queue("billing")], agents));
    w.arrive(0.0, NewTask { requires: Some(skill("billing", 5)), ..task("t", "voice", "billing") });
    let changed = QueueConfig {
        strategy: Strategy::MostSkilled,
        steps: vec![step(60.0, StepAction::LowerLevel { skill: "billing".into(), min_level: 1 })],
        ..queue("billing")
    };
    let events = w.run(100.0, &[Input::UpsertQueue { queue: changed }]);
    assert!(has_event(&events, |e| matches!(e, Output::StepReached { step: 1, at, .. } if *at == 100.0)));
    let offer = offer_of(&events, "t");
    assert_eq!((offer.agent.as_str(), offer.reason.strategy.as_ref()), ("bob", "most_skilled"));
}

// ===================================================================
// Snapshot and restore
// ===================================================================

/// A contact center in the middle of the day: work waiting, ringing,
/// assigned, reserved, in wrap-up and silent, with timers pending.
fn busy_world() -> World {
    let support = QueueConfig {
        wrap_up: Some(15.0),
        aging_per_second: 0.5,
        steps: vec![step(40.0, StepAction::LowerLevel { skill: "billing".into(), min_level: 1 })],
        ..queue("support")
    };
    let sales = queue_with("sales", Strategy::WeightedRandom { feature: "idle_seconds".into() });
    let agents = vec![
        agent("ann", &[("support", 1), ("sales", 0)], &[("billing", 2)]),
        agent("bob", &[("support", 0)], &[("billing", 4)]),
        agent("cid", &[("sales", 0)], &[]),
        member("dan", "sales"),
    ];
    let mut w = World::new(&EngineConfig { seed: 42, ..config(vec![support, sales], agents) });
    give(&mut w, 0.0, "sms", "sms", "sales", "cid");
    give(&mut w, 0.0, "call", "voice", "support", "bob");
    w.run(1.0, &[add(task("ring", "voice", "sales"))]);
    w.run(2.0, &[add(NewTask { requires: Some(skill("billing", 3)), ..task("wait", "chat", "support") })]);
    w.run(
        3.0,
        &[add(NewTask {
            preferred_agents: vec!["bob".into()],
            preferred_until: Some(50.0),
            ..task("sticky", "email", "support")
        })],
    );
    w.run(4.0, &[complete("call")]);
    w
}

fn next_batch() -> Vec<Input> {
    vec![
        add(task("new1", "chat", "sales")),
        add(task("new2", "voice", "sales")),
        activity("sms"),
        add(task("new3", "email", "support")),
        accept(1),
        cancel("wait"),
    ]
}

#[test]
fn a_restored_snapshot_behaves_exactly_like_the_original() {
    // The runtime restarts from a snapshot: the restored engine answers the
    // next batch exactly as the original would have, timers included.
    let mut w = busy_world();
    let bytes = w.snapshot();
    let mut restored = Engine::restore(&bytes).expect("restore");
    assert_eq!(restored.snapshot().unwrap(), bytes, "a snapshot of the restored engine differs");
    let batch = next_batch();
    for now in [4.0, 30.0, 200.0] {
        let original = w.batch(now, &batch);
        let copy = restored.process(now, &batch).unwrap();
        restored.check_invariants().unwrap();
        assert_eq!(original, copy);
    }
    assert_eq!(w.snapshot(), restored.snapshot().unwrap());
}

#[test]
fn damaged_snapshot_bytes_are_refused_without_panicking() {
    // A snapshot cut short, with a byte flipped, of another version or
    // plain garbage is refused with a snapshot error, never a crash.
    let bytes = busy_world().snapshot();
    let check = |damaged: &[u8], what: &str| {
        let outcome = std::panic::catch_unwind(|| Engine::restore(damaged).map(|_| ()))
            .unwrap_or_else(|_| panic!("restore panicked on {what}"));
        if let Err(e) = outcome {
            assert!(matches!(e, Error::Snapshot(_)), "restore of {what} failed with {e:?}, not a snapshot error");
        }
    };
    assert!(matches!(Engine::restore(&[]), Err(Error::Snapshot(_))));
    assert!(matches!(Engine::restore(b"not a snapshot"), Err(Error::Snapshot(_))));
    // MessagePack: an array of 16 fields (0xdc 0x00 0x10), the version first.
    let mut other_version = bytes.clone();
    assert_eq!(other_version[..4], [0xdc, 0x00, 0x10, 0x01], "the version is the first field");
    other_version[3] = 2;
    assert!(matches!(Engine::restore(&other_version), Err(Error::Snapshot(m)) if m.contains("version")));
    for len in 0..bytes.len() {
        check(&bytes[..len], &format!("the first {len} bytes"));
    }
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut damaged = bytes.clone();
            damaged[i] ^= flip;
            check(&damaged, &format!("byte {i} xor {flip:#x}"));
        }
        // A few random bytes in a row, from a fixed-seed generator.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut damaged = bytes.clone();
        for (j, b) in x.to_le_bytes().iter().enumerate() {
            if let Some(slot) = damaged.get_mut(i + j) {
                *slot = *b;
            }
        }
        check(&damaged, &format!("8 random bytes at {i}"));
    }
}

// ===================================================================
// Errors
// ===================================================================

#[test]
fn time_must_move_forward_and_be_a_number() {
    // Batches come from one clock: a batch dated before the last one, or
    // with a time that is not a number, is refused whole.
    let mut w = World::new(&config(vec![queue("support")], vec![member("ann", "support")]));
    w.wait(10.0);
    let before = w.snapshot();
    for bad in [5.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = w.engine.process(bad, &[add(task("t", "voice", "support"))]).unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { field, .. } if field == "now"), "{err:?}");
        assert!(w.engine.tick(bad).is_err());
    }
    assert_eq!(w.snapshot(), before);
    assert!(matches!(Engine::new(&config(vec![], vec![]), f64::NAN), Err(Error::InvalidInput { .. })));
    w.wait(10.0);
}

#[test]
fn unknown_and_duplicate_ids_are_refused() {
    // A task id already in use, a queue, channel, agent or offer that does
    // not exist: each is refused with its kind, and the message says what
    // was expected.
    let mut w = World::new(&config(vec![queue("support"), queue("sales")], vec![member("ann", "support")]));
    w.run(0.0, &[away("ann"), add(task("t", "voice", "support"))]);
    assert_eq!(w.refused(1.0, add(task("t", "chat", "support"))).0, "duplicate_id");
    let (kind, message) = w.refused(1.0, add(task("u", "voice", "nowhere")));
    assert_eq!(kind, "unknown_id");
    assert!(message.contains("nowhere") && message.contains("sales, support"), "{message}");
    let (kind, message) = w.refused(1.0, add(task("u", "fax", "support")));
    assert_eq!(kind, "unknown_id");
    assert!(message.contains("fax") && message.contains("voice"), "{message}");
    assert_eq!(w.refused(1.0, away("nobody")).0, "unknown_id");
    assert_eq!(w.refused(1.0, to_agent("t", "nobody")).0, "unknown_id");
    assert_eq!(w.refused(1.0, to_queue("t", "nowhere")).0, "unknown_id");
    assert_eq!(w.refused(1.0, complete("nothing")).0, "unknown_id");
    let (kind, message) = w.refused(
        1.0,
        add(NewTask {
            preferred_agents: vec!["nobody".into()],
            preferred_until: Some(9.0),
            ..task("u", "voice", "support")
        }),
    );
    assert_eq!(kind, "invalid_input");
    assert!(message.starts_with("task.preferred_agents[0]"), "{message}");
    assert!(matches!(w.engine.explain("nothing"), Err(Error::UnknownId { kind: "task", .. })));
    assert!(matches!(w.engine.agent_status("nobody"), Err(Error::UnknownId { kind: "agent", .. })));
}

fn config_error(cfg: &EngineConfig) -> String {
    match Engine::new(cfg, 0.0) {
        Err(Error::InvalidConfig { field, .. }) => field,
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("the configuration was accepted"),
    }
}

#[test]
fn a_bad_configuration_names_the_field_at_fault() {
    // Whoever wrote the config file learns which entry is wrong.
    let base = config(vec![queue("support"), queue("sales")], vec![member("ann", "support")]);
    let mut c = base.clone();
    c.channels[1].cost = 0;
    assert_eq!(config_error(&c), "channels[1].cost");
    let mut c = base.clone();
    c.channels[2].name = String::new();
    assert_eq!(config_error(&c), "channels[2].name");
    let mut c = base.clone();
    c.queues[1].steps = vec![
        step(30.0, StepAction::DropCondition { skill: "x".into() }),
        step(10.0, StepAction::DropCondition { skill: "x".into() }),
    ];
    assert_eq!(config_error(&c), "queues[1].steps[1].after_seconds");
    let mut c = base.clone();
    c.queues[0].steps = vec![step(30.0, StepAction::AddQueue { queue: "nowhere".into() })];
    assert_eq!(config_error(&c), "queues[0].steps[0].action.queue");
    let mut c = base.clone();
    c.queues[0].offer_timeout = 0.0;
    assert_eq!(config_error(&c), "queues[0].offer_timeout");
    let mut c = base.clone();
    c.queues[1].strategy = Strategy::Score { weights: BTreeMap::from([("charm".to_owned(), 1.0)]) };
    assert_eq!(config_error(&c), "queues[1].strategy.weights.charm");
    let mut c = base.clone();
    c.queues.push(queue("sales"));
    assert_eq!(config_error(&c), "queues[2].name");
    let mut c = base.clone();
    c.agents.push(agent("bob", &[("nowhere", 0)], &[]));
    assert_eq!(config_error(&c), "agents[1].queues.nowhere");
    let mut c = base.clone();
    c.agents.push(agent("bob", &[], &[("billing", 0)]));
    assert_eq!(config_error(&c), "agents[1].skills.billing");
    let mut c = base.clone();
    c.agents.push(member("ann", "sales"));
    assert_eq!(config_error(&c), "agents[1].id");
    let mut c = base;
    c.agents[0].id = String::new();
    assert_eq!(config_error(&c), "agents[0].id");
}

#[test]
#[allow(clippy::too_many_lines)] // one refused event per line: a list, not logic
fn a_refused_event_changes_nothing() {
    // In a busy contact center, each of these events is refused; the engine
    // after it is byte for byte the engine after an event refused for an
    // unknown offer (only the counters of refused events move).
    let w = busy_world();
    let bytes = w.snapshot();
    let deep = (0..20).fold(skill("x", 1), |c, _| not(c));
    let refused: Vec<Input> = vec![
        add(task("ring", "voice", "sales")),
        add(task("u", "voice", "nowhere")),
        add(task("u", "fax", "sales")),
        add(NewTask { requires: Some(deep), ..task("u", "voice", "sales") }),
        add(NewTask { enqueued_at: Some(100.0), ..task("u", "voice", "sales") }),
        add(NewTask { preferred_agents: vec!["ann".into()], ..task("u", "voice", "sales") }),
        add(NewTask { excluded_agents: vec!["ann".into(), "zed".into()], ..task("u", "voice", "sales") }),
        add(NewTask { id: String::new(), ..task("u", "voice", "sales") }),
        accept(999),
        reject(1_000_000),
        cancel("sms"),
        complete("wait"),
        complete("ring"),
        Input::EndWrapUp { agent: "cid".into() },
        to_agent("sms", "cid"),
        to_queue("sms", "nowhere"),
        away("zed"),
        set_state("ann", RequestedState::Away { reason: String::new() }),
        activity("wait"),
        Input::Pick { task: "wait".into(), agent: "cid".into() },
        Input::Pick { task: "sms".into(), agent: "ann".into() },
        Input::SetPriority { task: "zzz".into(), priority: 1 },
        Input::UpsertAgent { agent: omniroute_core::model::AgentConfig { capacity: 0, ..member("ann", "support") } },
        Input::UpsertAgent { agent: omniroute_core::model::AgentConfig { capacity: 10, ..member("cid", "sales") } },
        Input::UpsertAgent { agent: member("ann", "nowhere") },
        Input::RemoveAgent { agent: "cid".into() },
        Input::RemoveAgent { agent: "zed".into() },
        Input::UpsertQueue { queue: QueueConfig { offer_timeout: -1.0, ..queue("sales") } },
        Input::UpsertQueue { queue: QueueConfig { offer_timeout: f64::NAN, ..queue("brand-new") } },
        Input::UpsertQueue {
            queue: QueueConfig {
                steps: vec![step(1.0, StepAction::AddQueue { queue: "brand-new".into() })],
                ..queue("brand-new")
            },
        },
        Input::UpsertChannel { channel: ChannelConfig { cost: 30, ..sms() } },
        Input::UpsertChannel { channel: ChannelConfig { cost: 0, ..chat() } },
    ];
    let mut control = Engine::restore(&bytes).unwrap();
    let baseline = control.process(4.0, &[accept(123_456)]).unwrap();
    assert_eq!(baseline.errors.len(), 1);
    let expected = control.snapshot().unwrap();
    for input in refused {
        let mut engine = Engine::restore(&bytes).unwrap();
        let result = engine.process(4.0, std::slice::from_ref(&input)).unwrap();
        assert_eq!(result.errors.len(), 1, "{input:?} was accepted: {:#?}", result.events);
        assert!(result.events.is_empty(), "{input:?} was refused but produced {:#?}", result.events);
        engine.check_invariants().unwrap();
        assert!(engine.snapshot().unwrap() == expected, "refusing {input:?} changed the engine");
    }
}
