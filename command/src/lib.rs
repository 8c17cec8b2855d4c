//! The write side of Gantry: aggregates decide, the event store appends.
//!
//! A command is handled by [`Repository::execute`]: load the aggregate's state (from a cache,
//! caught up from its subject of the log), `decide` on it (pure, in the aggregate's module),
//! and append the resulting event with the aggregate's last stream sequence as the expected
//! one. Invariants live in `decide` and nowhere else.

pub mod account;
pub mod actor;
pub mod admins;
mod aggregate;
pub mod cluster;
pub mod course;
mod error;
pub mod group;
pub mod history;
pub mod images;
pub mod job;
pub mod log;
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
