//! Logins cannot flood the machine: failures are throttled per username and per client
//! address, and hashing runs at most once per core at a time.

use std::time::{Duration, Instant};

use futures::future::join_all;
use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_instance, settings, spawn_with};

/// A Gantry whose throttle locks after `max_failures` for `lockout_ms` at first.
async fn spawn_throttled(max_failures: u32, lockout_ms: u64) -> TestApp {
    let mut settings = settings(&fresh_instance());
    settings.login_max_failures = max_failures;
    settings.login_lockout_ms = lockout_ms;
    spawn_with(settings, Roles::DEV).await
}

/// A login's status, `Retry-After` header and JSON body.
async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Option<u64>, Value) {
    let response = app
        .http
        .post(app.url("/api/v1/token"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.expect("JSON"))
}

fn assert_throttled(answer: &(u16, Option<u64>, Value), seconds: u64) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 429, "{body}");
    assert_eq!(*retry_after, Some(seconds), "{body}");
    assert_eq!(
        body,
        &json!({
            "code": "TooManyRequestsError",
            "message": format!("Too many failed login attempts. Try again in {seconds} seconds.")
        })
    );
}

async fn create_user(app: &TestApp, username: &str, password: &str) {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({ "username": username, "password": password })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_wrong_passwords_lock_that_user_while_others_log_in() {
    let app = spawn_throttled(3, 60_000).await;
    create_user(&app, "alice", "alice-password").await;
    for _ in 0..3 {
        let (status, _, body) = login(&app, "alice", "guess").await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "IncorrectPassworkError");
    }
    assert_throttled(&login(&app, "alice", "guess").await, 60);
    assert_throttled(&login(&app, "alice", "alice-password").await, 60);
    // Another user from the same address is not held up.
    let (status, _, body) = login(&app, "admin", "admin-password").await;
    assert_eq!(status, 200, "{body}");
    // The door's other path, with a form, meets the same lock.
    let response = app
        .http
        .post(app.url("/rest-server/api/v1/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=alice&password=alice-password")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_right_password_is_refused_while_locked_and_accepted_after() {
    let app = spawn_throttled(3, 700).await;
    for _ in 0..3 {
        assert_eq!(login(&app, "admin", "wrong").await.0, 400);
    }
    let refused = login(&app, "admin", "admin-password").await;
    assert_throttled(&refused, 1);
    tokio::time::sleep(Duration::from_secs(refused.1.unwrap())).await;
    let (status, _, body) = login(&app, "admin", "admin-password").await;
    assert_eq!(status, 200, "{body}");
    // The success forgot the failures: one more wrong password is only wrong.
    assert_eq!(login(&app, "admin", "wrong").await.0, 400);
    assert_eq!(login(&app, "admin", "wrong").await.0, 400);
    assert_eq!(login(&app, "admin", "admin-password").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_is_throttled_the_same_way() {
    let app = spawn_throttled(3, 60_000).await;
    for _ in 0..3 {
        let (status, retry_after, body) = login(&app, "ghost", "whatever").await;
        assert_eq!((status, retry_after), (400, None));
        assert_eq!(body["code"], "NoUserError");
    }
    assert_throttled(&login(&app, "ghost", "whatever").await, 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_costs_a_hash_as_a_wrong_password_does() {
    // A threshold no try reaches: a locked login is refused without a hash.
    let app = spawn_throttled(100, 60_000).await;
    let time = |username: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let (status, _, body) = login(app, &username, "x").await;
            assert_eq!(status, 400, "{body}");
            started.elapsed()
        }
    };
    // The fastest of seven tries each, taken in turn, so that moments when the shared
    // machine is busy with other tests do not decide it.
    let (mut known, mut unknown) = (Duration::MAX, Duration::MAX);
    for i in 0..7 {
        known = known.min(time("admin".to_string()).await);
        unknown = unknown.min(time(format!("nobody-{i}")).await);
    }
    assert!(
        unknown > known / 3,
        "an unknown user costs a hash too: {unknown:?} against {known:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_guessing_many_usernames_is_refused() {
    // 2 per username, so 8 from one address.
    let app = spawn_throttled(2, 60_000).await;
    for i in 0..8 {
        let (status, _, body) = login(&app, &format!("user{i}"), "guess").await;
        assert_eq!(status, 400, "{body}");
    }
    assert_throttled(&login(&app, "admin", "admin-password").await, 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_logins_hashes_at_most_once_per_core_and_the_server_stays_responsive() {
    let app = spawn_throttled(5, 1000).await;
    let burst = (0..64).map(|_| login(&app, "admin", "admin-password"));
    let probe = async {
        // Let the burst queue up, then time a request that needs no hash.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let started = Instant::now();
            let (status, body) = app.send(app.http.get(app.url("/api/v1"))).await;
            assert_eq!(status, 200, "{body}");
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    };
    let started = Instant::now();
    let (answers, slowest) = tokio::join!(join_all(burst), probe);
    let burst_took = started.elapsed();
    for (status, _, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let peak = command::password::peak_in_flight();
    eprintln!(
        "64 logins took {burst_took:?}, GET /api/v1 at most {slowest:?}, {peak} hashes at once"
    );
    assert!(
        (1..=command::password::capacity()).contains(&peak),
        "{peak} hashes ran at once, for {} cores",
        command::password::capacity()
    );
    assert!(
        slowest < Duration::from_millis(500) && slowest < burst_took / 2,
        "GET /api/v1 took up to {slowest:?} while 64 logins took {burst_took:?}"
    );
}
