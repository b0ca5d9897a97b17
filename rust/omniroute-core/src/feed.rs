//! The engine's output events as metric events: what the routing engine
//! tells the metrics aggregation, so both report the same contact center.

use crate::metrics::{AgentActivity, Aggregator, MetricsError, NamedMetricEvent};
use crate::model::{AgentStatus, Output};

/// The metric events an engine output stands for (none for offers and the
/// other routing-only events).
///
/// A transfer to a queue is reported as `Transferred` out of the old queue,
/// and the `TaskQueued` that follows as an arrival in the new one. A
/// transfer to a named agent stays in its queue: it is reported as
/// `Transferred` and a fresh `Arrived` there, so the next answer is counted
/// once against a contact that is waiting again.
#[must_use]
pub fn metric_events(output: &Output) -> Vec<NamedMetricEvent> {
    match output {
        Output::TaskQueued { at, task, queue, channel, .. } => {
            vec![NamedMetricEvent::Arrived {
                at: *at,
                task: task.clone(),
                queue: queue.clone(),
                channel: channel.clone(),
            }]
        }
        Output::TaskAssigned { at, task, agent, queue, channel, wait } => vec![NamedMetricEvent::Answered {
            at: *at,
            task: task.clone(),
            queue: queue.clone(),
            channel: channel.clone(),
            agent: agent.clone(),
            wait: *wait,
        }],
        Output::TaskCancelled { at, task, queue, channel, wait } => vec![NamedMetricEvent::Abandoned {
            at: *at,
            task: task.clone(),
            queue: queue.clone(),
            channel: channel.clone(),
            wait: *wait,
        }],
        Output::TaskCompleted { at, task, agent, queue, channel } => vec![NamedMetricEvent::Completed {
            at: *at,
            task: task.clone(),
            queue: queue.clone(),
            channel: channel.clone(),
            agent: agent.clone(),
        }],
        Output::TaskTransferred { at, task, from_queue, channel, from_agent, to_queue, .. } => {
            let out = NamedMetricEvent::Transferred {
                at: *at,
                task: task.clone(),
                queue: from_queue.clone(),
                channel: channel.clone(),
                agent: from_agent.clone(),
            };
            if to_queue.is_some() {
                vec![out]
            } else {
                let again = NamedMetricEvent::Arrived {
                    at: *at,
                    task: task.clone(),
                    queue: from_queue.clone(),
                    channel: channel.clone(),
                };
                vec![out, again]
            }
        }
        Output::AgentStateChanged { at, agent, status } => {
            let state = match status {
                AgentStatus::Offline => AgentActivity::Offline,
                AgentStatus::Available => AgentActivity::Available,
                AgentStatus::Away { .. } => AgentActivity::Away,
                AgentStatus::NotResponding => AgentActivity::NotResponding,
                AgentStatus::WrapUp => AgentActivity::WrapUp,
            };
            vec![NamedMetricEvent::AgentState { at: *at, agent: agent.clone(), state }]
        }
        Output::AgentLoad { at, agent, used, capacity, tasks } => {
            vec![NamedMetricEvent::AgentLoad {
                at: *at,
                agent: agent.clone(),
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

/// Record a batch's engine outputs in the aggregator.
pub fn record_outputs(metrics: &mut Aggregator, outputs: &[Output]) -> Result<(), MetricsError> {
    for output in outputs {
        for event in metric_events(output) {
            metrics.record_named(&event)?;
        }
    }
    Ok(())
}
