//! The write side of Gantry: aggregates decide, the event store appends.
//!
//! A command is handled by [`Repository::execute`]: load the aggregate's state (from a cache,
//! caught up from its subject of the log), `decide` on it (pure, in the aggregate's module),
//! and append the resulting event with the aggregate's last stream sequence as the expected
//! one. Invariants live in `decide` and nowhere else.

pub mod account;
pub mod admins;
mod aggregate;
pub mod course;
mod error;
pub mod group;
pub mod password;
mod repository;
pub mod slurm_job;
pub mod slurm_user;
mod store;
pub mod user;
pub mod values;

pub use aggregate::Aggregate;
pub use error::{CommandError, DomainError};
pub use repository::{Context, Outcome, Repository};
pub use store::{EventStore, JetStreamStore, StoreError, is_plain_instance_name};
