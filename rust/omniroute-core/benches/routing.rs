//! Routing in the core, single thread.
//!
//! - `decide`: one routing decision, the task an agent takes next, found by
//!   the indexed matcher among 100,000 waiting tasks; the baseline is the same
//!   decision by scanning every waiting task (`best_task_by_scan`).
//! - `cycle`: the whole steady state around a decision: an agent completes a
//!   task, is offered the next, accepts it, and a new task arrives.
//! - `scaling`: `decide` and `cycle` at 1,000, 10,000 and 100,000 agents.
#![allow(clippy::print_stderr)]

mod workload;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use omniroute_core::model::{Input, Output};
use omniroute_core::Engine;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use workload::{offers, Workload};

/// The steady state: complete, decide, accept, and one arrival per step.
struct Steady {
    engine: Engine,
    now: f64,
    in_progress: VecDeque<String>,
    workload: Workload,
}

impl Steady {
    fn new(agents: usize, backlog: usize) -> Steady {
        let mut workload = Workload::new(agents, 50);
        let (engine, now, assigned) = workload.busy_engine(backlog);
        Steady { engine, now, in_progress: assigned.into(), workload }
    }

    /// Run one step; returns the number of decisions (offers) it made.
    fn step(&mut self) -> usize {
        self.now += 0.001;
        let done = self.in_progress.pop_front().expect("work in progress");
        let arrival = Input::AddTask { task: self.workload.task() };
        let result = self.engine.process(self.now, &[Input::Complete { task: done }, arrival]).expect("step");
        let made = offers(&result.events);
        let accepts: Vec<Input> = made.iter().map(|(offer, _)| Input::Accept { offer: *offer }).collect();
        let result = self.engine.process(self.now, &accepts).expect("accept");
        for e in result.events {
            if let Output::TaskAssigned { task, .. } = e {
                self.in_progress.push_back(task.to_string());
            }
        }
        made.len()
    }
}

/// Agents to ask, round robin.
struct Decide {
    engine: Engine,
    agents: Vec<String>,
    next: usize,
}

impl Decide {
    fn new(agents: usize, backlog: usize) -> Decide {
        let mut workload = Workload::new(agents, 50);
        let engine = workload.waiting_engine(backlog);
        Decide { engine, agents: (0..agents).map(|a| format!("a{a}")).collect(), next: 0 }
    }

    fn agent(&mut self) -> &str {
        self.next = (self.next + 1) % self.agents.len();
        &self.agents[self.next]
    }

    fn decide(&mut self) -> Option<String> {
        let a = self.next;
        self.next = (self.next + 1) % self.agents.len();
        self.engine.next_task_for(&self.agents[a]).expect("agent")
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));

    let mut decide = Decide::new(10_000, 100_000);
    let mut lat = Vec::with_capacity(100_000);
    let mut found = 0;
    for _ in 0..100_000 {
        let t = Instant::now();
        found += usize::from(decide.decide().is_some());
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    eprintln!(
        "decide at 10k agents / 100k waiting: p50 {:?}, p99 {:?}, max {:?}; {found} of 100000 agents had a task",
        percentile(&lat, 50),
        percentile(&lat, 99),
        lat[lat.len() - 1]
    );
    group.bench_function("decide/10k_agents/100k_waiting", |b| b.iter(|| decide.decide()));
    group.bench_function("decide_by_scan_baseline/10k_agents/100k_waiting", |b| {
        b.iter(|| {
            let agent = decide.agent().to_owned();
            decide.engine.best_task_by_scan(&agent).expect("agent")
        });
    });

    let mut steady = Steady::new(10_000, 100_000);
    let mut lat = Vec::with_capacity(50_000);
    let mut made = 0;
    for _ in 0..50_000 {
        let t = Instant::now();
        made += steady.step();
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    eprintln!(
        "cycle (complete + decide + offer + accept + arrival) at 10k agents / 100k waiting: p50 {:?}, p99 {:?}; {made} decisions in 50000 steps",
        percentile(&lat, 50),
        percentile(&lat, 99)
    );
    group.bench_function("cycle/10k_agents/100k_waiting", |b| b.iter(|| steady.step()));

    for agents in [1_000, 10_000, 100_000] {
        let mut d = Decide::new(agents, agents * 10);
        group.bench_function(format!("scaling_decide/{agents}_agents/{}_waiting", agents * 10), |b| {
            b.iter(|| d.decide());
        });
        drop(d);
        let mut s = Steady::new(agents, agents * 10);
        group.bench_function(format!("scaling_cycle/{agents}_agents/{}_waiting", agents * 10), |b| b.iter(|| s.step()));
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
