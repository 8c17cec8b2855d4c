//! The read side of Gantry: PostgreSQL read models fed from the event log.
//!
//! [`projector`] consumes the stream in order and applies each batch of events together
//! with its checkpoint in one transaction; [`checkpoint`] lets a writer wait until the read
//! models reached the sequence it appended; the query modules ([`courses`], [`users`],
//! [`health`]) are the typed SELECTs the api calls.

pub mod checkpoint;
pub mod courses;
mod db;
pub mod health;
pub mod parked;
pub mod projector;
pub mod signing_key;
pub mod users;

pub use db::{Database, DbError, Pool};
