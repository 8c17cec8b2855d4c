use events::DomainEvent;

use crate::DomainError;

/// An aggregate: a state folded from its own events, and the rules that decide what a
/// command may change.
///
/// `decide` returns at most one event. JetStream on the servers we target has no atomic
/// multi-message append, and one event per command keeps every write all-or-nothing;
/// `None` means the command changes nothing and nothing is appended.
pub trait Aggregate: Default + Send + Sync + 'static {
    /// Built from validated values only ([`crate::values`]), so a command that exists is
    /// valid. Serialized to tell a repeated request from another one under the same
    /// idempotency key.
    type Command: Send + Sync + serde::Serialize;
    type Event: DomainEvent;

    fn evolve(&mut self, event: &Self::Event);

    fn decide(&self, command: &Self::Command) -> Result<Option<Self::Event>, DomainError>;
}
