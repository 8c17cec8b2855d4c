//! Slowing down password guessing, for every door that takes a password.
//!
//! A login needs no token, and each one costs a deliberately slow hash, so failures are
//! counted per username and per client address. After `max_failures` failures of one key
//! (by default 5 per username, 20 per address, since several people may share one address
//! behind NAT), that key is locked: further attempts are refused before any database lookup
//! or hashing, with a [`Throttled`] that says when to come back. Each failure past the
//! threshold doubles the lock, from `first_lockout` (1 s) up to `max_lockout` (15 min), so
//! a patient guesser gets about four guesses an hour per username. A key is forgotten after
//! `window` (5 min) with no failure and no lock; a successful login forgets the username
//! (not the address: one good password must not buy another round of guesses from there).
//! Attempts refused while locked are not counted, so they do not lengthen the lock.
//!
//! Unknown usernames are counted and locked exactly like known ones, so the throttle tells
//! nothing about who exists. Usernames are kept as keyed 64-bit hashes (the key random per
//! process), so a long name costs no more memory than a short one. IPv6 clients are counted
//! per /64, the block one subscriber usually holds.
//!
//! The client address is the TCP peer, never `X-Forwarded-For` or the like: any client can
//! write those headers, and trusting them would let a guesser pick a fresh address per
//! request. Behind a reverse proxy every client shares the proxy's address, so its per
//! address limit then acts as one limit for everybody; the per-username limit still holds.
//!
//! The counters live in memory, one set per `serve` process, bounded by `max_keys` per
//! table: when a table is full, forgotten entries are dropped first, then the one that
//! would be forgotten soonest, so a flood of random names cannot exhaust memory nor evict a
//! long lock. Memory per process is acceptable because the point is to make guessing slow,
//! not impossible: with `n` processes a guesser gets at most `n` times the rate, and a
//! restart forgets the counters. Not covered: a guesser spread over many addresses trying
//! one password on many usernames (each username sees one failure); that needs a shared
//! store or a proof of work, and strong passwords.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The numbers of a [`LoginThrottle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one username that lock it.
    pub max_failures: u32,
    /// Failures from one client address that lock it.
    pub client_max_failures: u32,
    /// A key with no failure and no lock for this long is forgotten.
    pub window: Duration,
    /// The lock after the threshold is reached; each further failure doubles it.
    pub first_lockout: Duration,
    pub max_lockout: Duration,
    /// The most keys kept per table (usernames, addresses).
    pub max_keys: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self::new(5, Duration::from_secs(1))
    }
}

impl ThrottlePolicy {
    /// `max_failures` per username (four times as many per address) and the first lock;
    /// the rest as described in the module docs.
    pub fn new(max_failures: u32, first_lockout: Duration) -> Self {
        let max_failures = max_failures.max(1);
        Self {
            max_failures,
            client_max_failures: max_failures.saturating_mul(4),
            window: Duration::from_secs(5 * 60),
            first_lockout,
            max_lockout: Duration::from_secs(15 * 60).max(first_lockout),
            max_keys: 100_000,
        }
    }
}

/// Too many failed logins for this username or from this address: refused unheard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed login attempts; try again in {} seconds", self.retry_after_secs())]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// The wait in whole seconds, rounded up (what a `Retry-After` header carries).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        rounded.max(1)
    }
}

/// Failed-login counters per username and per client address (see the module docs).
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    hasher: RandomState,
    tables: Mutex<Tables>,
}

struct Tables {
    users: Table<u64>,
    clients: Table<IpAddr>,
}

struct Table<K> {
    max_failures: u32,
    entries: HashMap<K, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn forgotten_at(&self, window: Duration) -> Instant {
        self.locked_until
            .map_or(self.last_failure, |until| until.max(self.last_failure))
            + window
    }
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            tables: Mutex::new(Tables {
                users: Table::new(policy.max_failures),
                clients: Table::new(policy.client_max_failures),
            }),
            hasher: RandomState::new(),
            policy,
        }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Whether an attempt for `username` from `client` may go ahead now.
    pub fn check(&self, username: &str, client: Option<IpAddr>) -> Result<(), Throttled> {
        self.check_at(username, client, Instant::now())
    }

    /// Counts a failed attempt (wrong password or unknown user).
    pub fn failed(&self, username: &str, client: Option<IpAddr>) {
        self.failed_at(username, client, Instant::now())
    }

    /// Forgets the username's failures after a successful login.
    pub fn succeeded(&self, username: &str) {
        let user = self.user_key(username);
        self.lock().users.entries.remove(&user);
    }

    fn check_at(
        &self,
        username: &str,
        client: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Throttled> {
        let user = self.user_key(username);
        let tables = self.lock();
        let wait = [
            tables.users.locked_for(&user, now, &self.policy),
            client.and_then(|c| tables.clients.locked_for(&client_key(c), now, &self.policy)),
        ]
        .into_iter()
        .flatten()
        .max();
        match wait {
            Some(retry_after) => Err(Throttled { retry_after }),
            None => Ok(()),
        }
    }

    fn failed_at(&self, username: &str, client: Option<IpAddr>, now: Instant) {
        let user = self.user_key(username);
        let mut tables = self.lock();
        tables.users.fail(user, now, &self.policy);
        if let Some(client) = client {
            tables.clients.fail(client_key(client), now, &self.policy);
        }
    }

    fn user_key(&self, username: &str) -> u64 {
        self.hasher.hash_one(username)
    }

    /// The counters stay usable even if a thread panicked while holding them.
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let tables = self.lock();
        (tables.users.entries.len(), tables.clients.entries.len())
    }
}

/// IPv4 (also when mapped into IPv6) per address, IPv6 per /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            entries: HashMap::new(),
        }
    }

    fn locked_for(&self, key: &K, now: Instant, policy: &ThrottlePolicy) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if entry.forgotten_at(policy.window) <= now {
            return None;
        }
        entry
            .locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|wait| !wait.is_zero())
    }

    fn fail(&mut self, key: K, now: Instant, policy: &ThrottlePolicy) {
        let live = self
            .entries
            .get(&key)
            .is_some_and(|e| e.forgotten_at(policy.window) > now);
        if !live {
            self.entries.remove(&key);
            self.make_room(now, policy);
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= self.max_failures {
            let doublings = (entry.failures - self.max_failures).min(31);
            let lockout = policy
                .first_lockout
                .saturating_mul(1 << doublings)
                .min(policy.max_lockout);
            entry.locked_until = Some(now + lockout);
        }
    }

    /// Keeps the table under `max_keys` before a new key goes in: forgotten entries go
    /// first, then the one that would be forgotten soonest.
    fn make_room(&mut self, now: Instant, policy: &ThrottlePolicy) {
        if self.entries.len() < policy.max_keys {
            return;
        }
        self.entries
            .retain(|_, e| e.forgotten_at(policy.window) > now);
        while self.entries.len() >= policy.max_keys.max(1) {
            let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.forgotten_at(policy.window))
                .map(|(k, _)| *k)
            else {
                return;
            };
            self.entries.remove(&soonest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: 3,
            client_max_failures: 10,
            window: Duration::from_secs(300),
            first_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(10),
            max_keys: 1000,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_lock_starts_at_the_threshold_and_doubles_up_to_its_cap() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for _ in 0..2 {
            throttle.failed_at("jimmy", A, t0);
        }
        assert_eq!(throttle.check_at("jimmy", A, t0), Ok(()));
        throttle.failed_at("jimmy", A, t0);
        assert_eq!(
            throttle.check_at("jimmy", A, t0),
            Err(Throttled {
                retry_after: secs(1)
            })
        );
        assert_eq!(throttle.check_at("jimmy", A, t0 + secs(1)), Ok(()));

        // Each failure once the lock is over doubles it: 2, 4, 8, then the cap of 10.
        let mut now = t0 + secs(1);
        for expected in [2, 4, 8, 10, 10] {
            throttle.failed_at("jimmy", A, now);
            assert_eq!(
                throttle.check_at("jimmy", B, now),
                Err(Throttled {
                    retry_after: secs(expected)
                }),
                "from any address"
            );
            assert!(
                throttle
                    .check_at("jimmy", B, now + secs(expected) - Duration::from_millis(1))
                    .is_err()
            );
            now += secs(expected);
            assert_eq!(throttle.check_at("jimmy", B, now), Ok(()));
        }
        assert_eq!(throttle.check_at("someone else", B, t0 + secs(1)), Ok(()));
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_window_and_the_lock() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for _ in 0..2 {
            throttle.failed_at("jimmy", None, t0);
        }
        // Two failures long ago do not add to a third now.
        let later = t0 + secs(301);
        throttle.failed_at("jimmy", None, later);
        assert_eq!(throttle.check_at("jimmy", None, later), Ok(()));

        for _ in 0..5 {
            throttle.failed_at("alice", None, t0);
        }
        // Locked for 4 s from t0; remembered for the window after the lock ends.
        assert!(throttle.check_at("alice", None, t0 + secs(3)).is_err());
        throttle.failed_at("alice", None, t0 + secs(4) + secs(299));
        assert_eq!(
            throttle.check_at("alice", None, t0 + secs(303)),
            Err(Throttled {
                retry_after: secs(8)
            }),
            "a failure within the window after the lock still counts"
        );
    }

    #[test]
    fn a_success_forgets_the_username_but_not_the_address() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            throttle.failed_at("jimmy", A, t0);
        }
        assert!(throttle.check_at("jimmy", A, t0).is_err());
        throttle.succeeded("jimmy");
        assert_eq!(throttle.check_at("jimmy", A, t0), Ok(()));
        throttle.failed_at("jimmy", A, t0);
        assert_eq!(throttle.check_at("jimmy", A, t0), Ok(()), "counting anew");
        assert_eq!(throttle.tracked(), (1, 1));
    }

    #[test]
    fn one_address_guessing_many_usernames_is_locked() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(throttle.check_at(&format!("user{i}"), A, t0), Ok(()));
            throttle.failed_at(&format!("user{i}"), A, t0);
        }
        assert_eq!(
            throttle.check_at("fresh", A, t0),
            Err(Throttled {
                retry_after: secs(1)
            })
        );
        assert_eq!(throttle.check_at("fresh", B, t0), Ok(()));
        // One /64 is one client; mapped IPv4 is IPv4.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for i in 0..10 {
            throttle.failed_at(&format!("v{i}"), v6(&format!("2001:db8:1:2::{i}")), t0);
        }
        assert!(
            throttle
                .check_at("x", v6("2001:db8:1:2:ffff::1"), t0)
                .is_err()
        );
        assert_eq!(throttle.check_at("x", v6("2001:db8:1:3::1"), t0), Ok(()));
        assert!(throttle.check_at("x", v6("::ffff:10.0.0.1"), t0).is_err());
    }

    #[test]
    fn the_tables_stay_bounded_and_keep_long_locks() {
        let throttle = LoginThrottle::new(ThrottlePolicy {
            max_keys: 50,
            ..policy()
        });
        let t0 = Instant::now();
        for _ in 0..8 {
            throttle.failed_at("target", A, t0);
        }
        for i in 0..10_000u64 {
            throttle.failed_at(&format!("random{i}"), A, t0 + Duration::from_micros(i));
        }
        let (users, clients) = throttle.tracked();
        assert!(users <= 50, "{users}");
        assert_eq!(clients, 1);
        assert!(
            throttle.check_at("target", B, t0 + secs(5)).is_err(),
            "the locked username survived the flood"
        );
        // Entries past their window make room before anything live is evicted.
        throttle.failed_at("late", B, t0 + secs(3600));
        assert_eq!(throttle.tracked().0, 1);
    }

    #[test]
    fn the_wait_is_given_in_whole_seconds_rounded_up() {
        let t = |ms| Throttled {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(t(1).retry_after_secs(), 1);
        assert_eq!(t(0).retry_after_secs(), 1);
        assert_eq!(t(1000).retry_after_secs(), 1);
        assert_eq!(t(1001).retry_after_secs(), 2);
    }
}
