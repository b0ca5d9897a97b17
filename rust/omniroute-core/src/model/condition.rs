//! Skill conditions: what a task requires of an agent, as a small boolean tree.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A requirement on an agent's skills.
///
/// `Skill` holds when the agent has the skill at `min_level` or above; the
/// others combine conditions. An empty `All` always holds, an empty `Any` never.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Skill { skill: String, min_level: u8 },
    All { of: Vec<Condition> },
    Any { of: Vec<Condition> },
    Not { condition: Box<Condition> },
}

impl Condition {
    /// Every skill name the condition mentions, in order of appearance.
    #[must_use]
    pub fn skills(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_skills(&mut out);
        out
    }

    fn collect_skills<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Condition::Skill { skill, .. } => out.push(skill),
            Condition::All { of } | Condition::Any { of } => {
                for c in of {
                    c.collect_skills(out);
                }
            }
            Condition::Not { condition } => condition.collect_skills(out),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Skill { skill, min_level } => write!(f, "{skill}>={min_level}"),
            Condition::All { of } if of.is_empty() => write!(f, "true"),
            Condition::Any { of } if of.is_empty() => write!(f, "false"),
            Condition::All { of } | Condition::Any { of } => {
                let sep = if matches!(self, Condition::All { .. }) { " & " } else { " | " };
                write!(f, "(")?;
                for (i, c) in of.iter().enumerate() {
                    if i > 0 {
                        write!(f, "{sep}")?;
                    }
                    write!(f, "{c}")?;
                }
                write!(f, ")")
            }
            Condition::Not { condition } => write!(f, "!{condition}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(s: &str, l: u8) -> Condition {
        Condition::Skill { skill: s.into(), min_level: l }
    }

    #[test]
    fn displays_as_an_expression() {
        let c = Condition::All {
            of: vec![
                skill("billing", 3),
                Condition::Any { of: vec![skill("es", 2), skill("en", 4)] },
                Condition::Not { condition: Box::new(skill("trainee", 1)) },
            ],
        };
        assert_eq!(c.to_string(), "(billing>=3 & (es>=2 | en>=4) & !trainee>=1)");
        assert_eq!(c.skills(), vec!["billing", "es", "en", "trainee"]);
    }
}
