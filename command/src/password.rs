//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes).
//!
//! Hashing is slow on purpose, which makes it the cheapest way to load the machine: a login
//! needs no token. So every hash runs on the blocking pool behind one process-wide
//! semaphore of [`capacity`] permits (the number of cores): at most that many hashes run at
//! once, whatever the number of requests, and the rest wait in the async queue, where a
//! waiting request costs a few hundred bytes instead of a thread and 19 MiB. A request that
//! waits longer than [`QUEUE_WAIT`] gives up with [`HashError::Busy`], so a flood turns into
//! quick refusals instead of an ever longer queue. Callers run hashing before taking an
//! aggregate's lock.

use std::{
    sync::{
        LazyLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a request waits for its turn to hash before it is refused. At about 50 ms a
/// hash per core, the queue holds some 200 requests per core before anyone is turned away.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes queued: try again later.
    #[error("too many logins at once; try again later")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(capacity()));
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// How many hashes may run at once in this process: the number of cores.
pub fn capacity() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most hashes that ran at once in this process so far (for tests and metrics).
pub fn peak_in_flight() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The right to run one hash: taking it waits (at most [`QUEUE_WAIT`]) while [`capacity`]
/// hashes run. A caller may take it first, check something that may have changed while it
/// waited, then hash with it.
pub struct HashPermit {
    _turn: SemaphorePermit<'static>,
}

/// Waits for a turn to hash.
pub async fn permit() -> Result<HashPermit, HashError> {
    match tokio::time::timeout(QUEUE_WAIT, HASHING.acquire()).await {
        Ok(Ok(turn)) => Ok(HashPermit { _turn: turn }),
        // The semaphore is never closed.
        Ok(Err(_)) | Err(_) => Err(HashError::Busy),
    }
}

impl HashPermit {
    /// Hashes `password` with a fresh salt.
    pub async fn hash(self, password: String) -> Result<String, HashError> {
        self.run(move || hash_now(&password)).await?
    }

    /// True when `password` matches `hash`; a malformed hash matches nothing.
    pub async fn verify(self, password: String, hash: String) -> Result<bool, HashError> {
        self.run(move || verify_now(&password, &hash)).await
    }

    /// Runs `work` on the blocking pool. The permit moves into the blocking task, so it is
    /// released when the hash ends, not when a caller who stopped waiting goes away.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        tokio::task::spawn_blocking(move || {
            let _permit = self;
            let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::Relaxed);
            let result = work();
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            result
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// Hashes `password` with a fresh salt, waiting for a turn (see the module docs).
pub async fn hash(password: String) -> Result<String, HashError> {
    permit().await?.hash(password).await
}

/// True when `password` matches `hash`, waiting for a turn (see the module docs).
pub async fn verify(password: String, hash: String) -> Result<bool, HashError> {
    permit().await?.verify(password, hash).await
}

fn hash_now(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn verify_now(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A fixed, valid hash with the default parameters to verify against when the user does
/// not exist, so that a login takes as long for an unknown user as for a wrong password.
/// It is a constant so that no request ever computes it on an async thread.
pub fn decoy_hash() -> &'static str {
    DECOY
}

const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$0O1/FqIYz3FIr8x3EzkaPQ$G7uTWjGdpcFnGMNu8MA+MuwWK0Ms0gQpavxBsIBgI7o";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_now("s3cret-pass").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_now("s3cret-pass", &h));
        assert!(!verify_now("wrong", &h));
        assert!(!verify_now("s3cret-pass", "not a hash"));
    }

    #[test]
    fn the_decoy_costs_what_a_real_hash_costs() {
        let real = hash_now("anything").unwrap();
        let params = |h: &str| h.split('$').nth(3).unwrap().to_string();
        assert_eq!(params(DECOY), params(&real));
        assert!(PasswordHash::new(DECOY).is_ok());
        assert!(!verify_now("decoy", DECOY));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        let hashes = (0..4 * capacity() + 3).map(|i| tokio::spawn(hash(format!("password {i}"))));
        for (i, h) in futures::future::join_all(hashes)
            .await
            .into_iter()
            .enumerate()
        {
            let h = h.unwrap().unwrap();
            assert!(verify(format!("password {i}"), h.clone()).await.unwrap());
            assert!(!verify("another".into(), h).await.unwrap());
        }
        assert!(peak_in_flight() >= 1);
        assert!(peak_in_flight() <= capacity(), "{}", peak_in_flight());
    }
}
