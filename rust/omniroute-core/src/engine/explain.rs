//! Explanations: for a task, agent by agent, why it was or was not offered.

use super::requirement::Unmet;
use super::state::{AgentIx, Phase, TaskIx};
use super::{Engine, Misfit};
use crate::error::Result;
use crate::model::{AgentStatus, AgentVerdict, Explanation, Verdict};

impl Engine {
    /// Why the task is where it is: its requirement in force and, for every
    /// agent, whether it may take the task and if not, the first reason.
    pub fn explain(&self, task: &str) -> Result<Explanation> {
        let t = self.task_ix(task)?;
        let rec = self.task(t);
        let class = &self.ix.classes[self.ix.task_class[t as usize] as usize];
        let agents = self
            .agents
            .iter()
            .enumerate()
            .filter_map(|(a, agent)| {
                agent
                    .as_ref()
                    .map(|agent| AgentVerdict { agent: agent.id.to_string(), verdict: self.verdict(a as AgentIx, t) })
            })
            .collect();
        Ok(Explanation {
            task: rec.id.to_string(),
            queue: self.queue_name(rec.queue).to_string(),
            phase: match rec.phase {
                Phase::Waiting => "waiting",
                Phase::Offered { .. } => "offered",
                Phase::Assigned { .. } => "assigned",
            }
            .to_owned(),
            step: rec.step,
            requirement: class.text.to_string(),
            effective_priority: self.effective_priority(t),
            agents,
        })
    }

    /// One agent's verdict on one task, most fundamental reason first.
    pub(crate) fn verdict(&self, a: AgentIx, t: TaskIx) -> Verdict {
        let agent = self.agent(a);
        let task = self.task(t);
        match task.phase {
            Phase::Offered { agent: x, .. } | Phase::Assigned { agent: x } if x == a => return Verdict::Offered,
            _ => {}
        }
        let class = &self.ix.classes[self.ix.task_class[t as usize] as usize];
        let named = task.reservation.as_ref().is_some_and(|r| r.named && r.agents.contains(&a));
        if !named {
            if !class.serving.iter().any(|&q| agent.priority_for(q).is_some()) && task.reservation.is_none() {
                return Verdict::NotServingQueue;
            }
            let text = |c: &super::requirement::Cond| self.cond_text(c);
            match class.cond.unmet(&agent.levels, &text) {
                Some(Unmet::Skill { skill, required, has }) => {
                    return Verdict::MissingSkill { skill: self.skills[skill as usize].clone(), required, has }
                }
                Some(Unmet::Other(condition)) => return Verdict::ConditionNotMet { condition },
                None => {}
            }
        }
        if task.excludes(a) {
            return if task.declined.contains(&a) { Verdict::DeclinedBefore } else { Verdict::Excluded };
        }
        if let Some(r) = &task.reservation {
            if !r.agents.contains(&a) {
                return Verdict::ReservedForOthers { until: r.until };
            }
        }
        if agent.status != AgentStatus::Available {
            return Verdict::NotAvailable { status: agent.status.clone() };
        }
        match self.fits(agent, task.channel) {
            Err(Misfit::ChannelLimit(max)) => {
                Verdict::ChannelLimit { channel: self.channel_name(task.channel).to_string(), max }
            }
            Err(Misfit::Capacity { needed, free }) => Verdict::NoCapacity { needed, free },
            Ok(()) => {
                let strategy = &self.queues[task.queue as usize].config.strategy;
                let class_ix = self.ix.task_class[t as usize];
                Verdict::Eligible { score: self.score(strategy, a, t, class_ix).0 }
            }
        }
    }

    fn cond_text(&self, c: &super::requirement::Cond) -> String {
        use super::requirement::Cond;
        match c {
            Cond::True => "true".into(),
            Cond::False => "false".into(),
            Cond::Skill(s, l) => format!("{}>={l}", self.skills[*s as usize]),
            Cond::All(of) | Cond::Any(of) => {
                let sep = if matches!(c, Cond::All(_)) { " & " } else { " | " };
                format!("({})", of.iter().map(|x| self.cond_text(x)).collect::<Vec<_>>().join(sep))
            }
            Cond::Not(x) => format!("!{}", self.cond_text(x)),
        }
    }
}
