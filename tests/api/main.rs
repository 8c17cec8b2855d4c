//! End-to-end tests over HTTP against the real NATS JetStream and PostgreSQL.

mod accounting;
mod audit;
mod authorization;
mod core;
mod courses;
mod edge;
mod fixtures;
mod forget;
mod helpers;
mod identity;
mod jobs;
mod lifecycle;
mod login;
mod operations;
mod pai;
mod pai_users;
mod proxy;
mod schemas;
mod secrets;
mod studio;
mod tokens;
mod workers;
mod write_path;
