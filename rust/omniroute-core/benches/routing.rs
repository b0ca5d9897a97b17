//! Routing decisions per second in the core, single thread, against a
//! linear-scan matcher on the same backlog, and how the cost grows with size.
#![allow(clippy::print_stderr)]

mod workload;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use omniroute_core::model::{Input, Output};
use omniroute_core::Engine;
use std::time::{Duration, Instant};
use workload::{offers, Workload};

/// One steady-state step: an agent completes a task, takes the next one
/// (a routing decision), accepts it, and a new task arrives.
struct Steady {
    engine: Engine,
    now: f64,
    in_progress: std::collections::VecDeque<String>,
    workload: Workload,
}

impl Steady {
    fn new(agents: usize, queues: usize, backlog: usize) -> Steady {
        let mut workload = Workload::new(agents, queues);
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
                self.in_progress.push_back(task);
            }
        }
        made.len()
    }
}

fn decisions(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    let mut steady = Steady::new(10_000, 50, 100_000);
    // Decision latency, one step at a time: p50 / p99.
    let mut lat = Vec::with_capacity(50_000);
    let mut made = 0;
    for _ in 0..50_000 {
        let t = Instant::now();
        made += steady.step();
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    eprintln!(
        "routing step (complete + decide + accept + arrival) at 10k agents / 100k waiting: p50 {:?}, p99 {:?}, {made} decisions in 50000 steps",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("step/10k_agents/100k_waiting", |b| b.iter(|| steady.step()));

    // The same decision by scanning every waiting task: the baseline.
    group.bench_function("linear_scan_baseline/10k_agents/100k_waiting", |b| {
        b.iter_batched(|| (), |()| steady.engine.best_task_by_scan("a17").expect("agent exists"), BatchSize::SmallInput);
    });

    for agents in [1_000, 10_000, 100_000] {
        let mut s = Steady::new(agents, 50, agents * 10);
        group.bench_function(format!("scaling/{agents}_agents/{}_waiting", agents * 10), |b| b.iter(|| s.step()));
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
