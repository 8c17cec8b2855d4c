//! Tokens judged by the user's current state: demotion, disabling, deletion, revocation,
//! the three spellings, another instance's key, and a configured signing key.

use std::time::Duration;

use command::{
    Repository,
    admins::{Admins, execute_guarded},
    user::{Audit, User, UserCommand},
    values::{Comment, Username},
};
use events::user::{UserStatus, user_id};
use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{TestApp, ctx, eventually, settings, spawn_gantry, spawn_with};

async fn create_user(app: &TestApp, username: &str, admin: bool) -> String {
    let (status, answer) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({
                    "username": username, "password": "a-secret-word", "admin": admin
                })),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    app.login(username, "a-secret-word", 3600).await
}

/// `GET /admin/projections` with `authorization` as the header.
async fn admin_call(app: &TestApp, authorization: &str) -> (u16, Value) {
    app.send(
        app.http
            .get(app.url("/admin/projections"))
            .header("Authorization", authorization),
    )
    .await
}

/// Writes `command` on user `username` as another process of the admin would, through
/// the admins roster.
async fn execute(app: &TestApp, username: &str, command: UserCommand) {
    let store = app.event_store().await;
    let users: Repository<User, _> = Repository::new(store.clone());
    let admins: Repository<Admins, _> = Repository::new(store);
    let name = Username::parse(username).unwrap();
    let seen = app.seen_admins().await;
    execute_guarded(
        &users,
        &admins,
        &user_id(username),
        &name,
        &command,
        &seen,
        &ctx("admin"),
    )
    .await
    .expect("the command is written");
}

/// Waits until `authorization` gets `status` from the admin door, and returns the body.
async fn until_status(app: &TestApp, authorization: &str, status: u16) -> Value {
    let got = eventually(Duration::from_secs(10), || async {
        admin_call(app, authorization).await.0 == status
    })
    .await;
    let (last, body) = admin_call(app, authorization).await;
    assert!(got, "expected {status}, still {last}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_judged_by_the_users_state_now() {
    let app = spawn_gantry().await;
    let token = create_user(&app, "second", true).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(admin_call(&app, &bearer).await.0, 200);

    // Demoted: the token still verifies, but its holder is no admin any more.
    execute(
        &app,
        "second",
        UserCommand::SetAdmin(command::user::AdminChange {
            admin: false,
            release: None,
        }),
    )
    .await;
    let body = until_status(&app, &bearer, 403).await;
    assert_eq!(
        body,
        json!({"error": "Forbidden", "message": "only admins may use /admin"})
    );

    // Disabled: the token is refused altogether.
    execute(
        &app,
        "second",
        UserCommand::Audit(Audit {
            status: UserStatus::Disabled,
            comment: Comment::parse("left").unwrap(),
            release: None,
        }),
    )
    .await;
    let body = until_status(&app, &bearer, 401).await;
    assert_eq!(body["message"], "the user is disabled", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_and_deleted_users_tokens_stop_working() {
    let app = spawn_gantry().await;
    let token = create_user(&app, "second", true).await;
    let bearer = format!("Bearer {token}");
    execute(
        &app,
        "second",
        UserCommand::RevokeTokens(command::user::Caller {
            username: Username::parse("second").unwrap(),
            admin: false,
        }),
    )
    .await;
    let body = until_status(&app, &bearer, 401).await;
    assert_eq!(body["message"], "token revoked", "{body}");
    // A token issued after the revocation works.
    let fresh = app.login("second", "a-secret-word", 3600).await;
    assert_eq!(admin_call(&app, &format!("Bearer {fresh}")).await.0, 200);

    // Deleted (an admin cannot be: demote first), then created again under the same
    // name: the old token belongs to someone who is gone.
    execute(
        &app,
        "second",
        UserCommand::SetAdmin(command::user::AdminChange {
            admin: false,
            release: None,
        }),
    )
    .await;
    execute(&app, "second", UserCommand::Delete).await;
    let body = until_status(&app, &format!("Bearer {fresh}"), 401).await;
    assert_eq!(body["message"], "invalid token", "{body}");
    let again = create_user(&app, "second", true).await;
    assert_eq!(admin_call(&app, &format!("Bearer {again}")).await.0, 200);
    assert_eq!(admin_call(&app, &format!("Bearer {fresh}")).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_spellings_and_no_other_instances_key() {
    let app = spawn_gantry().await;
    let token = app.admin_token.clone();
    for spelling in [
        format!("Bearer {token}"),
        format!("Token {token}"),
        token.clone(),
    ] {
        assert_eq!(admin_call(&app, &spelling).await.0, 200, "{spelling}");
    }
    let (status, body) = admin_call(&app, "Basic YWRtaW46YWRtaW4=").await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Authorization header is not a token");

    // The same user name at another instance, with that instance's key.
    let other = spawn_gantry().await;
    let (status, body) = admin_call(&other, &format!("Bearer {token}")).await;
    assert_eq!((status, &body["message"]), (401, &json!("invalid token")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_key_signs_without_logging_anyone_out() {
    let mut app = spawn_gantry().await;
    let before = app.admin_token.clone();
    app.stop().await;
    let mut configured = app.settings.clone();
    configured.token_key = Some("a key from the configuration, long enough".into());
    let app2 = spawn_with(configured, Roles::DEV).await;
    assert_eq!(admin_call(&app2, &format!("Bearer {before}")).await.0, 200);
    let header = jsonwebtoken::decode_header(&app2.admin_token).expect("a JWT");
    assert!(
        header.kid.as_deref().is_some_and(|k| k.starts_with("cfg-")),
        "{header:?}"
    );
    // Another instance given the same configured key still refuses: the token names the
    // instance that issued it.
    let mut elsewhere = settings(&crate::helpers::fresh_instance());
    elsewhere.token_key = app2.settings.token_key.clone();
    let other = spawn_with(elsewhere, Roles::DEV).await;
    let (status, _) = admin_call(&other, &format!("Bearer {}", app2.admin_token)).await;
    assert_eq!(status, 401);
}
