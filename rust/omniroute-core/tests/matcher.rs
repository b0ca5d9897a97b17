//! The indexed matcher against brute force: for every agent, in every state
//! a random day reaches, the task it would be offered next is the one a scan
//! of every waiting task picks.

use omniroute_core::model::{
    AgentConfig, ChannelConfig, Condition, EngineConfig, Input, NewTask, Output, QueueConfig, RequestedState, Step,
    StepAction,
};
use omniroute_core::Engine;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn channel(name: &str, cost: u32, interruptible: bool) -> ChannelConfig {
    ChannelConfig { name: name.into(), cost, max_per_agent: None, interruptible, inactive_after: None }
}

fn skill(name: &str, min_level: u8) -> Condition {
    Condition::Skill { skill: name.into(), min_level }
}

/// Four queues (one overflowing to another, one aging fast), three channels,
/// `agents` agents with random skills, queues and priorities.
fn centre(rng: &mut Pcg64Mcg, agents: usize) -> EngineConfig {
    let mut queues: Vec<QueueConfig> = (0..4).map(|q| QueueConfig::named(&format!("q{q}"))).collect();
    queues[0].steps = vec![
        Step { after_seconds: 5.0, action: StepAction::LowerLevel { skill: "s0".into(), min_level: 1 } },
        Step { after_seconds: 9.0, action: StepAction::AddQueue { queue: "q1".into() } },
    ];
    queues[1].aging_per_second = 2.0;
    queues[2].steps = vec![Step { after_seconds: 4.0, action: StepAction::DropCondition { skill: "lang".into() } }];
    queues[3].aging_per_second = 0.5;
    let agents = (0..agents)
        .map(|a| {
            let mut c = AgentConfig::named(&format!("a{a}"));
            for q in 0..4 {
                if rng.gen_bool(0.5) {
                    c.queues.insert(format!("q{q}"), rng.gen_range(0..3));
                }
            }
            for s in ["s0", "s1", "lang"] {
                if rng.gen_bool(0.7) {
                    c.skills.insert(s.into(), rng.gen_range(1..=4));
                }
            }
            c.available = rng.gen_bool(0.8);
            c
        })
        .collect();
    EngineConfig {
        seed: 1,
        max_missed_offers: 0,
        channels: vec![channel("voice", 60, false), channel("chat", 20, false), channel("email", 12, true)],
        queues,
        agents,
    }
}

fn random_task(rng: &mut Pcg64Mcg, id: usize, agents: usize) -> NewTask {
    let mut of = vec![skill("s0", rng.gen_range(1..=4))];
    if rng.gen_bool(0.5) {
        of.push(skill("lang", rng.gen_range(1..=3)));
    }
    if rng.gen_bool(0.2) {
        of.push(Condition::Not { condition: Box::new(skill("s1", 3)) });
    }
    let sticky = rng.gen_bool(0.1);
    NewTask {
        id: format!("t{id}"),
        channel: ["voice", "chat", "email"][rng.gen_range(0..3)].into(),
        queue: format!("q{}", rng.gen_range(0..4)),
        priority: rng.gen_range(-1..=2),
        requires: Some(Condition::All { of }),
        preferred_agents: if sticky { vec![format!("a{}", rng.gen_range(0..agents))] } else { vec![] },
        preferred_until: if sticky { Some(1e9) } else { None },
        excluded_agents: vec![],
        attributes: std::collections::BTreeMap::default(),
        enqueued_at: None,
    }
}

proptest! {
    // PROPTEST_CASES=n runs a deeper search than CI's default.
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48), ..ProptestConfig::default() })]

    #[test]
    fn indexed_choice_equals_the_scan(seed in any::<u64>()) {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let agents = rng.gen_range(2..10);
        let mut engine = Engine::new(&centre(&mut rng, agents), 0.0).expect("valid centre");
        let mut now = 0.0;
        let mut next = 0;
        let mut offers: Vec<u64> = Vec::new();
        let mut assigned: Vec<String> = Vec::new();
        for _ in 0..40 {
            now += f64::from(rng.gen_range(0..4u8));
            let mut batch = Vec::new();
            for _ in 0..rng.gen_range(1..5) {
                batch.push(match rng.gen_range(0..10) {
                    0..=3 => { next += 1; Input::AddTask { task: random_task(&mut rng, next, agents) } }
                    4 | 5 if !offers.is_empty() => {
                        let offer = offers.swap_remove(rng.gen_range(0..offers.len()));
                        if rng.gen_bool(0.8) { Input::Accept { offer } } else { Input::Reject { offer } }
                    }
                    6 | 7 if !assigned.is_empty() => {
                        Input::Complete { task: assigned.swap_remove(rng.gen_range(0..assigned.len())) }
                    }
                    _ => Input::SetAgentState {
                        agent: format!("a{}", rng.gen_range(0..agents)),
                        state: if rng.gen_bool(0.6) { RequestedState::Available {} } else { RequestedState::Offline {} },
                    },
                });
            }
            let result = engine.process(now, &batch).expect("batch");
            for e in &result.events {
                match e {
                    Output::OfferMade { offer, .. } => offers.push(*offer),
                    Output::TaskAssigned { task, .. } => assigned.push(task.to_string()),
                    Output::OfferRescinded { offer, .. } | Output::OfferTimedOut { offer, .. } => offers.retain(|o| o != offer),
                    _ => {}
                }
            }
            engine.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
            for a in 0..agents {
                let id = format!("a{a}");
                let indexed = engine.next_task_for(&id).expect("agent");
                let scanned = engine.best_task_by_scan(&id).expect("agent");
                prop_assert_eq!(indexed, scanned, "agent {} at {}", id, now);
            }
        }
    }
}
