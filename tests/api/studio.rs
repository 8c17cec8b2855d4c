//! The studio door's accounts (`/rest-auth/*`), in django-rest-auth's shapes: every endpoint
//! with its body and DRF's errors, and the flows of its clients.

use std::time::Duration;

use events::user::{UserStatus, user_id};
use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, GantryProcess, TestApp, eventually, free_port, fresh_instance,
    remove_instance, settings, spawn_gantry, spawn_with,
};

const PASSWORD: &str = "tr0ub4dor&3x";
const INVALID_TOKEN: &str = "Invalid token.";

/// A POST to `path` with a JSON body, and a key if given.
async fn post(app: &TestApp, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = app.http.post(app.url(path)).json(&body);
    if let Some(key) = key {
        request = request.header("authorization", format!("Token {key}"));
    }
    app.send(request).await
}

/// `GET /rest-auth/user/` with `authorization` as the header.
async fn me(app: &TestApp, authorization: Option<&str>) -> (u16, Value) {
    let mut request = app.http.get(app.url("/rest-auth/user/"));
    if let Some(header) = authorization {
        request = request.header("authorization", header);
    }
    app.send(request).await
}

/// Logs in and returns the key.
async fn key_of(app: &TestApp, username: &str, password: &str) -> String {
    let (status, body) = post(
        app,
        "/rest-auth/login/",
        json!({ "username": username, "password": password }),
        None,
    )
    .await;
    assert_eq!(status, 200, "login of {username}: {body}");
    let key = body["key"].as_str().expect("key").to_string();
    assert_eq!(body, json!({ "key": key }));
    key
}

/// A user made at the OpenPAI door.
async fn pai_user(app: &TestApp, username: &str, password: &str, email: &str) {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({
                    "username": username, "password": password, "email": email
                })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn detail(text: &str) -> Value {
    json!({ "detail": text })
}

fn field(name: &str, messages: &[&str]) -> Value {
    json!({ name: messages })
}

/// An admin's approval, as any door's admin endpoint records it (`UserAudited`).
async fn approve(app: &TestApp, username: &str) {
    audit(app, username, UserStatus::Approved).await
}

/// An admin's audit of `username` to `status` through the edge door's admin endpoint,
/// which answers once every door of this process judges the user by it.
async fn audit(app: &TestApp, username: &str, status: UserStatus) {
    let db = app.database().await;
    let number = projection::users::user_by_name(&db, username)
        .await
        .expect("user directory")
        .unwrap_or_else(|| panic!("{username} is in the user directory"))
        .number;
    let (status_code, login) = app
        .send(
            app.http
                .post(app.url("/v1/authorization"))
                .json(&json!({ "user": ADMIN, "password": ADMIN_PASSWORD })),
        )
        .await;
    assert_eq!(status_code, 200, "admin login: {login}");
    let token = login["token"].as_str().expect("token");
    let code = match status {
        UserStatus::Approved => 0,
        UserStatus::Disabled => 1,
        _ => 3,
    };
    assert_eq!(
        app.send(
            app.http
                .put(app.url(&format!("/v1/admin/user/{number}")))
                .bearer_auth(token)
                .json(&json!({ "status": code })),
        )
        .await,
        (200, json!({"code": 200, "message": "success"})),
        "audit of {username}"
    );
}

/// The outbox's mails to `recipient`.
async fn mails_to(app: &TestApp, recipient: &str) -> Vec<projection::studio::Mail> {
    let db = app.database().await;
    projection::studio::outbox(&db.pool)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|m| m.recipient == recipient)
        .collect()
}

/// The value of line `name: value` of a mail's body.
fn line<'a>(body: &'a str, name: &str) -> &'a str {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_of_another_door_logs_in_with_username_or_email() {
    let app = spawn_gantry().await;
    pai_user(&app, "zqh", PASSWORD, "151250206@smail.nju.edu.cn").await;

    let key = key_of(&app, "zqh", PASSWORD).await;
    let (status, body) = me(&app, Some(&format!("Token {key}"))).await;
    assert_eq!(status, 200, "{body}");
    let pk = body["pk"].as_i64().expect("pk is a number");
    assert!(pk > 0);
    assert_eq!(
        body,
        json!({
            "pk": pk, "username": "zqh", "email": "151250206@smail.nju.edu.cn",
            "first_name": "", "last_name": ""
        })
    );
    // The same number for the same user at every login.
    let by_email = post(
        &app,
        "/rest-auth/login",
        json!({ "email": "151250206@SMAIL.nju.edu.cn", "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(by_email.0, 200, "{}", by_email.1);
    let other_key = by_email.1["key"].as_str().unwrap().to_string();
    assert_eq!(
        me(&app, Some(&format!("Token {other_key}"))).await.1["pk"],
        pk
    );
    // A form body, as a browser's form sends it; and the bare key, and Bearer.
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/rest-auth/login/"))
                .form(&[("username", "zqh"), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&app, Some(&key)).await.0, 200);
    assert_eq!(me(&app, Some(&format!("Bearer {key}"))).await.0, 200);

    let unable = field(
        "non_field_errors",
        &["Unable to log in with provided credentials."],
    );
    for body in [
        json!({ "username": "zqh", "password": "wrong password" }),
        json!({ "username": "nobody", "password": PASSWORD }),
        json!({ "email": "nobody@nju.edu.cn", "password": PASSWORD }),
    ] {
        assert_eq!(
            post(&app, "/rest-auth/login/", body.clone(), None).await,
            (400, unable.clone()),
            "{body}"
        );
    }
    let cases = [
        (
            json!({ "username": "zqh" }),
            field("password", &["This field is required."]),
        ),
        (
            json!({ "username": "zqh", "password": "" }),
            field("password", &["This field may not be blank."]),
        ),
        (
            json!({ "password": PASSWORD }),
            field(
                "non_field_errors",
                &["Must include either \"username\" or \"email\" and \"password\"."],
            ),
        ),
        (
            json!({ "email": "not-an-address", "password": PASSWORD }),
            field("email", &["Enter a valid email address."]),
        ),
        (
            json!({ "username": ["zqh"], "password": null }),
            json!({ "username": ["Not a valid string."], "password": ["This field may not be null."] }),
        ),
        (
            json!({ "username": "zq\u{0}h", "password": PASSWORD }),
            field("username", &["This field contains a control character."]),
        ),
        (
            json!(["zqh"]),
            field(
                "non_field_errors",
                &["Invalid data. Expected a dictionary, but got list."],
            ),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            post(&app, "/rest-auth/login/", body.clone(), None).await,
            (400, expected),
            "{body}"
        );
    }
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/rest-auth/login/"))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("JSON parse error - ")),
        "{body}"
    );
    let response = app
        .http
        .get(app.url("/rest-auth/login/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        detail("Method \"GET\" not allowed.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_checked_as_token_authentication_checks_them() {
    let app = spawn_gantry().await;
    let response = app
        .http
        .get(app.url("/rest-auth/user/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Token");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        detail("Authentication credentials were not provided.")
    );
    for (header, expected) in [
        ("Token", "Invalid token header. No credentials provided."),
        (
            "Token a b",
            "Invalid token header. Token string should not contain spaces.",
        ),
        (
            "Token ec38605dc9111748d670ebf09edae8074014bede",
            INVALID_TOKEN,
        ),
    ] {
        assert_eq!(
            me(&app, Some(header)).await,
            (401, detail(expected)),
            "{header}"
        );
    }
    // Every endpoint that needs a key says so first, whatever the method.
    for path in ["/rest-auth/password/change/", "/rest-auth/user/"] {
        for method in [reqwest::Method::POST, reqwest::Method::PATCH] {
            assert_eq!(
                app.send(
                    app.http
                        .request(method.clone(), app.url(path))
                        .json(&json!({}))
                )
                .await,
                (401, detail("Authentication credentials were not provided.")),
                "{method} {path}"
            );
        }
    }
    // Logout without a key has nothing to revoke; with a bad one it is refused.
    assert_eq!(
        post(&app, "/rest-auth/logout/", json!({}), None).await,
        (200, detail("Successfully logged out."))
    );
    assert_eq!(
        post(&app, "/rest-auth/logout/", json!({}), Some("nonsense")).await,
        (401, detail(INVALID_TOKEN))
    );
    let (status, body) = app.send(app.http.get(app.url("/rest-auth/logout/"))).await;
    assert_eq!((status, body), (405, detail("Method \"GET\" not allowed.")));
    assert_eq!(
        app.send(app.http.get(app.url("/rest-auth/nothing/"))).await,
        (404, detail("Not found."))
    );
    // The endpoints that only take a POST say so to a GET, with and without the slash.
    for path in [
        "/rest-auth/login",
        "/rest-auth/password/reset/",
        "/rest-auth/password/reset/confirm",
        "/rest-auth/registration/",
        "/rest-auth/registration/verify-email",
    ] {
        assert_eq!(
            app.send(app.http.get(app.url(path))).await,
            (405, detail("Method \"GET\" not allowed.")),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_user_waits_for_approval_then_logs_in_and_out() {
    let app = spawn_gantry().await;
    let (status, body) = post(
        &app,
        "/rest-auth/registration/",
        json!({
            "username": "newbie", "email": "newbie@nju.edu.cn",
            "password1": PASSWORD, "password2": PASSWORD
        }),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            201,
            detail(
                "Verification e-mail sent. The account can log in once an administrator approves it."
            )
        )
    );
    // Pending: no login, whatever the password.
    let waiting = field(
        "non_field_errors",
        &["User account is waiting for approval."],
    );
    for password in [PASSWORD, "a guess at it"] {
        assert_eq!(
            post(
                &app,
                "/rest-auth/login/",
                json!({ "username": "newbie", "password": password }),
                None
            )
            .await,
            (400, waiting.clone())
        );
    }

    // The address is confirmed with the key of the mail; the key works once.
    let mails = mails_to(&app, "newbie@nju.edu.cn").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(
        mails[0].subject,
        "[Gantry] Please Confirm Your E-mail Address"
    );
    let confirmation = line(&mails[0].body, "key").to_string();
    assert_eq!(
        post(
            &app,
            "/rest-auth/registration/verify-email",
            json!({ "key": confirmation }),
            None
        )
        .await,
        (200, detail("ok"))
    );
    assert_eq!(
        post(
            &app,
            "/rest-auth/registration/verify-email/",
            json!({ "key": confirmation }),
            None
        )
        .await,
        (404, detail("Not found."))
    );
    assert_eq!(
        post(
            &app,
            "/rest-auth/registration/verify-email/",
            json!({}),
            None
        )
        .await,
        (400, field("key", &["This field is required."]))
    );
    let db = app.database().await;
    assert!(
        projection::studio::email_confirmed_at(&db.pool, &user_id("newbie"), "newbie@nju.edu.cn")
            .await
            .unwrap()
            .is_some()
    );
    // Confirming approves nobody.
    assert_eq!(
        post(
            &app,
            "/rest-auth/login/",
            json!({ "username": "newbie", "password": PASSWORD }),
            None
        )
        .await,
        (400, waiting)
    );

    approve(&app, "newbie").await;
    let key = key_of(&app, "newbie", PASSWORD).await;
    let (status, body) = me(&app, Some(&format!("Token {key}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "newbie");
    assert_eq!(body["email"], "newbie@nju.edu.cn");
    // The same user at the OpenPAI door.
    let token = app.login("newbie", PASSWORD, 60).await;
    assert!(!token.is_empty());

    assert_eq!(
        post(&app, "/rest-auth/logout/", json!({}), Some(&key)).await,
        (200, detail("Successfully logged out."))
    );
    assert_eq!(
        me(&app, Some(&format!("Token {key}"))).await,
        (401, detail(INVALID_TOKEN))
    );
    // A new login works again.
    let again = key_of(&app, "newbie", PASSWORD).await;
    assert_eq!(me(&app, Some(&format!("Token {again}"))).await.0, 200);

    // Disabled: the key stops working at once, and no login, whatever the password.
    audit(&app, "newbie", UserStatus::Disabled).await;
    assert_eq!(
        me(&app, Some(&format!("Token {again}"))).await,
        (401, detail("User inactive or deleted."))
    );
    let disabled = field("non_field_errors", &["User account is disabled."]);
    for password in [PASSWORD, "a guess at it"] {
        assert_eq!(
            post(
                &app,
                "/rest-auth/login/",
                json!({ "username": "newbie", "password": password }),
                None
            )
            .await,
            (400, disabled.clone())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_says_django_s_validation_messages() {
    let app = spawn_gantry().await;
    pai_user(&app, "taken", PASSWORD, "Taken@nju.edu.cn").await;
    let register = |body: Value| {
        let app = &app;
        async move { post(app, "/rest-auth/registration/", body, None).await }
    };
    assert_eq!(
        register(json!({})).await,
        (
            400,
            json!({
                "username": ["This field is required."],
                "password1": ["This field is required."],
                "password2": ["This field is required."],
            })
        )
    );
    assert_eq!(
        register(json!({
            "username": "taken", "email": "taken@NJU.edu.cn",
            "password1": "1234", "password2": "1234"
        }))
        .await,
        (
            400,
            json!({
                "username": ["A user with that username already exists."],
                "email": ["A user is already registered with this e-mail address."],
                "password1": [
                    "This password is too short. It must contain at least 8 characters.",
                    "This password is too common.",
                    "This password is entirely numeric."
                ],
            })
        )
    );
    assert_eq!(
        register(json!({
            "username": "a b", "email": "nope",
            "password1": "password", "password2": "password"
        }))
        .await,
        (
            400,
            json!({
                "username": ["Enter a valid username. This value may contain only letters, numbers, and @/./-/_ characters."],
                "email": ["Enter a valid email address."],
                "password1": ["This password is too common."],
            })
        )
    );
    assert_eq!(
        register(json!({
            "username": "fresh", "password1": "48213907", "password2": "48213907"
        }))
        .await,
        (
            400,
            field("password1", &["This password is entirely numeric."])
        )
    );
    assert_eq!(
        register(json!({
            "username": "fresh", "password1": PASSWORD, "password2": "something else"
        }))
        .await,
        (
            400,
            field(
                "non_field_errors",
                &["The two password fields didn't match."]
            )
        )
    );
    // The admin's name is taken too; a user without an address gets no mail.
    assert_eq!(
        register(json!({
            "username": "admin", "password1": PASSWORD, "password2": PASSWORD
        }))
        .await,
        (
            400,
            field("username", &["A user with that username already exists."])
        )
    );
    assert_eq!(
        register(json!({
            "username": "fresh", "password1": PASSWORD, "password2": PASSWORD
        }))
        .await,
        (
            201,
            detail("The account can log in once an administrator approves it.")
        )
    );
    let db = app.database().await;
    assert!(
        projection::studio::outbox(&db.pool)
            .await
            .unwrap()
            .is_empty()
    );
    let events = app.events_of("user", &user_id("fresh")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "UserRegistered");
    assert_eq!(events[0]["meta"]["actor"], "user:fresh");
    assert!(!events[0].to_string().contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_voids_the_old_key() {
    let app = spawn_gantry().await;
    pai_user(&app, "jimmy", PASSWORD, "jimmy@nju.edu.cn").await;
    let key = key_of(&app, "jimmy", PASSWORD).await;
    let change = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move { post(app, "/rest-auth/password/change/", body, Some(&key)).await }
    };
    const NEW: &str = "correct horse battery";
    assert_eq!(
        change(json!({})).await,
        (
            400,
            json!({
                "old_password": ["This field is required."],
                "new_password1": ["This field is required."],
                "new_password2": ["This field is required."],
            })
        )
    );
    assert_eq!(
        change(json!({ "old_password": "not it", "new_password1": NEW, "new_password2": NEW }))
            .await,
        (
            400,
            field(
                "old_password",
                &["Your old password was entered incorrectly. Please enter it again."]
            )
        )
    );
    assert_eq!(
        change(json!({ "old_password": PASSWORD, "new_password1": NEW, "new_password2": "other" }))
            .await,
        (
            400,
            field("new_password2", &["The two password fields didn't match."])
        )
    );
    assert_eq!(
        change(json!({ "old_password": PASSWORD, "new_password1": "qwerty", "new_password2": "qwerty" }))
            .await,
        (
            400,
            field(
                "new_password2",
                &[
                    "This password is too short. It must contain at least 8 characters.",
                    "This password is too common."
                ]
            )
        )
    );
    assert_eq!(
        change(json!({ "old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW }))
            .await,
        (200, detail("New password has been saved."))
    );
    assert_eq!(
        me(&app, Some(&format!("Token {key}"))).await,
        (401, detail(INVALID_TOKEN))
    );
    assert_eq!(
        post(
            &app,
            "/rest-auth/login/",
            json!({ "username": "jimmy", "password": PASSWORD }),
            None
        )
        .await,
        (
            400,
            field(
                "non_field_errors",
                &["Unable to log in with provided credentials."]
            )
        )
    );
    let key = key_of(&app, "jimmy", NEW).await;
    assert_eq!(me(&app, Some(&format!("Token {key}"))).await.0, 200);
    let events = app.events_of("user", &user_id("jimmy")).await;
    assert_eq!(events.last().unwrap()["type"], "PasswordChanged");
    assert_eq!(events.last().unwrap()["meta"]["actor"], "user:jimmy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_is_reset_with_the_code_of_the_mail() {
    let app = spawn_gantry().await;
    pai_user(&app, "jimmy", PASSWORD, "jimmy@nju.edu.cn").await;
    let old_key = key_of(&app, "jimmy", PASSWORD).await;
    let sent = detail("Password reset e-mail has been sent.");

    assert_eq!(
        post(
            &app,
            "/rest-auth/password/reset/",
            json!({ "email": "Jimmy@nju.edu.cn" }),
            None
        )
        .await,
        (200, sent.clone())
    );
    // The same answer for an address nobody holds, and no mail.
    assert_eq!(
        post(
            &app,
            "/rest-auth/password/reset",
            json!({ "email": "nobody@nju.edu.cn" }),
            None
        )
        .await,
        (200, sent.clone())
    );
    let db = app.database().await;
    let outbox = projection::studio::outbox(&db.pool).await.unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let mail = &outbox[0];
    assert_eq!(mail.recipient, "jimmy@nju.edu.cn");
    assert_eq!(mail.subject, "Password reset on Gantry");
    let uid = line(&mail.body, "uid").to_string();
    let token = line(&mail.body, "token").to_string();
    assert!(mail.body.contains("jimmy"));
    assert_eq!(token.len(), 64);
    assert_eq!(
        post(&app, "/rest-auth/password/reset/", json!({}), None).await,
        (400, field("email", &["This field is required."]))
    );
    assert_eq!(
        post(
            &app,
            "/rest-auth/password/reset/",
            json!({ "email": "nope" }),
            None
        )
        .await,
        (400, field("email", &["Enter a valid email address."]))
    );

    const NEW: &str = "correct horse battery";
    let confirm = |uid: &str, token: &str, new1: &str, new2: &str| {
        let body =
            json!({ "uid": uid, "token": token, "new_password1": new1, "new_password2": new2 });
        let app = &app;
        async move { post(app, "/rest-auth/password/reset/confirm/", body, None).await }
    };
    assert_eq!(
        post(&app, "/rest-auth/password/reset/confirm/", json!({}), None).await,
        (
            400,
            json!({
                "new_password1": ["This field is required."],
                "new_password2": ["This field is required."],
                "uid": ["This field is required."],
                "token": ["This field is required."],
            })
        )
    );
    assert_eq!(
        confirm("MTIzNDU2Nzg5", &token, NEW, NEW).await,
        (400, field("uid", &["Invalid value"]))
    );
    assert_eq!(
        confirm("!!", &token, NEW, NEW).await,
        (400, field("uid", &["Invalid value"]))
    );
    assert_eq!(
        confirm(&uid, &token, NEW, "other").await,
        (
            400,
            field("new_password2", &["The two password fields didn't match."])
        )
    );
    assert_eq!(
        confirm(&uid, "0123", NEW, NEW).await,
        (400, field("token", &["Invalid value"]))
    );
    // Another user's uid does not take this code.
    let admin_uid = {
        let key = key_of(&app, "admin", ADMIN_PASSWORD).await;
        let pk = me(&app, Some(&format!("Token {key}"))).await.1["pk"]
            .as_i64()
            .unwrap();
        // Django's urlsafe_base64_encode of the number's digits.
        let digits = pk.to_string();
        base64url(digits.as_bytes())
    };
    assert_eq!(
        confirm(&admin_uid, &token, NEW, NEW).await,
        (400, field("token", &["Invalid value"]))
    );
    assert_eq!(
        confirm(&uid, &token, NEW, NEW).await,
        (
            200,
            detail("Password has been reset with the new password.")
        )
    );
    // Used once.
    assert_eq!(
        confirm(&uid, &token, "another good one", "another good one").await,
        (400, field("token", &["Invalid value"]))
    );
    assert_eq!(
        me(&app, Some(&format!("Token {old_key}"))).await,
        (401, detail(INVALID_TOKEN))
    );
    key_of(&app, "jimmy", NEW).await;
    let events = app.events_of("user", &user_id("jimmy")).await;
    assert_eq!(events.last().unwrap()["type"], "PasswordReset");
    for event in &events {
        assert!(!event.to_string().contains(&token), "{event}");
    }
}

/// URL-safe base64 without padding, as Django's `urlsafe_base64_encode`.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_changes_their_name_and_address() {
    let app = spawn_gantry().await;
    pai_user(&app, "zqh", PASSWORD, "zqh@nju.edu.cn").await;
    pai_user(&app, "other", PASSWORD, "other@nju.edu.cn").await;
    let key = key_of(&app, "zqh", PASSWORD).await;
    let authorization = format!("Token {key}");
    let pk = me(&app, Some(&authorization)).await.1["pk"].clone();
    let send = |method: reqwest::Method, body: Value| {
        let app = &app;
        let authorization = authorization.clone();
        async move {
            app.send(
                app.http
                    .request(method, app.url("/rest-auth/user/"))
                    .header("authorization", authorization)
                    .json(&body),
            )
            .await
        }
    };

    let (status, body) = send(
        reqwest::Method::PUT,
        json!({ "pk": 999, "username": "zqh", "email": "zqh@nju.edu.cn",
                "first_name": "Qihang", "last_name": "Zhu" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "pk": pk, "username": "zqh", "email": "zqh@nju.edu.cn",
                "first_name": "Qihang", "last_name": "Zhu" })
    );
    let (status, body) = send(
        reqwest::Method::PATCH,
        json!({ "email": "ZQH@smail.nju.edu.cn", "first_name": "Qi Hang" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "pk": pk, "username": "zqh", "email": "ZQH@smail.nju.edu.cn",
                "first_name": "Qi Hang", "last_name": "Zhu" })
    );
    assert_eq!(me(&app, Some(&authorization)).await.1, body);

    let cases = [
        (
            json!({ "username": "renamed" }),
            field("username", &["The username cannot be changed."]),
        ),
        (
            json!({ "email": "OTHER@nju.edu.cn" }),
            field(
                "email",
                &["A user is already registered with this e-mail address."],
            ),
        ),
        (
            json!({ "email": "nope", "first_name": "x".repeat(31) }),
            json!({
                "email": ["Enter a valid email address."],
                "first_name": ["Ensure this field has no more than 30 characters."],
            }),
        ),
        (
            json!({ "first_name": "x".repeat(30), "last_name": "y".repeat(100) }),
            field(
                "non_field_errors",
                &["The first and last name together must have no more than 128 characters."],
            ),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            send(reqwest::Method::PATCH, request.clone()).await,
            (400, expected),
            "{request}"
        );
    }
    let (status, body) = app
        .send(
            app.http
                .delete(app.url("/rest-auth/user"))
                .header("authorization", format!("Token {key}")),
        )
        .await;
    assert_eq!(
        (status, body),
        (405, detail("Method \"DELETE\" not allowed."))
    );
    // Blank clears the address.
    let (status, body) = send(reqwest::Method::PATCH, json!({ "email": "" })).await;
    assert_eq!((status, body["email"].clone()), (200, json!("")));

    let types: Vec<Value> = app
        .events_of("user", &user_id("zqh"))
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("UserCreated"),
            json!("UserDetailsChanged"),
            json!("UserEmailChanged"),
            json!("UserDetailsChanged"),
            json!("UserEmailChanged"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_throttled_in_drf_s_words() {
    let mut settings = settings(&fresh_instance());
    settings.login_max_failures = 2;
    settings.login_lockout_ms = 1000;
    let app = spawn_with(settings, Roles::DEV).await;
    pai_user(&app, "jimmy", PASSWORD, "jimmy@nju.edu.cn").await;
    let attempt = |password: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/rest-auth/login/"))
                .json(&json!({ "email": "jimmy@nju.edu.cn", "password": password }))
                .send()
                .await
                .expect("answered")
        }
    };
    for _ in 0..2 {
        assert_eq!(attempt("wrong password").await.status(), 400);
    }
    // Locked now, even for the right password, until the lock passes.
    let response = attempt(PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        detail("Request was throttled. Expected available in 1 second.")
    );
    let unlocked = eventually(Duration::from_secs(5), || async {
        attempt(PASSWORD).await.status() == 200
    })
    .await;
    assert!(unlocked);
}

/// Removes an instance's stream and schema when dropped, pass or fail.
struct Instance(gantry::Settings);

impl Drop for Instance {
    fn drop(&mut self) {
        remove_instance(&self.0);
    }
}

/// The whole log of a real `gantry dev` process names the reset mail's recipient and
/// subject, and holds neither the code nor a password.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_names_the_mail_but_holds_no_code() {
    let instance = Instance(settings(&fresh_instance()));
    let settings = &instance.0;
    let log_path = std::env::temp_dir().join(format!("gantry-{}.log", settings.instance));
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("dev")
        .env("GANTRY_INSTANCE", &settings.instance)
        .env("GANTRY_NATS_URL", &settings.nats_url)
        .env("GANTRY_DATABASE_URL", &settings.database_url)
        .env("GANTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("GANTRY_ADMIN_USER", ADMIN)
        .env("GANTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // Everything down to debug, the database driver's parameters included.
        .env("RUST_LOG", "debug")
        .env_remove("KUBECONFIG")
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("gantry starts");
    let _process = GantryProcess {
        child,
        base: Some(base.clone()),
    };
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value, key: Option<String>| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(key) = key {
            request = request.header("authorization", format!("Token {key}"));
        }
        async move {
            let response = request.send().await.ok()?;
            let status = response.status().as_u16();
            Some((status, response.json::<Value>().await.ok()?))
        }
    };
    let login = || {
        post(
            "/rest-auth/login/",
            json!({ "username": ADMIN, "password": ADMIN_PASSWORD }),
            None,
        )
    };
    let up = eventually(Duration::from_secs(20), || async {
        login().await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert!(up, "gantry dev answers");
    let admin_key = login()
        .await
        .and_then(|(_, body)| body["key"].as_str().map(str::to_string));
    let created = http
        .post(format!("{base}/api/v2/user"))
        .bearer_auth(admin_key.clone().unwrap_or_default())
        .json(&json!({ "username": "jimmy", "password": PASSWORD, "email": "jimmy@nju.edu.cn" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 201);
    assert_eq!(
        post(
            "/rest-auth/password/reset/",
            json!({ "email": "jimmy@nju.edu.cn" }),
            None
        )
        .await,
        Some((200, detail("Password reset e-mail has been sent.")))
    );
    let db = projection::Database::connect(&settings.database_url, &settings.instance)
        .await
        .expect("database");
    let outbox = projection::studio::outbox(&db.pool).await.expect("outbox");
    let body = &outbox.first().expect("a mail").body;
    let (uid, token) = (line(body, "uid"), line(body, "token"));
    const NEW: &str = "correct horse battery";
    assert_eq!(
        post(
            "/rest-auth/password/reset/confirm/",
            json!({ "uid": uid, "token": token, "new_password1": NEW, "new_password2": NEW }),
            None
        )
        .await,
        Some((
            200,
            detail("Password has been reset with the new password.")
        ))
    );
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let named = eventually(Duration::from_secs(5), || async {
        read().lines().any(|l| {
            l.contains("mail put in the outbox")
                && l.contains("jimmy@nju.edu.cn")
                && l.contains("Password reset on Gantry")
        })
    })
    .await;
    let text = read();
    if std::env::var_os("KEEP_LOG").is_none() {
        let _ = std::fs::remove_file(&log_path);
    }
    assert!(named, "no line names the mail:\n{text}");
    for secret in [token, NEW, PASSWORD, ADMIN_PASSWORD] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}
