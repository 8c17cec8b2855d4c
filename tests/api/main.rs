//! End-to-end tests over HTTP against the real NATS JetStream and PostgreSQL.

mod courses;
mod helpers;
mod operations;
mod pai;
mod workers;
mod write_path;
