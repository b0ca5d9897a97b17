//! Requirements compiled against interned skills, and relaxation applied to them.

use crate::model::{Condition, StepAction};
use serde::{Deserialize, Serialize};

/// A condition with skills replaced by their dense index, folded so that
/// `True`/`False` only appear at the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Cond {
    True,
    False,
    Skill(u32, u8),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// The first reason a condition does not hold for an agent.
pub(crate) enum Unmet {
    Skill { skill: u32, required: u8, has: u8 },
    Other(String),
}

impl Cond {
    /// Whether agents with these skill levels meet the condition. Most
    /// requirements are none at all: that case is answered inline, without
    /// a call into the recursive walk (this runs once per agent scanned).
    #[inline]
    pub(crate) fn holds(&self, levels: &[u8]) -> bool {
        matches!(self, Cond::True) || self.holds_tree(levels)
    }

    fn holds_tree(&self, levels: &[u8]) -> bool {
        match self {
            Cond::True => true,
            Cond::False => false,
            Cond::Skill(s, l) => levels.get(*s as usize).copied().unwrap_or(0) >= *l,
            Cond::All(of) => of.iter().all(|c| c.holds_tree(levels)),
            Cond::Any(of) => of.iter().any(|c| c.holds_tree(levels)),
            Cond::Not(c) => !c.holds_tree(levels),
        }
    }

    /// Why the condition fails for these levels, or `None` when it holds.
    pub(crate) fn unmet(&self, levels: &[u8], text: &dyn Fn(&Cond) -> String) -> Option<Unmet> {
        if self.holds(levels) {
            return None;
        }
        match self {
            Cond::Skill(s, l) => {
                Some(Unmet::Skill { skill: *s, required: *l, has: levels.get(*s as usize).copied().unwrap_or(0) })
            }
            Cond::All(of) => of.iter().find_map(|c| c.unmet(levels, text)),
            _ => Some(Unmet::Other(text(self))),
        }
    }

    /// Sum of the agent's levels in the skills the condition asks for
    /// (outside negations): the proficiency used by `most_skilled`.
    pub(crate) fn proficiency(&self, levels: &[u8]) -> f64 {
        match self {
            Cond::Skill(s, _) => f64::from(levels.get(*s as usize).copied().unwrap_or(0)),
            Cond::All(of) | Cond::Any(of) => of.iter().map(|c| c.proficiency(levels)).sum(),
            Cond::True | Cond::False | Cond::Not(_) => 0.0,
        }
    }

    /// Compile a condition; `intern` maps a skill name to its index.
    pub(crate) fn compile(c: &Condition, intern: &mut dyn FnMut(&str) -> u32) -> Cond {
        match c {
            Condition::Skill { skill, min_level } => {
                if *min_level == 0 {
                    Cond::True
                } else {
                    Cond::Skill(intern(skill), *min_level)
                }
            }
            Condition::All { of } => {
                let mut parts = Vec::with_capacity(of.len());
                for p in of {
                    match Cond::compile(p, intern) {
                        Cond::True => {}
                        Cond::False => return Cond::False,
                        Cond::All(inner) => parts.extend(inner),
                        other => parts.push(other),
                    }
                }
                match parts.len() {
                    0 => Cond::True,
                    1 => parts.pop().unwrap_or(Cond::True),
                    _ => Cond::All(parts),
                }
            }
            Condition::Any { of } => {
                let mut parts = Vec::with_capacity(of.len());
                for p in of {
                    match Cond::compile(p, intern) {
                        Cond::True => return Cond::True,
                        Cond::False => {}
                        Cond::Any(inner) => parts.extend(inner),
                        other => parts.push(other),
                    }
                }
                match parts.len() {
                    0 => Cond::False,
                    1 => parts.pop().unwrap_or(Cond::False),
                    _ => Cond::Any(parts),
                }
            }
            Condition::Not { condition } => match Cond::compile(condition, intern) {
                Cond::True => Cond::False,
                Cond::False => Cond::True,
                Cond::Not(inner) => *inner,
                other => Cond::Not(Box::new(other)),
            },
        }
    }
}

/// Apply one relaxation step to a requirement (as written, before compiling).
/// `AddQueue` does not change the condition; the caller handles it.
pub(crate) fn relax(req: Option<Condition>, action: &StepAction) -> Option<Condition> {
    match action {
        StepAction::DropCondition { skill } => req.map(|c| drop_skill(c, skill)),
        StepAction::LowerLevel { skill, min_level } => req.map(|c| lower(c, skill, *min_level)),
        StepAction::AddQueue { .. } => req,
        StepAction::AddCondition { condition } => Some(match req {
            None => condition.clone(),
            Some(c) => Condition::All { of: vec![c, condition.clone()] },
        }),
    }
}

fn always() -> Condition {
    Condition::All { of: Vec::new() }
}

/// Every condition on `skill` (and its negation) holds for everyone.
fn drop_skill(c: Condition, skill: &str) -> Condition {
    match c {
        Condition::Skill { skill: s, .. } if s == skill => always(),
        Condition::Not { condition } => match *condition {
            Condition::Skill { skill: s, .. } if s == skill => always(),
            inner => Condition::Not { condition: Box::new(drop_skill(inner, skill)) },
        },
        Condition::All { of } => Condition::All { of: of.into_iter().map(|x| drop_skill(x, skill)).collect() },
        Condition::Any { of } => Condition::Any { of: of.into_iter().map(|x| drop_skill(x, skill)).collect() },
        other @ Condition::Skill { .. } => other,
    }
}

fn lower(c: Condition, skill: &str, level: u8) -> Condition {
    match c {
        Condition::Skill { skill: s, min_level } if s == skill => {
            Condition::Skill { skill: s, min_level: min_level.min(level) }
        }
        Condition::Not { condition } => Condition::Not { condition: Box::new(lower(*condition, skill, level)) },
        Condition::All { of } => Condition::All { of: of.into_iter().map(|x| lower(x, skill, level)).collect() },
        Condition::Any { of } => Condition::Any { of: of.into_iter().map(|x| lower(x, skill, level)).collect() },
        other @ Condition::Skill { .. } => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(s: &str, l: u8) -> Condition {
        Condition::Skill { skill: s.into(), min_level: l }
    }

    fn compile(c: &Condition) -> Cond {
        let names = ["billing", "es", "en", "vip"];
        Cond::compile(c, &mut |s| names.iter().position(|n| *n == s).unwrap() as u32)
    }

    #[test]
    fn conditions_evaluate_against_levels() {
        // levels: billing 3, es 0, en 5, vip 0
        let levels = [3u8, 0, 5, 0];
        let c = Condition::All {
            of: vec![skill("billing", 2), Condition::Any { of: vec![skill("es", 1), skill("en", 4)] }],
        };
        assert!(compile(&c).holds(&levels));
        assert!(!compile(&skill("billing", 4)).holds(&levels));
        assert!(compile(&Condition::Not { condition: Box::new(skill("vip", 1)) }).holds(&levels));
        assert_eq!(compile(&Condition::Any { of: vec![] }), Cond::False);
        assert_eq!(compile(&Condition::All { of: vec![] }), Cond::True);
    }

    #[test]
    fn drop_lower_and_add_relax_requirements() {
        let c =
            Condition::All { of: vec![skill("billing", 4), Condition::Not { condition: Box::new(skill("vip", 1)) }] };
        let lowered = relax(Some(c.clone()), &StepAction::LowerLevel { skill: "billing".into(), min_level: 2 });
        assert_eq!(lowered.clone().unwrap().to_string(), "(billing>=2 & !vip>=1)");
        let dropped = relax(lowered, &StepAction::DropCondition { skill: "vip".into() });
        assert_eq!(compile(dropped.as_ref().unwrap()), Cond::Skill(0, 2));
        let added = relax(None, &StepAction::AddCondition { condition: skill("en", 5) });
        assert_eq!(added, Some(skill("en", 5)));
    }
}
