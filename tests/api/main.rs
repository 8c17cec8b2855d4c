//! End-to-end tests over HTTP against the real NATS JetStream and PostgreSQL.

mod core;
mod courses;
mod edge;
mod helpers;
mod identity;
mod lifecycle;
mod login;
mod operations;
mod pai;
mod tokens;
mod workers;
mod write_path;
