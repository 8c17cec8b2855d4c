use events::DomainEvent;

use crate::DomainError;

/// An aggregate: a state folded from its own events, and the rules that decide what a
/// command may change.
///
/// `decide` returns at most one event. JetStream on the servers we target has no atomic
/// multi-message append, and one event per command keeps every write all-or-nothing;
/// `None` means the command changes nothing and nothing is appended.
pub trait Aggregate: Default + Send + Sync + 'static {
    type Command: Send + Sync;
    type Event: DomainEvent;

    fn evolve(&mut self, event: &Self::Event);

    fn decide(&self, command: &Self::Command) -> Result<Option<Self::Event>, DomainError>;
}
