//! Identity: no secret in the log, old logs that held hashes, who may log in, and the last
//! admin under concurrent demotions.

use std::time::Duration;

use command::{
    CommandError, DomainError, JetStreamStore, Repository,
    admins::{Admins, SeenAdmin, execute_guarded},
    user::{AdminChange, Audit, Details, Registration, User, UserCommand},
    values::{Comment, Username},
};
use events::user::{UserStatus, user_id};
use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{TestApp, contains, ctx, eventually, raw_envelope, spawn_gantry};

async fn store(app: &TestApp) -> JetStreamStore {
    app.event_store().await
}

async fn create_user(app: &TestApp, body: Value) {
    let (status, answer) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&body),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

/// `(status, body)` of a login.
async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    app.send(
        app.http
            .post(app.url("/api/v1/token"))
            .json(&json!({ "username": username, "password": password })),
    )
    .await
}

/// The hashes the credential store holds now.
async fn stored_hashes(app: &TestApp) -> Vec<String> {
    let db = app.database().await;
    let client = db.pool.get().await.expect("connection");
    client
        .query(
            "SELECT password_hash FROM credentials WHERE password_hash IS NOT NULL",
            &[],
        )
        .await
        .expect("credentials")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_event_holds_a_password_or_its_hash() {
    let app = spawn_gantry().await;
    create_user(
        &app,
        json!({"username": "alice", "password": "alice-secret-1", "email": "a@example.org"}),
    )
    .await;
    assert_eq!(login(&app, "alice", "alice-secret-1").await.0, 200);
    // A refused write (the name is taken) leaves no usable hash behind either.
    let (status, _) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({"username": "alice", "password": "another-secret"})),
        )
        .await;
    assert_eq!(status, 409);

    let hashes = stored_hashes(&app).await;
    assert_eq!(hashes.len(), 2, "the admin's and alice's: {hashes:?}");
    let log = app.whole_log().await;
    assert!(log.len() >= 2, "the two creations are in the log");
    for message in &log {
        let text = String::from_utf8_lossy(message);
        for secret in [
            "alice-secret-1",
            "another-secret",
            crate::helpers::ADMIN_PASSWORD,
        ]
        .into_iter()
        .chain(hashes.iter().map(String::as_str))
        {
            assert!(!contains(message, secret), "{secret:?} in {text}");
        }
        assert!(!contains(message, "$argon2"), "{text}");
    }
    // A hash stored without its event (a write whose append failed) is never used.
    let db = app.database().await;
    let orphan = command::password::hash("orphan-secret".into())
        .await
        .unwrap();
    projection::credentials::store(&db.pool, &user_id("alice"), &orphan)
        .await
        .unwrap();
    assert_eq!(login(&app, "alice", "orphan-secret").await.0, 400);
    assert_eq!(login(&app, "alice", "alice-secret-1").await.0, 200);

    // The creation says a password was set, and by whom.
    let events = app.events_of("user", &user_id("alice")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (
            &events[0]["type"],
            &events[0]["version"],
            &events[0]["meta"]["actor"]
        ),
        (&json!("UserCreated"), &json!(2), &json!("user:admin"))
    );
    assert!(events[0]["data"]["credential"].is_string(), "{}", events[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hash_of_an_old_user_created_moves_to_the_credential_store_once() {
    let mut app = spawn_gantry().await;
    let hash = command::password::hash("legacy-secret".into())
        .await
        .expect("hash");
    let id = user_id("legacy");
    app.publish_raw(
        "user",
        &id,
        raw_envelope(
            "user",
            &id,
            "UserCreated",
            1,
            json!({"username": "legacy", "password_hash": hash, "admin": false,
                   "email": "l@example.org", "virtual_clusters": ["default"], "extension": {}}),
        ),
    )
    .await;
    let logged_in = eventually(Duration::from_secs(10), || async {
        login(&app, "legacy", "legacy-secret").await.0 == 200
    })
    .await;
    assert!(
        logged_in,
        "{:?}",
        login(&app, "legacy", "legacy-secret").await
    );
    assert_eq!(login(&app, "legacy", "wrong-secret").await.0, 400);

    let db = app.database().await;
    let client = db.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT credential_id, password_hash FROM credentials WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let credential: uuid::Uuid = rows[0].get(0);
    assert_eq!(rows[0].get::<_, Option<String>>(1), Some(hash.clone()));
    assert_eq!(
        credential,
        events::user::legacy_credential("legacy", &hash),
        "the id the upcast names"
    );
    let hash_column: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_name = 'password_hash'
               AND table_name <> 'credentials'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(hash_column, 0, "no read model holds a hash");

    // Once: after the credential is retired, rebuilding the user directory from the log
    // does not bring the old hash back.
    projection::credentials::forget(&db.pool, &id, &[credential])
        .await
        .unwrap();
    drop(client);
    app.stop().await;
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute(
            "DELETE FROM users; DELETE FROM projection_checkpoint WHERE name = 'user_directory';",
        )
        .await
        .unwrap();
    app.restart(Roles::DEV).await;
    let rebuilt = eventually(Duration::from_secs(20), || async {
        app.try_login("admin", "admin-password", 60).await.is_some()
    })
    .await;
    assert!(rebuilt, "the directory is back");
    assert_eq!(login(&app, "legacy", "legacy-secret").await.0, 400);
    let hashes: Vec<Option<String>> = client
        .query(
            "SELECT password_hash FROM credentials WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(hashes, vec![None]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_and_disabled_users_cannot_log_in() {
    let app = spawn_gantry().await;
    let users: Repository<User, _> = Repository::new(store(&app).await);
    let db = app.database().await;

    // A user who registered themself waits for an admin.
    let id = user_id("newbie");
    let hash = command::password::hash("newbie-secret".into())
        .await
        .unwrap();
    let credential = projection::credentials::store(&db.pool, &id, &hash)
        .await
        .unwrap();
    let register = UserCommand::Register(Registration {
        username: Username::parse("newbie").unwrap(),
        details: Details::default(),
        credential: Some(credential),
    });
    users.execute(&id, &register, &ctx("newbie")).await.unwrap();
    let waiting =
        json!({"code": "ForbiddenUserError", "message": "User newbie is waiting for approval."});
    let refused = eventually(Duration::from_secs(10), || async {
        login(&app, "newbie", "newbie-secret").await == (403, waiting.clone())
    })
    .await;
    assert!(
        refused,
        "{:?}",
        login(&app, "newbie", "newbie-secret").await
    );
    // The answer does not depend on the password: it tells no guess apart.
    assert_eq!(login(&app, "newbie", "a-guess").await, (403, waiting));

    let audit = |status| {
        UserCommand::Audit(Audit {
            status,
            comment: Comment::parse("checked").unwrap(),
            release: None,
        })
    };
    users
        .execute(&id, &audit(UserStatus::Approved), &ctx("admin"))
        .await
        .unwrap();
    let approved = eventually(Duration::from_secs(10), || async {
        login(&app, "newbie", "newbie-secret").await.0 == 200
    })
    .await;
    assert!(approved);

    // A disabled user is refused the same way.
    users
        .execute(&id, &audit(UserStatus::Disabled), &ctx("admin"))
        .await
        .unwrap();
    let disabled = json!({"code": "ForbiddenUserError", "message": "User newbie is disabled."});
    let refused = eventually(Duration::from_secs(10), || async {
        login(&app, "newbie", "newbie-secret").await == (403, disabled.clone())
    })
    .await;
    assert!(
        refused,
        "{:?}",
        login(&app, "newbie", "newbie-secret").await
    );
}

async fn seen(app: &TestApp) -> Vec<SeenAdmin> {
    app.seen_admins().await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_demotions_at_once_leave_an_admin() {
    let app = spawn_gantry().await;
    create_user(
        &app,
        json!({"username": "second", "password": "second-secret", "admin": true}),
    )
    .await;
    let both = seen(&app).await;
    assert_eq!(both.len(), 2, "{both:?}");

    // Two processes, each with its own repositories, each demoting the other admin.
    let (first, other) = (store(&app).await, store(&app).await);
    let users_a: Repository<User, _> = Repository::new(first.clone());
    let admins_a: Repository<Admins, _> = Repository::new(first);
    let users_b: Repository<User, _> = Repository::new(other.clone());
    let admins_b: Repository<Admins, _> = Repository::new(other);
    let demote = UserCommand::SetAdmin(AdminChange {
        admin: false,
        release: None,
    });
    let (admin, second) = (
        Username::parse("admin").unwrap(),
        Username::parse("second").unwrap(),
    );
    let (admin_id, second_id) = (user_id("admin"), user_id("second"));
    let (by_second, by_admin) = (ctx("second"), ctx("admin"));
    let (a, b) = tokio::join!(
        execute_guarded(
            &users_a, &admins_a, &admin_id, &admin, &demote, &both, &by_second
        ),
        execute_guarded(
            &users_b, &admins_b, &second_id, &second, &demote, &both, &by_admin
        ),
    );
    let refused = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(CommandError::Domain(DomainError::LastAdmin))))
        .count();
    assert_eq!(
        (refused, a.is_ok() as usize + b.is_ok() as usize),
        (1, 1),
        "{a:?} {b:?}"
    );

    let one = eventually(Duration::from_secs(10), || async {
        seen(&app).await.len() == 1
    })
    .await;
    assert!(one, "{:?}", seen(&app).await);
    let last = seen(&app).await;
    let (last_id, last_name) = (
        user_id(&last[0].username),
        Username::parse(last[0].username.as_str()).unwrap(),
    );
    // The one left can be neither demoted nor disabled.
    let disable = UserCommand::Audit(Audit {
        status: UserStatus::Disabled,
        comment: Comment::parse("").unwrap(),
        release: None,
    });
    for command in [&demote, &disable] {
        let answer = execute_guarded(
            &users_a, &admins_a, &last_id, &last_name, command, &last, &by_admin,
        )
        .await;
        assert!(
            matches!(answer, Err(CommandError::Domain(DomainError::LastAdmin))),
            "{answer:?}"
        );
    }
    // Without the roster, the user aggregate refuses to take an admin out.
    let answer = users_a.execute(&last_id, &demote, &by_admin).await;
    assert!(
        matches!(
            answer,
            Err(CommandError::Domain(DomainError::ReleaseRequired))
        ),
        "{answer:?}"
    );
    // A demoted admin's login says so in its token.
    let demoted = if last[0].username == "admin" {
        ("second", "second-secret")
    } else {
        ("admin", "admin-password")
    };
    let (status, body) = login(&app, demoted.0, demoted.1).await;
    assert_eq!((status, &body["admin"]), (200, &json!(false)), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_that_kept_hashes_in_its_read_model_logs_in_after_the_upgrade() {
    let mut app = spawn_gantry().await;
    let hash = command::password::hash("veteran-secret".into())
        .await
        .expect("hash");
    let id = user_id("veteran");
    let data = json!({"username": "veteran", "password_hash": hash, "admin": false});
    app.publish_raw(
        "user",
        &id,
        raw_envelope("user", &id, "UserCreated", 1, data),
    )
    .await;
    let projected = eventually(Duration::from_secs(10), || async {
        login(&app, "veteran", "veteran-secret").await.0 == 200
    })
    .await;
    assert!(projected);

    // Put the schema back as the build before the credential store left it: hashes in
    // `users`, its checkpoint past the events, no credential store, one signing key,
    // no migration after 2 run.
    app.stop().await;
    let db = app.database().await;
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute(
            "ALTER TABLE credentials RENAME TO credentials_of_this_build;
             ALTER INDEX credentials_pkey RENAME TO credentials_of_this_build_pkey;
             ALTER INDEX credentials_user RENAME TO credentials_of_this_build_user;
             DROP TABLE users;
             CREATE TABLE users (
                 username text PRIMARY KEY, password_hash text NOT NULL, admin boolean NOT NULL,
                 email text NOT NULL, created_at timestamptz NOT NULL, last_seq bigint NOT NULL);
             CREATE TABLE token_signing_key (
                 id integer PRIMARY KEY CHECK (id = 1), key bytea NOT NULL);
             INSERT INTO token_signing_key SELECT 1, key FROM token_keys LIMIT 1;
             DROP TABLE token_keys;
             DROP TABLE personal_keys;
             DROP TABLE oauth_codes;
             DROP TABLE oauth_grants;
             DROP TABLE studio_codes;
             DROP TABLE outbox;
             DROP TABLE projection_rebuild;
             DROP TABLE epilogue_credentials;
             DELETE FROM refinery_schema_history WHERE version >= 3;",
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO users VALUES ('veteran', $1, false, '', now(), 3)",
            &[&hash],
        )
        .await
        .unwrap();
    let (before, _) = app.checkpoint("user_directory").await.unwrap();
    assert!(before > 0);

    app.restart(Roles::DEV).await;
    let upgraded = eventually(Duration::from_secs(20), || async {
        login(&app, "veteran", "veteran-secret").await.0 == 200
    })
    .await;
    assert!(
        upgraded,
        "{:?}",
        login(&app, "veteran", "veteran-secret").await
    );
    let columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'users'
               AND column_name = 'password_hash'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(columns, 0, "the read model holds no hash any more");
}
