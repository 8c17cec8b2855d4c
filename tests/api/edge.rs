//! The edge door's user management: login, refresh, logout and who-am-I; self-registration
//! waiting for an admin's audit; an admin's list, sub-users, delete and reset; every answer
//! in the edge envelope.

use events::user::user_id;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use gantry::Roles;

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, TestApp, fresh_instance, settings, spawn_gantry, spawn_with,
};

/// How a request carries its token: the three spellings the door accepts.
#[derive(Clone, Copy, Debug)]
enum Spelling {
    Bearer,
    Token,
    Bare,
}

fn with_token(request: RequestBuilder, token: &str, spelling: Spelling) -> RequestBuilder {
    let value = match spelling {
        Spelling::Bearer => format!("Bearer {token}"),
        Spelling::Token => format!("Token {token}"),
        Spelling::Bare => token.to_string(),
    };
    request.header("Authorization", value)
}

fn request(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.http.request(method, app.url(path))
}

/// A request carrying `token` as `Bearer`.
fn authed(app: &TestApp, method: Method, path: &str, token: &str) -> RequestBuilder {
    with_token(request(app, method, path), token, Spelling::Bearer)
}

fn ok(message: &str) -> Value {
    json!({"code": 200, "message": message})
}

fn refused(code: u16, message: &str) -> Value {
    json!({"code": code, "message": message})
}

async fn login(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    app.send(
        request(app, Method::POST, "/v1/authorization")
            .json(&json!({"user": user, "password": password})),
    )
    .await
}

/// Logs in and returns the access and refresh tokens.
async fn tokens(app: &TestApp, user: &str, password: &str) -> (String, String) {
    let (status, body) = login(app, user, password).await;
    assert_eq!(status, 200, "login of {user}: {body}");
    (
        body["token"].as_str().expect("token").to_string(),
        body["refreshToken"]
            .as_str()
            .expect("refresh token")
            .to_string(),
    )
}

async fn admin_token(app: &TestApp) -> String {
    tokens(app, ADMIN, ADMIN_PASSWORD).await.0
}

/// An admin creates an approved sub-user and gets its id.
async fn create_sub_user(app: &TestApp, admin: &str, body: Value) -> i64 {
    let (status, answer) = app
        .send(authed(app, Method::POST, "/v1/admin/user", admin).json(&body))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["code"], &answer["message"]),
        (&json!(200), &json!("success"))
    );
    answer["data"]["id"].as_i64().expect("the new user's id")
}

async fn list(app: &TestApp, admin: &str, query: &str) -> Value {
    let (status, body) = app
        .send(authed(
            app,
            Method::GET,
            &format!("/v1/admin/user{query}"),
            admin,
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The list's row of `user`.
async fn row_of(app: &TestApp, admin: &str, user: &str) -> Value {
    let body = list(app, admin, "?pageSize=0").await;
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|row| row["user"] == user)
        .unwrap_or_else(|| panic!("{user} is listed: {body}"))
        .clone()
}

async fn info(app: &TestApp, token: &str, spelling: Spelling) -> (u16, Value) {
    app.send(with_token(
        request(app, Method::GET, "/v1/authorization"),
        token,
        spelling,
    ))
    .await
}

fn event_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_user_waits_for_approval_then_logs_in_and_out() {
    let app = spawn_gantry().await;
    let registration = json!({
        "user": "u1", "password": "xxX@1234", "phone": "12345678910",
        "realName": "hello", "isAdmin": true
    });
    let register = || request(&app, Method::POST, "/v1/user").json(&registration);
    assert_eq!(app.send(register()).await, (200, ok("success")));
    assert_eq!(
        app.send(register()).await,
        (409, refused(409, "User u1 already exists."))
    );

    let waiting = (
        403,
        refused(403, "The user is waiting for an admin's approval."),
    );
    assert_eq!(login(&app, "u1", "xxX@1234").await, waiting);
    assert_eq!(login(&app, "u1", "a wrong guess").await, waiting);
    let incorrect = (401, refused(401, "Incorrect user or password."));
    assert_eq!(login(&app, "ghost", "xxX@1234").await, incorrect);
    assert_eq!(login(&app, ADMIN, "a wrong guess").await, incorrect);

    let admin = admin_token(&app).await;
    let row = row_of(&app, &admin, "u1").await;
    let id = row["id"].as_i64().expect("numeric id");
    assert!(id > 0, "{row}");
    assert!(row["createTime"].as_i64().unwrap() > 1_700_000_000, "{row}");
    assert_eq!(row["createTime"], row["updateTime"], "{row}");
    assert_eq!(
        row,
        json!({
            "id": id, "user": "u1", "status": 3, "realName": "hello", "phone": "12345678910",
            "role": 4, "createTime": row["createTime"], "updateTime": row["updateTime"]
        })
    );

    let (status, body) = app
        .send(
            authed(&app, Method::PUT, &format!("/v1/admin/user/{id}"), &admin)
                .json(&json!({"status": 0, "comment": "welcome"})),
        )
        .await;
    assert_eq!((status, body), (200, ok("success")));
    let events = app.events_of("user", &user_id("u1")).await;
    assert_eq!(event_types(&events), ["UserRegistered", "UserAudited"]);
    assert_eq!(events[1]["data"]["status"], "approved");
    assert_eq!(events[1]["data"]["comment"], "welcome");
    assert_eq!(
        events[1]["meta"]["actor"],
        format!("user:{ADMIN}"),
        "{}",
        events[1]
    );
    assert_eq!(row_of(&app, &admin, "u1").await["status"], 0);

    let now = chrono::Utc::now().timestamp();
    let (status, body) = login(&app, "u1", "xxX@1234").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["code"], &body["message"]),
        (&json!(200), &json!("success"))
    );
    let expires = body["expireTime"].as_i64().expect("expireTime");
    let refresh_expires = body["refreshExpireTime"]
        .as_i64()
        .expect("refreshExpireTime");
    assert!((expires - now - 3_600).abs() <= 5, "{body}");
    assert!((refresh_expires - now - 18_000).abs() <= 5, "{body}");
    let token = body["token"].as_str().unwrap().to_string();

    // Who the token speaks for, in each spelling; `isAdmin` of a registration is ignored.
    let me = json!({
        "code": 200, "message": "Success",
        "data": {
            "id": id, "user": "u1", "displayName": "hello", "hasRepoAccount": false, "role": 4,
            "privateProject": false, "enableIngress": false, "enableAlert": false,
            "enableAdminAutoDeploy": false
        }
    });
    for spelling in [Spelling::Bearer, Spelling::Token, Spelling::Bare] {
        assert_eq!(
            info(&app, &token, spelling).await,
            (200, me.clone()),
            "{spelling:?}"
        );
    }
    let (status, body) = info(&app, &admin, Spelling::Bare).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["data"]["role"], &body["data"]["displayName"]),
        (&json!(1), &json!("admin"))
    );

    // Logout: the same token is refused on the next request.
    let logout = with_token(
        request(&app, Method::DELETE, "/v1/authorization"),
        &token,
        Spelling::Bare,
    );
    assert_eq!(app.send(logout).await, (200, ok("Success")));
    let revoked = (401, refused(401, "The token has been revoked."));
    for spelling in [Spelling::Bearer, Spelling::Token, Spelling::Bare] {
        assert_eq!(info(&app, &token, spelling).await, revoked, "{spelling:?}");
    }
    let events = app.events_of("user", &user_id("u1")).await;
    assert_eq!(
        event_types(&events),
        ["UserRegistered", "UserAudited", "TokensRevoked"]
    );
    // Logging in again works.
    let (again, _) = tokens(&app, "u1", "xxX@1234").await;
    assert_eq!(info(&app, &again, Spelling::Bearer).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refreshed_token_works_until_logout() {
    let app = spawn_gantry().await;
    let admin = admin_token(&app).await;
    create_sub_user(
        &app,
        &admin,
        json!({"user": "rita", "password": "rita-secret"}),
    )
    .await;
    let (access, refresh) = tokens(&app, "rita", "rita-secret").await;

    let put = |token: &str, spelling| {
        with_token(
            request(&app, Method::PUT, "/v1/authorization"),
            token,
            spelling,
        )
    };
    let mut refreshed = Vec::new();
    for spelling in [Spelling::Bearer, Spelling::Token, Spelling::Bare] {
        let now = chrono::Utc::now().timestamp();
        let (status, body) = app.send(put(&refresh, spelling)).await;
        assert_eq!(status, 200, "{spelling:?}: {body}");
        assert_eq!(
            (&body["code"], &body["message"]),
            (&json!(200), &json!("success"))
        );
        let expires = body["expireTime"].as_i64().expect("expireTime");
        assert!((expires - now - 3_600).abs() <= 5, "{body}");
        let token = body["token"].as_str().expect("token").to_string();
        assert_ne!(token, access);
        let (status, me) = info(&app, &token, Spelling::Bare).await;
        assert_eq!((status, &me["data"]["user"]), (200, &json!("rita")), "{me}");
        refreshed.push(token);
    }
    // An access token is not a refresh token; no token is a guest.
    assert_eq!(
        app.send(put(&access, Spelling::Bearer)).await,
        (401, refused(401, "The token is invalid."))
    );
    assert_eq!(
        app.send(request(&app, Method::PUT, "/v1/authorization"))
            .await,
        (401, refused(401, "User need to log in first."))
    );

    // Logout with a refreshed token, at the document example's path: every token of the
    // user is refused, and the refresh token no longer refreshes.
    let logout = with_token(
        request(&app, Method::DELETE, "/v1/authorizations"),
        &refreshed[0],
        Spelling::Token,
    );
    assert_eq!(app.send(logout).await, (200, ok("Success")));
    let revoked = (401, refused(401, "The token has been revoked."));
    for token in refreshed.iter().chain([&access]) {
        assert_eq!(info(&app, token, Spelling::Bearer).await, revoked);
    }
    assert_eq!(app.send(put(&refresh, Spelling::Bare)).await, revoked);
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_list_create_audit_reset_and_delete_users() {
    let app = spawn_gantry().await;
    let admin = admin_token(&app).await;
    let sub1 = create_sub_user(
        &app,
        &admin,
        json!({"user": "sub1", "password": "sub1-secret", "phone": "+86 123", "realName": "Sub One"}),
    )
    .await;
    let (status, body) = app
        .send(
            authed(&app, Method::POST, "/v1/admin/user", &admin)
                .json(&json!({"user": "sub1", "password": "other-secret"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (409, refused(409, "User sub1 already exists."))
    );
    let sub2 = create_sub_user(
        &app,
        &admin,
        json!({"user": "sub2", "password": "sub2-secret"}),
    )
    .await;
    let sub3 = create_sub_user(
        &app,
        &admin,
        json!({"user": "sub3", "password": "sub3-secret", "isAdmin": true}),
    )
    .await;
    assert_eq!(
        event_types(&app.events_of("user", &user_id("sub1")).await),
        ["UserCreated"]
    );

    // Approved at once.
    let (sub1_token, _) = tokens(&app, "sub1", "sub1-secret").await;

    // Paging, in id order, with the total of every user.
    let admin_id = row_of(&app, &admin, ADMIN).await["id"].as_i64().unwrap();
    let ids = |body: &Value| -> Vec<i64> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    let all = list(&app, &admin, "").await;
    assert_eq!(
        (&all["code"], &all["message"]),
        (&json!(200), &json!("Success"))
    );
    assert_eq!(all["total"], 4, "{all}");
    assert_eq!(ids(&all), [admin_id, sub1, sub2, sub3]);
    let first = list(&app, &admin, "?page=1&pageSize=2").await;
    assert_eq!(
        (ids(&first), &first["total"]),
        (vec![admin_id, sub1], &json!(4))
    );
    let second = list(&app, &admin, "?page=2&pageSize=2").await;
    assert_eq!(ids(&second), [sub2, sub3]);
    let past = list(&app, &admin, "?page=3&pageSize=2").await;
    assert_eq!((ids(&past), &past["total"]), (vec![], &json!(4)));
    assert_eq!(
        ids(&list(&app, &admin, "?pageSize=0&page=9").await).len(),
        4
    );
    let row = row_of(&app, &admin, "sub1").await;
    assert_eq!(
        (
            &row["status"],
            &row["realName"],
            &row["phone"],
            &row["role"]
        ),
        (&json!(0), &json!("Sub One"), &json!("+86 123"), &json!(4))
    );
    assert_eq!(row_of(&app, &admin, "sub3").await["role"], 2);

    // Reset: the new password works, the old one and the user's sessions do not.
    let (status, body) = app
        .send(
            authed(
                &app,
                Method::PUT,
                &format!("/v1/admin/user/{sub1}/password/"),
                &admin,
            )
            .json(&json!({"password": "sub1-renewed"})),
        )
        .await;
    assert_eq!((status, body), (200, ok("success")));
    assert_eq!(
        info(&app, &sub1_token, Spelling::Bearer).await,
        (401, refused(401, "The token has been revoked."))
    );
    assert_eq!(
        login(&app, "sub1", "sub1-secret").await,
        (401, refused(401, "Incorrect user or password."))
    );
    tokens(&app, "sub1", "sub1-renewed").await;
    let events = app.events_of("user", &user_id("sub1")).await;
    assert_eq!(event_types(&events), ["UserCreated", "PasswordChanged"]);
    assert_eq!(events[1]["meta"]["actor"], format!("user:{ADMIN}"));

    // Delete: an admin cannot be; a user can, once.
    for admin_user in [admin_id, sub3] {
        let (status, body) = app
            .send(authed(
                &app,
                Method::DELETE,
                &format!("/v1/admin/user/{admin_user}"),
                &admin,
            ))
            .await;
        assert_eq!(
            (status, body),
            (403, refused(403, "An admin cannot be deleted."))
        );
    }
    let delete = || {
        authed(
            &app,
            Method::DELETE,
            &format!("/v1/admin/user/{sub2}"),
            &admin,
        )
    };
    assert_eq!(app.send(delete()).await, (200, ok("success")));
    assert_eq!(
        app.send(delete()).await,
        (404, refused(404, &format!("User {sub2} is not found.")))
    );
    assert_eq!(
        login(&app, "sub2", "sub2-secret").await,
        (401, refused(401, "Incorrect user or password."))
    );
    assert_eq!(list(&app, &admin, "").await["total"], 3);
    let (status, body) = app
        .send(
            authed(&app, Method::PUT, "/v1/admin/user/999999", &admin).json(&json!({"status": 1})),
        )
        .await;
    assert_eq!(
        (status, body),
        (404, refused(404, "User 999999 is not found."))
    );

    // Audit: disabled users cannot log in, and an admin's token stops working at once.
    let audit = |id: i64, status: i64| {
        authed(&app, Method::PUT, &format!("/v1/admin/user/{id}"), &admin)
            .json(&json!({"status": status}))
    };
    assert_eq!(app.send(audit(sub1, 1)).await, (200, ok("success")));
    assert_eq!(
        login(&app, "sub1", "sub1-renewed").await,
        (403, refused(403, "The user is disabled."))
    );
    assert_eq!(row_of(&app, &admin, "sub1").await["status"], 1);
    assert_eq!(app.send(audit(sub1, 0)).await, (200, ok("success")));
    tokens(&app, "sub1", "sub1-renewed").await;

    let (sub3_token, _) = tokens(&app, "sub3", "sub3-secret").await;
    assert_eq!(list(&app, &sub3_token, "").await["total"], 3);
    assert_eq!(app.send(audit(sub3, 1)).await, (200, ok("success")));
    assert_eq!(
        app.send(authed(&app, Method::GET, "/v1/admin/user", &sub3_token))
            .await,
        (403, refused(403, "The user is disabled."))
    );
    // Now `admin` is the last admin: disabling them is refused.
    assert_eq!(
        app.send(audit(admin_id, 1)).await,
        (
            403,
            refused(403, "The last admin cannot be demoted or disabled.")
        )
    );
    assert_eq!(list(&app, &admin, "").await["total"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_changes_their_own_password() {
    let app = spawn_gantry().await;
    let admin = admin_token(&app).await;
    create_sub_user(
        &app,
        &admin,
        json!({"user": "pat", "password": "pat-first"}),
    )
    .await;
    let (token, _) = tokens(&app, "pat", "pat-first").await;
    let change = |token: &str, old: &str| {
        with_token(
            request(&app, Method::PUT, "/v1/user"),
            token,
            Spelling::Token,
        )
        .json(&json!({"oldPassword": old, "password": "pat-second"}))
    };
    assert_eq!(
        app.send(change(&token, "not-the-one")).await,
        (400, refused(400, "The old password is incorrect."))
    );
    assert_eq!(
        app.send(change(&token, "pat-first")).await,
        (200, ok("success"))
    );
    assert_eq!(
        info(&app, &token, Spelling::Bare).await,
        (401, refused(401, "The token has been revoked."))
    );
    assert_eq!(
        login(&app, "pat", "pat-first").await,
        (401, refused(401, "Incorrect user or password."))
    );
    let (token, _) = tokens(&app, "pat", "pat-second").await;
    let events = app.events_of("user", &user_id("pat")).await;
    assert_eq!(event_types(&events), ["UserCreated", "PasswordChanged"]);
    assert_eq!(events[1]["meta"]["actor"], "user:pat");
    // No secret in the log.
    let log = serde_json::to_string(&events).unwrap();
    for secret in ["pat-first", "pat-second", "argon2"] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
    assert_eq!(
        app.send(
            request(&app, Method::PUT, "/v1/user")
                .json(&json!({"oldPassword": "pat-second", "password": "pat-third"}))
        )
        .await,
        (401, refused(401, "User need to log in first."))
    );
    assert_eq!(info(&app, &token, Spelling::Bare).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_422_and_write_nothing() {
    let app = spawn_gantry().await;
    let admin = admin_token(&app).await;
    let sub = create_sub_user(
        &app,
        &admin,
        json!({"user": "kim", "password": "kim-secret"}),
    )
    .await;
    let (kim, _) = tokens(&app, "kim", "kim-secret").await;
    let invalid = |detail: &str| refused(422, &format!("Parameter validation error: {detail}"));
    let sub_path = format!("/v1/admin/user/{sub}");
    let sub_password = format!("/v1/admin/user/{sub}/password");
    let cases: Vec<(Method, &str, Option<&str>, &str, Value)> = vec![
        (
            Method::POST,
            "/v1/authorization",
            None,
            "[]",
            invalid("the body must be a JSON object"),
        ),
        (
            Method::POST,
            "/v1/authorization",
            None,
            r#"{"password": "x"}"#,
            invalid("user is required"),
        ),
        (
            Method::POST,
            "/v1/authorization",
            None,
            r#"{"user": 5, "password": "x"}"#,
            invalid("user must be a string"),
        ),
        (
            Method::POST,
            "/v1/authorization",
            None,
            r#"{"user": "kim", "password": ""}"#,
            invalid("password is empty"),
        ),
        (
            Method::POST,
            "/v1/user",
            None,
            r#"{"user": "bad name!", "password": "secret12"}"#,
            invalid("user fails to match the required pattern: /^[\\w.@-]+$/"),
        ),
        (
            Method::POST,
            "/v1/user",
            None,
            r#"{"user": "ok", "password": "short"}"#,
            invalid("password is shorter than 6 characters"),
        ),
        (
            Method::POST,
            "/v1/user",
            None,
            r#"{"user": "ok", "password": "secret12", "phone": "abc"}"#,
            invalid("phone fails to match the required pattern: /^[0-9+() -]+$/"),
        ),
        (
            Method::POST,
            "/v1/user",
            None,
            r#"{"user": "ok", "password": "secret12", "isAdmin": "yes"}"#,
            invalid("isAdmin must be a boolean"),
        ),
        (
            Method::POST,
            "/v1/user",
            None,
            r#"{"user": "ok\u0007", "password": "secret12"}"#,
            invalid("user contains a control character"),
        ),
        (
            Method::POST,
            "/v1/admin/user",
            Some(&admin),
            r#"{"user": "ok"}"#,
            invalid("password is required"),
        ),
        (
            Method::PUT,
            "/v1/user",
            Some(&kim),
            r#"{"password": "secret12"}"#,
            invalid("oldPassword is required"),
        ),
        (
            Method::GET,
            "/v1/admin/user?page=0",
            Some(&admin),
            "",
            invalid("page must be an integer from 1 to 2147483647"),
        ),
        (
            Method::GET,
            "/v1/admin/user?pageSize=abc",
            Some(&admin),
            "",
            invalid("pageSize must be an integer from 0 to 1000"),
        ),
        (
            Method::PUT,
            "/v1/admin/user/abc",
            Some(&admin),
            r#"{"status": 0}"#,
            invalid("userId must be a positive integer, not \"abc\""),
        ),
        (
            Method::DELETE,
            "/v1/admin/user/0",
            Some(&admin),
            "",
            invalid("userId must be a positive integer, not \"0\""),
        ),
        (
            Method::PUT,
            &sub_path,
            Some(&admin),
            r#"{"status": 2}"#,
            invalid("status must be 0 (approved), 1 (disabled) or 3 (waiting for approval)"),
        ),
        (
            Method::PUT,
            &sub_path,
            Some(&admin),
            "{}",
            invalid("status is required"),
        ),
        (
            Method::PUT,
            &sub_password,
            Some(&admin),
            r#"{"password": 123456}"#,
            invalid("password must be a string"),
        ),
    ];
    for (method, path, token, body, expected) in cases {
        let mut req = request(&app, method.clone(), path).body(body.to_string());
        if let Some(token) = token {
            req = with_token(req, token, Spelling::Bearer);
        }
        assert_eq!(
            app.send(req).await,
            (422, expected),
            "{method} {path} {body}"
        );
    }
    let (status, body) = app
        .send(request(&app, Method::POST, "/v1/authorization").body("not json"))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Parameter validation error: the body is not valid JSON"),
        "{body}"
    );
    // Nothing was written.
    assert!(app.events_of("user", &user_id("ok")).await.is_empty());
    assert_eq!(
        event_types(&app.events_of("user", &user_id("kim")).await),
        ["UserCreated"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_and_users_are_refused_in_the_edge_envelope() {
    let app = spawn_gantry().await;
    let admin = admin_token(&app).await;
    let sub = create_sub_user(
        &app,
        &admin,
        json!({"user": "lee", "password": "lee-secret"}),
    )
    .await;
    let (lee, _) = tokens(&app, "lee", "lee-secret").await;
    let admin_only = [
        (Method::GET, "/v1/admin/user".to_string(), "".to_string()),
        (
            Method::POST,
            "/v1/admin/user".to_string(),
            r#"{"user": "x1", "password": "x1-secret"}"#.to_string(),
        ),
        (
            Method::PUT,
            format!("/v1/admin/user/{sub}"),
            r#"{"status": 1}"#.to_string(),
        ),
        (
            Method::DELETE,
            format!("/v1/admin/user/{sub}"),
            "".to_string(),
        ),
        (
            Method::PUT,
            format!("/v1/admin/user/{sub}/password"),
            r#"{"password": "taken-over"}"#.to_string(),
        ),
    ];
    let guest = (401, refused(401, "User need to log in first."));
    for (method, path, body) in &admin_only {
        let req = || request(&app, method.clone(), path).body(body.clone());
        assert_eq!(app.send(req()).await, guest, "{method} {path}");
        for spelling in [Spelling::Bearer, Spelling::Token, Spelling::Bare] {
            assert_eq!(
                app.send(with_token(req(), &lee, spelling)).await,
                (403, refused(403, "Only an admin may do this.")),
                "{method} {path} {spelling:?}"
            );
        }
        assert_eq!(
            app.send(with_token(req(), "not.a.token", Spelling::Bearer))
                .await,
            (401, refused(401, "The token is invalid.")),
            "{method} {path}"
        );
    }
    // The admin's answers in the three spellings.
    for spelling in [Spelling::Bearer, Spelling::Token, Spelling::Bare] {
        let req = with_token(
            request(&app, Method::GET, "/v1/admin/user"),
            &admin,
            spelling,
        );
        assert_eq!(app.send(req).await.0, 200, "{spelling:?}");
    }
    // The token endpoints and the own password need a token too.
    for (method, path) in [
        (Method::GET, "/v1/authorization"),
        (Method::DELETE, "/v1/authorization"),
        (Method::PUT, "/v1/user"),
    ] {
        assert_eq!(
            app.send(request(&app, method.clone(), path).body("{}"))
                .await,
            guest,
            "{method} {path}"
        );
    }
    // Nothing happened to lee, who still logs in with the same password.
    assert_eq!(
        event_types(&app.events_of("user", &user_id("lee")).await),
        ["UserCreated"]
    );
    tokens(&app, "lee", "lee-secret").await;
    assert!(app.events_of("user", &user_id("x1")).await.is_empty());

    // Unknown paths and methods, in the edge envelope; trailing slashes are the same path.
    let (status, body) = app
        .send(request(&app, Method::GET, "/v1/admin/nothing"))
        .await;
    assert_eq!(
        (status, body),
        (404, refused(404, "The requested resource does not exist."))
    );
    let (status, body) = app.send(request(&app, Method::GET, "/v1/user")).await;
    assert_eq!(
        (status, body),
        (
            405,
            refused(405, "The method is not allowed on this resource.")
        )
    );
    let (status, body) = app
        .send(
            request(&app, Method::POST, "/v1/authorization/")
                .json(&json!({"user": "lee", "password": "lee-secret"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_of_the_edge_door_logs_in_at_openpai_and_back() {
    let app = spawn_gantry().await;
    let admin = admin_token(&app).await;
    let registration = json!({"user": "edgy", "password": "edgy-secret"});
    assert_eq!(
        app.send(request(&app, Method::POST, "/v1/user").json(&registration))
            .await,
        (200, ok("success"))
    );
    let pai_login = |user: &str, password: &str| {
        app.http
            .post(app.url("/api/v1/token"))
            .json(&json!({"username": user, "password": password}))
    };
    let (status, body) = app.send(pai_login("edgy", "edgy-secret")).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"code": "ForbiddenUserError", "message": "User edgy is waiting for approval."})
        )
    );
    let id = row_of(&app, &admin, "edgy").await["id"].as_i64().unwrap();
    let approve = authed(&app, Method::PUT, &format!("/v1/admin/user/{id}"), &admin)
        .json(&json!({"status": 0}));
    assert_eq!(app.send(approve).await, (200, ok("success")));
    let (status, body) = app.send(pai_login("edgy", "edgy-secret")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["user"], &body["admin"]),
        (&json!("edgy"), &json!(false))
    );

    // And the other way: a user OpenPAI's admin creates logs in at the edge door, under the
    // same id the edge door lists.
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({"username": "paula", "password": "paula-secret"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (token, _) = tokens(&app, "paula", "paula-secret").await;
    let listed = row_of(&app, &admin, "paula").await;
    let (status, me) = info(&app, &token, Spelling::Bearer).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["id"], listed["id"]);
    assert_eq!(me["data"]["user"], "paula");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failed_logins_are_throttled_in_the_edge_envelope() {
    let mut settings = settings(&fresh_instance());
    settings.login_max_failures = 2;
    settings.login_lockout_ms = 60_000;
    let app = spawn_with(settings, Roles::DEV).await;
    let admin = admin_token(&app).await;
    create_sub_user(
        &app,
        &admin,
        json!({"user": "tess", "password": "tess-secret"}),
    )
    .await;
    let (token, _) = tokens(&app, "tess", "tess-secret").await;
    // A wrong old password counts as a failed login of that user.
    let change = with_token(
        request(&app, Method::PUT, "/v1/user"),
        &token,
        Spelling::Bare,
    )
    .json(&json!({"oldPassword": "guess-one", "password": "tess-next"}));
    assert_eq!(app.send(change).await.0, 400);
    assert_eq!(login(&app, "tess", "guess-two").await.0, 401);
    for password in ["guess-three", "tess-secret"] {
        let response = request(&app, Method::POST, "/v1/authorization")
            .json(&json!({"user": "tess", "password": password}))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
            Some("60".to_string())
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            refused(
                429,
                "Too many failed login attempts. Try again in 60 seconds."
            )
        );
    }
    // Another user is not held up.
    tokens(&app, ADMIN, ADMIN_PASSWORD).await;
}
