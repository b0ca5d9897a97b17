//! A synthetic contact centre for the routing benchmarks: agents, skills,
//! queues and a backlog of mixed-channel work, drawn from a fixed seed.

use omniroute_core::model::{AgentConfig, ChannelConfig, Condition, EngineConfig, Input, NewTask, QueueConfig};
use omniroute_core::Engine;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::collections::BTreeMap;

pub const SKILLS: usize = 200;
pub const LANGUAGES: [&str; 3] = ["en", "es", "fr"];
pub const CHANNELS: [(&str, u32, bool); 4] =
    [("voice", 60, false), ("chat", 20, false), ("email", 12, true), ("sms", 20, false)];

pub struct Workload {
    pub config: EngineConfig,
    pub queues: usize,
    rng: Pcg64Mcg,
    next_task: u64,
}

fn skill(name: String, min_level: u8) -> Condition {
    Condition::Skill { skill: name, min_level }
}

impl Workload {
    /// `agents` agents over `queues` queues; every agent serves three queues
    /// with its own priorities and knows its queues' product skills, one to
    /// three languages and a few of the other skills.
    pub fn new(agents: usize, queues: usize) -> Workload {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let channels = CHANNELS
            .iter()
            .map(|&(name, cost, interruptible)| ChannelConfig {
                name: name.to_owned(),
                cost,
                max_per_agent: if name == "chat" { Some(3) } else { None },
                interruptible,
                inactive_after: None,
            })
            .collect();
        let queue_configs = (0..queues)
            .map(|q| {
                let mut c = QueueConfig::named(&format!("q{q}"));
                c.aging_per_second = 0.01;
                c
            })
            .collect();
        let agent_configs = (0..agents)
            .map(|a| {
                let mut c = AgentConfig::named(&format!("a{a}"));
                c.available = false;
                for k in 0..3 {
                    let q = rng.gen_range(0..queues);
                    c.queues.insert(format!("q{q}"), 3 - k);
                    c.skills.insert(format!("product{q}"), rng.gen_range(1..=3));
                }
                c.skills.insert("en".to_owned(), rng.gen_range(1..=5));
                for lang in &LANGUAGES[1..] {
                    if rng.gen_bool(0.3) {
                        c.skills.insert((*lang).to_owned(), rng.gen_range(1..=5));
                    }
                }
                let other = SKILLS - queues - LANGUAGES.len();
                for _ in 0..4 {
                    c.skills.insert(format!("skill{}", rng.gen_range(0..other)), rng.gen_range(1..=5));
                }
                c
            })
            .collect();
        let config =
            EngineConfig { seed: 1, max_missed_offers: 3, channels, queues: queue_configs, agents: agent_configs };
        Workload { config, queues, rng, next_task: 0 }
    }

    /// A new task: a queue, a channel, the queue's product skill at level 1
    /// or 2, and a language.
    pub fn task(&mut self) -> NewTask {
        let rng = &mut self.rng;
        let q = rng.gen_range(0..self.queues);
        let channel = CHANNELS[[0, 0, 1, 1, 1, 2, 3][rng.gen_range(0..7)]].0;
        let lang = if rng.gen_bool(0.8) { "en" } else { LANGUAGES[rng.gen_range(1..3)] };
        let requires =
            Condition::All { of: vec![skill(format!("product{q}"), rng.gen_range(1..=2)), skill(lang.to_owned(), 1)] };
        self.next_task += 1;
        NewTask {
            id: format!("t{}", self.next_task),
            channel: channel.to_owned(),
            queue: format!("q{q}"),
            priority: rng.gen_range(0..3),
            requires: Some(requires),
            preferred_agents: Vec::new(),
            preferred_until: None,
            excluded_agents: Vec::new(),
            attributes: BTreeMap::new(),
            enqueued_at: None,
        }
    }

    /// An engine with `backlog` tasks waiting and every agent logged out, so
    /// nothing is offered and each agent's next task can be asked for again
    /// and again on the same state.
    pub fn waiting_engine(&mut self, backlog: usize) -> Engine {
        let mut engine = Engine::new(&self.config, 0.0).expect("valid workload configuration");
        let tasks: Vec<Input> = (0..backlog).map(|_| Input::AddTask { task: self.task() }).collect();
        engine.process(1.0, &tasks).expect("tasks arrive");
        engine.process(30.0, &[]).expect("time passes");
        engine
    }

    /// An engine with `backlog` tasks waiting and every agent available and
    /// working at capacity (all its offers accepted). Returns the engine,
    /// the time, and the tasks in progress.
    pub fn busy_engine(&mut self, backlog: usize) -> (Engine, f64, Vec<String>) {
        let mut engine = Engine::new(&self.config, 0.0).expect("valid workload configuration");
        let tasks: Vec<Input> = (0..backlog).map(|_| Input::AddTask { task: self.task() }).collect();
        engine.process(1.0, &tasks).expect("tasks arrive");
        let agents: Vec<Input> = (0..self.config.agents.len())
            .map(|a| Input::SetAgentState {
                agent: format!("a{a}"),
                state: omniroute_core::model::RequestedState::Available {},
            })
            .collect();
        let result = engine.process(2.0, &agents).expect("agents log in");
        let accepts: Vec<Input> =
            offers(&result.events).into_iter().map(|(offer, _)| Input::Accept { offer }).collect();
        let result = engine.process(3.0, &accepts).expect("offers accepted");
        let assigned = result
            .events
            .iter()
            .filter_map(|e| match e {
                omniroute_core::model::Output::TaskAssigned { task, .. } => Some(task.to_string()),
                _ => None,
            })
            .collect();
        (engine, 3.0, assigned)
    }
}

/// The offers in a batch's events: (offer id, task id).
pub fn offers(events: &[omniroute_core::model::Output]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            omniroute_core::model::Output::OfferMade { offer, task, .. } => Some((*offer, task.to_string())),
            _ => None,
        })
        .collect()
}
