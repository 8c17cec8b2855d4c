//! The read side of Gantry: PostgreSQL read models fed from the event log.
//!
//! [`registry`] lists the read models; [`projector`] runs each on its own consumer of the
//! log and applies each batch of events together with that read model's checkpoint in one
//! transaction, parking what the database refuses; [`checkpoint`] lets a writer wait until
//! the read models of its aggregate reached the sequence it appended; the query modules
//! ([`courses`], [`jobs`], [`images`], [`cluster`], [`users`], [`groups`], [`health`],
//! [`status`]) are the typed SELECTs the api calls. [`replay`] feeds a read model the log
//! from sequence 1 in a schema of its own, which [`rebuild`] swaps in without downtime and
//! [`audit`] compares with the live tables. [`credentials`] is the store of password
//! hashes, [`personal`] the store of the
//! keys that seal personal data in the log, and [`token_keys`] the keys that sign tokens:
//! none is a read model, nothing the log can rebuild; nor are [`oauth_codes`], the course
//! door's OAuth2 codes, and [`studio`], the studio door's one-time codes and outbox, and
//! [`epilogue_credentials`], the tokens of Slurm clusters' epilogues. [`accounting`] is the
//! accounting door's ledger (accounts, balances, users, Slurm jobs).

pub mod access;
pub mod accounting;
pub mod audit;
pub mod checkpoint;
pub mod cluster;
pub mod courses;
pub mod credentials;
mod db;
pub mod epilogue_credentials;
mod feed;
pub mod groups;
pub mod health;
pub mod images;
pub mod jobs;
pub mod oauth_codes;
pub mod parked;
pub mod personal;
mod pipeline;
pub mod projector;
pub mod rebuild;
pub mod registry;
pub mod replay;
pub mod retry;
pub mod secret;
pub mod status;
pub mod studio;
pub mod token_keys;
pub mod users;

pub use db::{Database, DbError, Pool, Readers, refused_value, transient};
