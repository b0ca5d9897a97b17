//! The engine's primary records: agents, tasks, queues, channels and timers.
//! Everything here goes into a snapshot; indices built from it do not.

use crate::model::{AgentStatus, AttributeValue, ChannelConfig, Name, QueueConfig};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub(crate) type AgentIx = u32;
pub(crate) type TaskIx = u32;
pub(crate) type QueueIx = u32;
pub(crate) type ChannelIx = u32;

/// An f64 with a total order, for keys.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Time(pub f64);

impl Eq for Time {}
impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AgentRec {
    pub id: Name,
    pub capacity: u32,
    /// Proficiency by skill index; missing or 0 means the skill is absent.
    pub levels: Vec<u8>,
    /// Queues served with the agent's priority for each, highest first.
    pub queues: Vec<(QueueIx, i32)>,
    pub status: AgentStatus,
    /// Bumped on every wrap-up start, so a stale wrap-up timer is ignored.
    pub wrap_gen: u32,
    /// Capacity in use by non-interruptible and interruptible work
    /// (offered and assigned, less inactive work).
    pub load_firm: u32,
    pub load_interruptible: u32,
    /// Active tasks per channel index.
    pub per_channel: Vec<u32>,
    /// Tasks offered to or assigned to the agent, in the order received.
    pub tasks: Vec<TaskIx>,
    pub missed: u32,
    pub idle_since: f64,
    pub channel_idle_since: Vec<f64>,
    pub handled: u64,
}

impl AgentRec {
    /// Capacity in use, counting interruptible work only while it is not
    /// interrupted by firm work.
    pub fn used(&self) -> u32 {
        let all = self.load_firm + self.load_interruptible;
        if all <= self.capacity {
            all
        } else {
            self.load_firm
        }
    }

    pub fn channel_count(&self, c: ChannelIx) -> u32 {
        self.per_channel.get(c as usize).copied().unwrap_or(0)
    }

    pub fn channel_idle(&self, c: ChannelIx) -> f64 {
        self.channel_idle_since.get(c as usize).copied().filter(|t| !t.is_nan()).unwrap_or(self.idle_since)
    }

    pub fn priority_for(&self, q: QueueIx) -> Option<i32> {
        self.queues.iter().find(|(x, _)| *x == q).map(|(_, p)| *p)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Phase {
    Waiting,
    Offered { offer: u64, agent: AgentIx, expires_at: f64 },
    Assigned { agent: AgentIx },
}

/// A reservation: only these agents may take the task until `until`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reservation {
    pub agents: Vec<AgentIx>,
    pub until: f64,
    /// A named transfer ignores skills and queue membership.
    pub named: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TaskRec {
    pub id: Name,
    pub channel: ChannelIx,
    pub queue: QueueIx,
    pub priority: i32,
    /// Index of the base requirement in the engine's condition table
    /// (0: none).
    pub requires: u32,
    pub reservation: Option<Reservation>,
    /// Agents never to be offered this task, sorted.
    pub excluded: Vec<AgentIx>,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// The original arrival: keeps the task's place through rejections and
    /// transfers.
    pub arrived_at: f64,
    /// When the task entered its current queue: relaxation counts from here.
    pub queued_at: f64,
    pub step: u32,
    pub phase: Phase,
    /// Arrival order, the last tie-breaker.
    pub seq: u64,
    pub inactive: bool,
    pub reactivation_pending: bool,
    pub last_activity: f64,
    /// Bumped on customer activity, so a stale inactivity timer is ignored.
    pub activity_gen: u32,
    /// Agents whose offer for this task was rejected or timed out.
    pub declined: Vec<AgentIx>,
}

impl TaskRec {
    pub fn excludes(&self, a: AgentIx) -> bool {
        self.excluded.binary_search(&a).is_ok()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct QueueRec {
    pub config: QueueConfig,
    /// The agent last chosen by round robin.
    pub rr_last: Option<AgentIx>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChannelRec {
    pub config: ChannelConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum TimerKind {
    // Task timers carry the task's `seq`: a slot reused by a later task
    // never inherits an earlier task's timer.
    Step { task: TaskIx, seq: u64 },
    OfferTimeout { task: TaskIx, offer: u64 },
    ReservationEnd { task: TaskIx, seq: u64 },
    WrapUpEnd { agent: AgentIx, gen: u32 },
    Inactivity { task: TaskIx, seq: u64, gen: u32 },
}

impl TimerKind {
    /// 0 for a reservation's end, 1 for the rest: a reservation that ends at
    /// `t` is over for every decision made at `t`, whichever timer of `t`
    /// triggers it.
    fn rank(self) -> u8 {
        u8::from(!matches!(self, TimerKind::ReservationEnd { .. }))
    }
}

/// A timer, ordered by time, then the rank of its kind, then creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timer {
    pub at: Time,
    pub seq: u64,
    pub kind: TimerKind,
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        let key = |t: &Self| (t.at, t.kind.rank(), t.seq, t.kind);
        key(self).cmp(&key(other))
    }
}
