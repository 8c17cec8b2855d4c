//! What a read model is, and the one list of them that the projector runs.
//!
//! A projection is a unit: a name (its checkpoint row), the aggregates whose events it
//! reads, the tables it owns (created by [`Projection::schema`]), and how a batch of events
//! changes them. Each runs on its own: its own consumer of the log, its own checkpoint
//! committed with its rows, single-active through that claimed checkpoint. A new read model
//! is one file plus one line in [`registered`]; it catches up from sequence 1 by itself
//! while the others keep serving.

use std::sync::Arc;

use events::{Envelope, Event};
use futures::future::BoxFuture;

use crate::{
    accounting::AccountingLedger, cluster::ClusterView, courses::CourseCatalogue,
    groups::GroupDirectory, images::ImageCatalogue, jobs::JobList, users::UserDirectory,
};

/// One event of the log as a projection receives it: decoded, with its stream sequence.
#[derive(Debug, Clone)]
pub struct Applied {
    pub seq: u64,
    pub envelope: Envelope,
    pub event: Event,
}

/// The transaction a batch is written in (with its checkpoint).
pub type Tx<'a> = deadpool_postgres::Transaction<'a>;

pub trait Projection: Send + Sync + 'static {
    /// Names its checkpoint row, its consumer and its metrics: never change it.
    fn name(&self) -> &'static str;

    /// The aggregates whose events it reads (`course`, `user`). With one aggregate, the
    /// log is filtered by subject on the server.
    fn aggregates(&self) -> &'static [&'static str];

    /// The statements that create its tables and indexes if they are missing (run at every
    /// start, so they must be idempotent).
    fn schema(&self) -> &'static str;

    /// Writes the changes of `events` (in log order, all of its aggregates) inside `tx`.
    ///
    /// A database error here rolls the batch back. When the database refused a value
    /// (a data exception, a constraint), the projector applies the batch again one event at
    /// a time and parks the event that is refused, so `apply` must give the same result for
    /// a batch as for its events one by one.
    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>>;
}

/// Every read model of Gantry, in the order they start.
pub fn registered() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(CourseCatalogue),
        Arc::new(UserDirectory),
        Arc::new(GroupDirectory),
        Arc::new(JobList),
        Arc::new(ImageCatalogue),
        Arc::new(ClusterView),
        Arc::new(AccountingLedger),
    ]
}

/// Whether `projection` reads events of `aggregate`.
pub fn reads(projection: &dyn Projection, aggregate: &str) -> bool {
    projection.aggregates().contains(&aggregate)
}
