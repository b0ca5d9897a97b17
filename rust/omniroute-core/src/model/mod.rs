//! The engine's public vocabulary: configuration, input events, output events.

pub mod condition;
pub mod config;
pub mod input;
pub mod output;

pub use condition::Condition;
pub use config::{AgentConfig, ChannelConfig, EngineConfig, QueueConfig, Step, StepAction, Strategy};
pub use input::{AttributeValue, Input, NewTask, RequestedState};
pub use output::{
    AgentStatus, AgentVerdict, BatchResult, Candidate, Explanation, InputError, Name, OfferReason, Output, ScorePart,
    Verdict,
};
