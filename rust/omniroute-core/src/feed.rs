//! The engine's output events as metric events: what the routing engine
//! tells the metrics aggregation, so both report the same contact center.

use crate::metrics::{task_id, AgentActivity, Aggregator, DimensionKind, MetricEvent, MetricsError};
use crate::model::{AgentStatus, Output};

/// Record a batch's engine outputs in the aggregator.
pub fn record_outputs(metrics: &mut Aggregator, outputs: &[Output]) -> Result<(), MetricsError> {
    for output in outputs {
        record_output(metrics, output)?;
    }
    Ok(())
}

/// Record one engine output in the aggregator: the metric events it stands
/// for (none for offers and the other routing-only events), built straight
/// from the output's fields with the aggregator's keys, so no named copy is
/// made (this runs for every event of every batch, and of every simulation).
///
/// A transfer to a queue is reported as `Transferred` out of the old queue,
/// and the `TaskQueued` that follows as an arrival in the new one. A
/// transfer to a named agent stays in its queue: it is reported as
/// `Transferred` and a fresh `Arrived` there, so the next answer is counted
/// once against a contact that is waiting again.
pub fn record_output(metrics: &mut Aggregator, output: &Output) -> Result<(), MetricsError> {
    use DimensionKind::{Agent, Channel, Queue};
    match output {
        Output::TaskQueued { at, task, queue, channel, .. } => metrics.record_shared(|key| MetricEvent::Arrived {
            at: *at,
            task: task_id(task),
            queue: key(Queue, queue),
            channel: key(Channel, channel),
        }),
        Output::TaskAssigned { at, task, agent, queue, channel, wait } => {
            metrics.record_shared(|key| MetricEvent::Answered {
                at: *at,
                task: task_id(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
                wait: *wait,
            })
        }
        Output::TaskCancelled { at, task, queue, channel, wait } => {
            metrics.record_shared(|key| MetricEvent::Abandoned {
                at: *at,
                task: task_id(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                wait: *wait,
            })
        }
        Output::TaskCompleted { at, task, agent, queue, channel } => {
            metrics.record_shared(|key| MetricEvent::Completed {
                at: *at,
                task: task_id(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
            })
        }
        Output::TaskTransferred { at, task, from_queue, channel, from_agent, to_queue, .. } => {
            metrics.record_shared(|key| MetricEvent::Transferred {
                at: *at,
                task: task_id(task),
                queue: key(Queue, from_queue),
                channel: key(Channel, channel),
                agent: from_agent.as_ref().map(|agent| key(Agent, agent)),
            })?;
            if to_queue.is_some() {
                return Ok(());
            }
            metrics.record_shared(|key| MetricEvent::Arrived {
                at: *at,
                task: task_id(task),
                queue: key(Queue, from_queue),
                channel: key(Channel, channel),
            })
        }
        Output::AgentStateChanged { at, agent, status } => {
            let state = activity(status);
            metrics.record_shared(|key| MetricEvent::AgentState { at: *at, agent: key(Agent, agent), state })
        }
        Output::AgentLoad { at, agent, used, capacity, tasks } => metrics.record_shared(|key| MetricEvent::AgentLoad {
            at: *at,
            agent: key(Agent, agent),
            used: *used,
            capacity: *capacity,
            tasks: *tasks,
        }),
        Output::OfferMade { .. }
        | Output::OfferRescinded { .. }
        | Output::OfferRejected { .. }
        | Output::OfferTimedOut { .. }
        | Output::StepReached { .. }
        | Output::ReservationExpired { .. }
        | Output::TaskInactive { .. }
        | Output::TaskReactivated { .. }
        | Output::PickRequested { .. } => Ok(()),
    }
}

fn activity(status: &AgentStatus) -> AgentActivity {
    match status {
        AgentStatus::Offline => AgentActivity::Offline,
        AgentStatus::Available => AgentActivity::Available,
        AgentStatus::Away { .. } => AgentActivity::Away,
        AgentStatus::NotResponding => AgentActivity::NotResponding,
        AgentStatus::WrapUp => AgentActivity::WrapUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricsConfig, NamedMetricEvent, SnapshotScope};
    use crate::model::{AgentConfig, ChannelConfig, EngineConfig, Input, NewTask, QueueConfig};
    use crate::Engine;

    /// The same mapping written out again with names, on purpose: an
    /// independent statement of what [`record_output`] must record.
    fn metric_events(output: &Output) -> Vec<NamedMetricEvent> {
        match output {
            Output::TaskQueued { at, task, queue, channel, .. } => {
                vec![NamedMetricEvent::Arrived {
                    at: *at,
                    task: task.to_string(),
                    queue: queue.to_string(),
                    channel: channel.to_string(),
                }]
            }
            Output::TaskAssigned { at, task, agent, queue, channel, wait } => vec![NamedMetricEvent::Answered {
                at: *at,
                task: task.to_string(),
                queue: queue.to_string(),
                channel: channel.to_string(),
                agent: agent.to_string(),
                wait: *wait,
            }],
            Output::TaskCancelled { at, task, queue, channel, wait } => vec![NamedMetricEvent::Abandoned {
                at: *at,
                task: task.to_string(),
                queue: queue.to_string(),
                channel: channel.to_string(),
                wait: *wait,
            }],
            Output::TaskCompleted { at, task, agent, queue, channel } => vec![NamedMetricEvent::Completed {
                at: *at,
                task: task.to_string(),
                queue: queue.to_string(),
                channel: channel.to_string(),
                agent: agent.to_string(),
            }],
            Output::TaskTransferred { at, task, from_queue, channel, from_agent, to_queue, .. } => {
                let out = NamedMetricEvent::Transferred {
                    at: *at,
                    task: task.to_string(),
                    queue: from_queue.to_string(),
                    channel: channel.to_string(),
                    agent: from_agent.as_deref().map(str::to_owned),
                };
                if to_queue.is_some() {
                    vec![out]
                } else {
                    let again = NamedMetricEvent::Arrived {
                        at: *at,
                        task: task.to_string(),
                        queue: from_queue.to_string(),
                        channel: channel.to_string(),
                    };
                    vec![out, again]
                }
            }
            Output::AgentStateChanged { at, agent, status } => {
                vec![NamedMetricEvent::AgentState { at: *at, agent: agent.to_string(), state: activity(status) }]
            }
            Output::AgentLoad { at, agent, used, capacity, tasks } => {
                vec![NamedMetricEvent::AgentLoad {
                    at: *at,
                    agent: agent.to_string(),
                    used: *used,
                    capacity: *capacity,
                    tasks: *tasks,
                }]
            }
            Output::OfferMade { .. }
            | Output::OfferRescinded { .. }
            | Output::OfferRejected { .. }
            | Output::OfferTimedOut { .. }
            | Output::StepReached { .. }
            | Output::ReservationExpired { .. }
            | Output::TaskInactive { .. }
            | Output::TaskReactivated { .. }
            | Output::PickRequested { .. } => Vec::new(),
        }
    }

    /// The keyed path and the named events it stands for report the same figures.
    #[test]
    fn keyed_and_named_feeds_agree() {
        let agents = ["ann", "bob"].map(|id| {
            let mut agent = AgentConfig::named(id);
            agent.queues.insert("billing".into(), 1);
            agent
        });
        let mut sales = QueueConfig::named("sales");
        sales.wrap_up = Some(5.0);
        let config = EngineConfig {
            seed: 1,
            max_missed_offers: 3,
            channels: vec![ChannelConfig {
                name: "voice".into(),
                cost: 60,
                max_per_agent: None,
                interruptible: false,
                inactive_after: None,
            }],
            queues: vec![QueueConfig::named("billing"), sales],
            agents: agents.to_vec(),
        };
        let mut engine = Engine::new(&config, 0.0).unwrap();
        let mut outputs = engine.roster();
        let task = |id: &str| NewTask {
            id: id.into(),
            channel: "voice".into(),
            queue: "billing".into(),
            priority: 0,
            requires: None,
            preferred_agents: vec![],
            preferred_until: None,
            excluded_agents: vec![],
            attributes: std::collections::BTreeMap::new(),
            enqueued_at: None,
        };
        let mut step = |now: f64, input: Input| {
            outputs.extend(engine.apply_one(now, &input).unwrap());
            outputs.clone()
        };
        let offer_of = |outputs: &[Output], id: &str| {
            outputs
                .iter()
                .rev()
                .find_map(|o| match o {
                    Output::OfferMade { offer, task, agent, .. } if **task == *id => Some((*offer, agent.to_string())),
                    _ => None,
                })
                .unwrap()
        };
        let out = step(1.0, Input::AddTask { task: task("t1") });
        let (offer, first) = offer_of(&out, "t1");
        step(2.0, Input::Accept { offer });
        let other = if first == "ann" { "bob" } else { "ann" };
        let out = step(4.0, Input::Transfer { task: "t1".into(), to_queue: None, to_agent: Some(other.into()) });
        let (offer, _) = offer_of(&out, "t1");
        step(5.0, Input::Accept { offer });
        step(6.0, Input::AddTask { task: task("t2") });
        step(7.0, Input::AddTask { task: task("t3") });
        step(9.0, Input::Cancel { task: "t3".into() });
        step(12.0, Input::Transfer { task: "t1".into(), to_queue: Some("sales".into()), to_agent: None });
        let out = step(13.0, Input::Cancel { task: "t1".into() });
        let (offer, _) = offer_of(&out, "t2");
        let outputs = step(14.0, Input::Accept { offer });
        let out2 = engine.apply_one(15.0, &Input::Complete { task: "t2".into() }).unwrap();
        let outputs = [outputs, out2].concat();
        assert!(outputs.iter().any(|o| matches!(o, Output::TaskTransferred { to_agent: Some(_), .. })));
        assert!(outputs.iter().any(|o| matches!(o, Output::TaskTransferred { to_queue: Some(_), .. })));
        assert!(outputs.iter().any(|o| matches!(o, Output::TaskCancelled { .. })));
        assert!(outputs.iter().any(|o| matches!(o, Output::TaskCompleted { .. })));

        let mut keyed = Aggregator::new(MetricsConfig::default()).unwrap();
        record_outputs(&mut keyed, &outputs).unwrap();
        let mut named = Aggregator::new(MetricsConfig::default()).unwrap();
        for output in &outputs {
            named.record_named_batch(&metric_events(output)).unwrap();
        }
        assert_eq!(
            keyed.snapshot_scoped(20.0, SnapshotScope::ALL).unwrap(),
            named.snapshot_scoped(20.0, SnapshotScope::ALL).unwrap()
        );
    }

    /// A refused output interns none of its names.
    #[test]
    fn a_refused_output_leaves_no_name_behind() {
        let mut metrics = Aggregator::new(MetricsConfig::default()).unwrap();
        let late = Output::AgentLoad { at: 5.0, agent: "ann".into(), used: 0, capacity: 60, tasks: 0 };
        record_output(&mut metrics, &late).unwrap();
        let early = Output::TaskQueued {
            at: 1.0,
            task: "t1".into(),
            queue: "q".into(),
            channel: "c".into(),
            priority: 0,
            arrived_at: 1.0,
        };
        assert!(record_output(&mut metrics, &early).is_err());
        let snapshot = metrics.snapshot_scoped(6.0, SnapshotScope::ALL).unwrap();
        assert!(snapshot.queues.is_empty() && snapshot.channels.is_empty());
    }
}
