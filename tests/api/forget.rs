//! Personal data can be forgotten: sealed in the log, erased from every read model, every
//! rebuild and every answer by `DELETE /admin/users/{username}/personal-data`, while the
//! account and its history stay.

use std::{sync::Arc, time::Duration};

use command::{
    EventStore, JetStreamStore, Repository,
    user::{DetailsChange, User, UserCommand},
    values::{Email, LdapUid, Phone, RealName},
};
use events::user::user_id;
use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{TestApp, contains, eventually, raw_envelope, spawn_gantry};

const PASSWORD: &str = "jimmy-secret-1";
const EMAIL: &str = "jimmy.forgotten@example.org";
const PHONE: &str = "+41 44 555 01 23";
const REAL_NAME: &str = "Jimmy Forgettable";
const LDAP_UID: &str = "jforget42";
const SECRETS: [&str; 4] = [EMAIL, PHONE, REAL_NAME, LDAP_UID];

/// The instance's event store as the server opens it: sealing with the instance's keys.
async fn keyed_store(app: &TestApp) -> JetStreamStore {
    let db = app.database().await;
    JetStreamStore::open(
        async_nats::connect(&app.settings.nats_url)
            .await
            .expect("nats"),
        &app.settings.instance,
        Duration::from_secs(600),
    )
    .await
    .expect("event store")
    .with_personal_keys(Arc::new(projection::personal::KeyStore::new(
        db.pool.clone(),
    )))
}

fn details(phone: &str, real_name: &str, ldap_uid: &str) -> UserCommand {
    UserCommand::ChangeDetails(DetailsChange {
        phone: Some(Some(Phone::parse(phone).expect("phone"))),
        real_name: Some(Some(RealName::parse(real_name).expect("real name"))),
        ldap_uid: Some(Some(LdapUid::parse(ldap_uid).expect("ldap uid"))),
    })
}

fn ctx() -> command::Context {
    command::Context {
        actor: "admin".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

/// `(status, body as text)`: a 204 has no body to read as JSON.
async fn send_text(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("request is answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// `(email, phone, real_name, ldap_uid)` of `username` in the user directory (`None` also
/// while the directory is being rebuilt and has no table yet).
async fn personal_columns(app: &TestApp, username: &str) -> Option<[String; 4]> {
    let db = app.database().await;
    let client = db.pool.get().await.expect("connection");
    client
        .query_opt(
            "SELECT email, phone, real_name, ldap_uid FROM users WHERE username = $1",
            &[&username],
        )
        .await
        .ok()
        .flatten()
        .map(|row| [row.get(0), row.get(1), row.get(2), row.get(3)])
}

/// Every row of every table of the instance's schema, as text.
async fn every_table_as_text(app: &TestApp) -> Vec<(String, String)> {
    let db = app.database().await;
    let client = db.pool.get().await.expect("connection");
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            &[&app.settings.instance],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(tables.iter().any(|t| t == "users"), "{tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let sql = format!("SELECT t::text FROM \"{table}\" AS t");
        for row in client.query(sql.as_str(), &[]).await.expect("dump") {
            rows.push((table.clone(), row.get(0)));
        }
    }
    rows
}

/// Stops everything, throws the user directory away (table and checkpoint), and starts
/// again: it is rebuilt from sequence 1.
async fn rebuild_user_directory(app: &mut TestApp) {
    let db = app.database().await;
    app.stop().await;
    let client = db.pool.get().await.expect("connection");
    client
        .batch_execute(
            "DROP TABLE users; DELETE FROM projection_checkpoint WHERE name = 'user_directory';",
        )
        .await
        .expect("drop the user directory");
    drop(client);
    app.restart(Roles::DEV).await;
}

fn forget_url(app: &TestApp, username: &str) -> String {
    app.url(&format!("/admin/users/{username}/personal-data"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_user_keeps_the_account_and_loses_the_personal_data() {
    let mut app = spawn_gantry().await;
    let mut answers: Vec<String> = Vec::new();
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({
                    "username": "jimmy", "password": PASSWORD, "email": EMAIL,
                    "virtualCluster": ["default"], "extension": {"team": "vision"}
                })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .send(app.admin(app.http.post(app.url("/api/v2/user"))).json(&json!({
            "username": "keeper", "password": "keeper-secret-1", "email": "keeper@example.org"
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = user_id("jimmy");
    let users = Repository::<User, _>::new(keyed_store(&app).await);
    users
        .execute(&id, &details(PHONE, REAL_NAME, LDAP_UID), &ctx())
        .await
        .expect("details");
    let shown = eventually(Duration::from_secs(10), || async {
        personal_columns(&app, "jimmy").await == Some(SECRETS.map(String::from))
    })
    .await;
    assert!(shown, "{:?}", personal_columns(&app, "jimmy").await);

    let (status, body) = app
        .send(app.admin(app.http.get(app.url("/api/v2/user/jimmy"))))
        .await;
    assert_eq!(
        (status, body["email"].as_str()),
        (200, Some(EMAIL)),
        "{body}"
    );

    // Sealed in the log from the start: no value in clear in any message.
    let log_before = app.whole_log().await;
    for message in &log_before {
        for secret in SECRETS.into_iter().chain(["keeper@example.org"]) {
            assert!(
                !contains(message, secret),
                "{secret:?} in {}",
                String::from_utf8_lossy(message)
            );
        }
    }

    // Only an admin forgets, in the admin door's envelope.
    let keeper = app.login("keeper", "keeper-secret-1", 600).await;
    let (status, body) = app.send(app.http.delete(forget_url(&app, "jimmy"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("Unauthorized")),
        "{body}"
    );
    let (status, body) = app
        .send(
            app.http
                .delete(forget_url(&app, "jimmy"))
                .bearer_auth("not-a-token"),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("Unauthorized")),
        "{body}"
    );
    let (status, body) = app
        .send(
            app.http
                .delete(forget_url(&app, "jimmy"))
                .bearer_auth(&keeper),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "Forbidden", "message": "only admins may use /admin"})
        )
    );
    let (status, body) = app
        .send(app.admin(app.http.delete(forget_url(&app, "nobody"))))
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "NotFound", "message": "no user named nobody"})
        )
    );
    let (status, body) = app
        .send(app.admin(app.http.delete(forget_url(&app, "no%20body"))))
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NotFound")));
    assert_eq!(
        personal_columns(&app, "jimmy").await,
        Some(SECRETS.map(String::from))
    );

    let (status, body) = send_text(app.admin(app.http.delete(forget_url(&app, "jimmy")))).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(
        personal_columns(&app, "jimmy").await,
        Some(Default::default()),
        "a write answers once the directory holds it"
    );
    // Again, with a trailing slash: nothing left to forget, nothing appended.
    let events_after_forget = app.events_of("user", &id).await;
    let url = format!("{}/", forget_url(&app, "jimmy"));
    let (status, body) = send_text(app.admin(app.http.delete(url))).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(
        app.events_of("user", &id).await.len(),
        events_after_forget.len()
    );
    let types: Vec<Value> = events_after_forget
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            json!("UserCreated"),
            json!("UserDetailsChanged"),
            json!("UserForgotten")
        ],
        "the log keeps every event"
    );
    assert_eq!(events_after_forget[2]["meta"]["actor"], "user:admin");

    // Data written after the forget is sealed under a fresh key, and survives a rebuild.
    users
        .execute(
            &id,
            &UserCommand::ChangeEmail(Some(Email::parse_address("jimmy.new@example.org").unwrap())),
            &ctx(),
        )
        .await
        .expect("new email");

    rebuild_user_directory(&mut app).await;
    let rebuilt = eventually(Duration::from_secs(20), || async {
        personal_columns(&app, "keeper").await.is_some()
            && personal_columns(&app, "jimmy")
                .await
                .is_some_and(|c| !c[0].is_empty())
    })
    .await;
    assert!(rebuilt, "the directory is back");
    assert_eq!(
        personal_columns(&app, "jimmy").await,
        Some([
            "jimmy.new@example.org".into(),
            String::new(),
            String::new(),
            String::new()
        ])
    );
    assert_eq!(
        personal_columns(&app, "keeper").await.map(|c| c[0].clone()),
        Some("keeper@example.org".into()),
        "another user's data opens as before"
    );

    // The account stays: the same password logs in, the other facts are there.
    let (status, body) = app
        .send(app.http.post(app.url("/api/v1/token")).json(&json!({
            "username": "jimmy", "password": PASSWORD
        })))
        .await;
    assert_eq!(status, 200, "{body}");
    answers.push(body.to_string());
    let user = projection::users::user_by_name(&app.database().await, "jimmy")
        .await
        .expect("query")
        .expect("jimmy still exists");
    assert_eq!(
        (
            user.admin,
            user.virtual_clusters,
            Value::Object(user.extension)
        ),
        (
            false,
            vec!["default".to_string()],
            json!({"team": "vision"})
        )
    );
    let (status, body) = app
        .send(app.admin(app.http.get(app.url("/api/v2/user/jimmy"))))
        .await;
    assert_eq!(
        (status, &body["email"], &body["virtualCluster"]),
        (200, &json!("jimmy.new@example.org"), &json!(["default"])),
        "{body}"
    );
    for path in [
        "/api/v2/user",
        "/api/v2/user/jimmy",
        "/admin/projections",
        "/admin/parked",
    ] {
        let (status, body) = app.send(app.admin(app.http.get(app.url(path)))).await;
        assert_eq!(status, 200, "{body}");
        answers.push(body.to_string());
    }
    let (_, body) = app
        .send(app.admin(app.http.get(app.url("/admin/parked"))))
        .await;
    assert_eq!(body, json!({"parked": []}));

    // None of it anywhere: not in a table of the instance, not in an answer, not in the
    // log's bytes.
    for (table, row) in every_table_as_text(&app).await {
        for secret in SECRETS {
            assert!(!row.contains(secret), "{secret:?} in {table}: {row}");
        }
    }
    for answer in &answers {
        for secret in SECRETS {
            assert!(!answer.contains(secret), "{secret:?} in {answer}");
        }
    }
    let log = app.whole_log().await;
    assert!(log.len() > log_before.len());
    for message in &log {
        for secret in SECRETS.into_iter().chain(["jimmy.new@example.org"]) {
            assert!(
                !contains(message, secret),
                "{secret:?} in {}",
                String::from_utf8_lossy(message)
            );
        }
    }
    // Every replay of the log reads them erased: the user's events, opened with the
    // instance's keys, hold none of them, and still hold everything else.
    let replayed = keyed_store(&app)
        .await
        .read_after("user", &id, 0)
        .await
        .expect("replay");
    assert_eq!(replayed.len(), 4, "created, details, forgotten, new email");
    for recorded in &replayed {
        let text = serde_json::to_string(&recorded.envelope).unwrap();
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
    assert_eq!(
        replayed[0].envelope.data["email"], "",
        "{:?}",
        replayed[0].envelope
    );
    assert_eq!(
        replayed[0].envelope.data["extension"],
        json!({"team": "vision"})
    );
    assert_eq!(replayed[3].envelope.data["email"], "jimmy.new@example.org");
    let db = app.database().await;
    let client = db.pool.get().await.expect("connection");
    let keys: Vec<(bool, bool)> = client
        .query(
            "SELECT key IS NULL, destroyed_at IS NOT NULL FROM personal_keys
             WHERE user_id = $1 ORDER BY created_at",
            &[&id],
        )
        .await
        .expect("keys")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        keys,
        [(true, true), (false, false)],
        "the first key destroyed, the fresh one live"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_of_older_logs_is_read_and_forgotten_in_the_read_models() {
    let mut app = spawn_gantry().await;
    let id = user_id("oldtimer");
    app.publish_raw(
        "user",
        &id,
        raw_envelope(
            "user",
            &id,
            "UserCreated",
            2,
            json!({"username": "oldtimer", "admin": false, "email": "old@example.org",
                   "phone": "+1 555 0100", "real_name": "Old Timer", "ldap_uid": "otimer"}),
        ),
    )
    .await;
    let read = eventually(Duration::from_secs(10), || async {
        personal_columns(&app, "oldtimer").await
            == Some([
                "old@example.org".into(),
                "+1 555 0100".into(),
                "Old Timer".into(),
                "otimer".into(),
            ])
    })
    .await;
    assert!(read, "{:?}", personal_columns(&app, "oldtimer").await);

    let (status, body) = send_text(app.admin(app.http.delete(forget_url(&app, "oldtimer")))).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(
        personal_columns(&app, "oldtimer").await,
        Some(Default::default())
    );
    rebuild_user_directory(&mut app).await;
    let rebuilt = eventually(Duration::from_secs(20), || async {
        app.checkpoint("user_directory")
            .await
            .is_some_and(|(seq, _)| seq >= 3)
            && personal_columns(&app, "oldtimer").await.is_some()
    })
    .await;
    assert!(rebuilt);
    assert_eq!(
        personal_columns(&app, "oldtimer").await,
        Some(Default::default()),
        "the forget blanks them again on every rebuild"
    );
}
