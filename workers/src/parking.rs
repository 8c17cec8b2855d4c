//! Where a worker records an event it cannot apply, for an admin to look at: the same
//! parked-events record the projections write. The workers only know this trait; the
//! binary wires it to the database.

use futures::future::BoxFuture;

/// One event a worker could not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The worker's name.
    pub consumer: String,
    /// The event's stream sequence.
    pub seq: u64,
    /// What could be read of the envelope; `None` when it could not be read at all.
    pub aggregate: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    pub error: String,
}

/// Stores parked events. An error means "not stored, try again later".
pub trait ParkingLot: Send + Sync {
    fn park<'a>(&'a self, event: &'a Parked) -> BoxFuture<'a, Result<(), String>>;
}
