//! The course door's OAuth2 proxy against Gantry's own provider: the login form at
//! `/oauth/authorize`, the code exchanged once at `/v1/proxy/token`, refresh, introspection
//! and logout, and the tokens used on the course door.

use std::time::Duration;

use gantry::Roles;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, ctx, eventually, fresh_instance, settings, spawn_gantry, spawn_with,
};

const CLIENT: &str = "test_client_1";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn create_user(app: &TestApp, username: &str, password: &str, admin: bool) {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({ "username": username, "password": password, "admin": admin })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn authorize_query(state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CLIENT.to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("state", state.to_string()),
        ("response_type", "code".to_string()),
    ]
}

/// `(status, headers, body)` of a POST of the login form.
async fn post_form(
    app: &TestApp,
    fields: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = browser()
        .post(app.url("/oauth/authorize"))
        .form(fields)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

async fn sign_in_form(
    app: &TestApp,
    username: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut fields: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("state", "s-1"),
        ("response_type", "code"),
    ];
    fields.push(("username", username));
    fields.push(("password", password));
    post_form(app, &fields).await
}

/// The `(name, value)` pairs of a `Location` that must start with `REDIRECT?`.
fn redirected(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    let location = headers
        .get("location")
        .expect("a Location")
        .to_str()
        .expect("text");
    assert!(
        location.starts_with(&format!("{REDIRECT}?")),
        "redirected elsewhere: {location}"
    );
    reqwest::Url::parse(location)
        .expect("a URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Logs in through the form and returns the code the redirect carried.
async fn code_for(app: &TestApp, username: &str, password: &str) -> String {
    let (status, headers, body) = sign_in_form(app, username, password).await;
    assert_eq!(status, 302, "{body}");
    let params = redirected(&headers);
    assert_eq!(params.len(), 2, "{params:?}");
    assert_eq!(params[1], ("state".to_string(), "s-1".to_string()));
    assert_eq!(params[0].0, "code");
    params[0].1.clone()
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.send(app.http.post(app.url(path)).body(body.to_string()))
        .await
}

async fn exchange(app: &TestApp, code: &str) -> (u16, Value) {
    post(app, "/v1/proxy/token", json!({ "code": code })).await
}

async fn introspect(app: &TestApp, token: &str) -> (u16, Value) {
    post(app, "/v1/proxy/introspection", json!({ "token": token })).await
}

/// `(status, body)` of `GET /v1/health/kubernetesAuth` with this `Authorization`.
async fn kubernetes_auth(app: &TestApp, authorization: Option<&str>) -> (u16, Value) {
    let mut request = app.http.get(app.url("/v1/health/kubernetesAuth"));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    app.send(request).await
}

async fn list_courses(app: &TestApp, token: &str) -> (u16, Value) {
    app.send(
        app.http
            .post(app.url("/v1/course/list"))
            .bearer_auth(token)
            .body(r#"{"user":"jimmy"}"#),
    )
    .await
}

fn invalid_token() -> Value {
    json!({ "error": true, "message": "Invalid API token" })
}

fn no_nodes() -> Value {
    json!({ "error": true, "message": "List Node fail: no node of the cluster has been observed yet" })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_through_the_form_gives_tokens_the_course_door_accepts_until_logout() {
    let app = spawn_gantry().await;
    create_user(&app, "jimmy", "jimmy-password", false).await;

    // The form carries the client's request, every value escaped.
    let response = browser()
        .get(app.url("/oauth/authorize"))
        .query(&authorize_query("<x>\"&'"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let page = response.text().await.unwrap();
    for field in [
        r#"<input type="hidden" name="client_id" value="test_client_1">"#,
        r#"<input type="hidden" name="redirect_uri" value="http://127.0.0.1:9/callback">"#,
        r#"<input type="hidden" name="response_type" value="code">"#,
        r#"<input type="hidden" name="state" value="&lt;x&gt;&quot;&amp;&#39;">"#,
        r#"<input id="password" name="password" type="password""#,
        r#"<form method="post">"#,
    ] {
        assert!(page.contains(field), "{field} in {page}");
    }
    assert!(!page.contains("<x>"), "{page}");

    // Posting it sends the browser back with a code and the state.
    let code = code_for(&app, "jimmy", "jimmy-password").await;
    assert_eq!(code.len(), 64, "{code}");

    let (status, tokens) = exchange(&app, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["token"].as_str().expect("token").to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert_eq!(tokens["token_type"], "Bearer");
    let expires_in = tokens["expires_in"].as_i64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{tokens}");
    assert_eq!(tokens.as_object().unwrap().len(), 4, "{tokens}");

    // The token opens the course door.
    assert_eq!(
        list_courses(&app, &access).await,
        (200, json!({ "error": false, "courses": [] }))
    );
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/v1/course/create"))
                .bearer_auth(&access)
                .body(
                    json!({"user": "jimmy", "name": "oauth course", "introduction": "i",
                           "image": "nvidia/caffe:latest", "level": "basic", "GPU": 1,
                           "datasets": []})
                    .to_string(),
                ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = list_courses(&app, &access).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["courses"][0]["name"], "oauth course");
    // The health check accepts it; it has no node list to give yet.
    assert_eq!(
        kubernetes_auth(&app, Some(&format!("Bearer {access}"))).await,
        (503, no_nodes())
    );

    let (status, facts) = introspect(&app, &access).await;
    assert_eq!(status, 200, "{facts}");
    let exp = facts["exp"].as_i64().expect("exp");
    let now = chrono::Utc::now().timestamp();
    assert!((now + 3590..=now + 3600).contains(&exp), "{facts}");
    assert_eq!(
        facts,
        json!({
            "active": true, "scope": "read_write", "client_id": CLIENT, "username": "jimmy",
            "token_type": "Bearer", "exp": exp, "role": "user"
        })
    );

    // Introspection is of access tokens.
    assert_eq!(
        introspect(&app, &refresh).await,
        (200, json!({ "active": false }))
    );

    // A refresh gives a new access token of the same client; the refresh token stays.
    let (status, renewed) = post(
        &app,
        "/v1/proxy/refresh",
        json!({ "refresh_token": refresh }),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let renewed_access = renewed["token"].as_str().expect("token").to_string();
    assert_eq!(renewed["refresh_token"], refresh.as_str());
    assert_eq!(renewed["token_type"], "Bearer");
    assert_eq!(list_courses(&app, &renewed_access).await.0, 200);
    let (_, facts) = introspect(&app, &renewed_access).await;
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["client_id"], CLIENT, "{facts}");
    assert_eq!(facts["username"], "jimmy", "{facts}");

    // Logout revokes every token of jimmy's.
    let (status, body) = post(&app, "/v1/proxy/logout", json!({ "token": renewed_access })).await;
    assert_eq!((status, body), (200, json!({ "message": "jimmy logout" })));
    for token in [&access, &renewed_access] {
        assert_eq!(list_courses(&app, token).await, (403, invalid_token()));
        assert_eq!(
            kubernetes_auth(&app, Some(&format!("Bearer {token}"))).await,
            (403, invalid_token())
        );
        assert_eq!(
            introspect(&app, token).await,
            (200, json!({ "active": false }))
        );
    }
    assert_eq!(
        post(
            &app,
            "/v1/proxy/refresh",
            json!({ "refresh_token": refresh })
        )
        .await,
        (
            400,
            json!({ "error": true,
                    "message": "Exchange Token fail: invalid_grant: the refresh token was revoked" })
        )
    );
    assert_eq!(
        post(&app, "/v1/proxy/logout", json!({ "token": access })).await,
        (403, invalid_token())
    );

    // Signing in again works.
    let code = code_for(&app, "jimmy", "jimmy-password").await;
    let (status, tokens) = exchange(&app, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        list_courses(&app, tokens["token"].as_str().unwrap())
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_come_from_the_users_current_state_and_other_doors_tokens_are_introspected() {
    let app = spawn_gantry().await;
    let code = code_for(&app, "admin", crate::helpers::ADMIN_PASSWORD).await;
    let (status, tokens) = exchange(&app, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, facts) = introspect(&app, tokens["token"].as_str().unwrap()).await;
    assert_eq!(facts["role"], "admin", "{facts}");
    assert_eq!(facts["username"], "admin", "{facts}");

    // A token of OpenPAI's login is a Gantry token too: no client of the proxy's.
    let (status, facts) = introspect(&app, &app.admin_token).await;
    assert_eq!(status, 200, "{facts}");
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["client_id"], Value::Null, "{facts}");
    assert_eq!(facts["scope"], "read_write", "{facts}");
    assert_eq!(facts["role"], "admin", "{facts}");
    // The document's sample sends the token as `refresh_token`.
    let (status, same) = post(
        &app,
        "/v1/proxy/introspection",
        json!({ "refresh_token": app.admin_token }),
    )
    .await;
    assert_eq!((status, same), (200, facts));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_is_exchanged_once_even_across_two_serve_processes() {
    let first = spawn_gantry().await;
    let second = spawn_with(first.settings.clone(), Roles::SERVE).await;
    create_user(&first, "jimmy", "jimmy-password", false).await;
    let used = json!({ "error": true,
        "message": "Exchange Token fail: invalid_grant: the code is unknown or was used" });

    for _ in 0..3 {
        let code = code_for(&first, "jimmy", "jimmy-password").await;
        let (a, b) = tokio::join!(exchange(&first, &code), exchange(&second, &code));
        let (won, lost) = if a.0 == 200 { (a, b) } else { (b, a) };
        assert_eq!(won.0, 200, "{won:?} {lost:?}");
        assert!(won.1["token"].is_string(), "{won:?}");
        assert_eq!(lost, (400, used.clone()));
        assert_eq!(exchange(&second, &code).await, (400, used.clone()));
    }

    // Only the code's hash is stored, and only until it is exchanged.
    let code = code_for(&first, "jimmy", "jimmy-password").await;
    let db = first.database().await;
    let client = db.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT code_hash, client_id, redirect_uri, username FROM oauth_codes",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let hash: Vec<u8> = rows[0].get(0);
    assert_eq!(hash.len(), 32);
    assert!(!String::from_utf8_lossy(&hash).contains(&code));
    assert_eq!(
        (
            rows[0].get::<_, String>(1),
            rows[0].get::<_, String>(2),
            rows[0].get::<_, String>(3)
        ),
        (
            CLIENT.to_string(),
            REDIRECT.to_string(),
            "jimmy".to_string()
        )
    );
    assert_eq!(exchange(&second, &code).await.0, 200);
    let left: i64 = client
        .query_one("SELECT count(*) FROM oauth_codes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_refused() {
    let mut settings = settings(&fresh_instance());
    settings.oauth_code_ttl_ms = 1000;
    let app = spawn_with(settings, Roles::DEV).await;
    create_user(&app, "jimmy", "jimmy-password", false).await;

    let code = code_for(&app, "jimmy", "jimmy-password").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        exchange(&app, &code).await,
        (
            400,
            json!({ "error": true, "message": "Exchange Token fail: invalid_grant: the code expired" })
        )
    );
    assert_eq!(
        exchange(&app, &code).await,
        (
            400,
            json!({ "error": true,
                    "message": "Exchange Token fail: invalid_grant: the code is unknown or was used" })
        )
    );
    // A fresh one, exchanged at once, still works.
    let code = code_for(&app, "jimmy", "jimmy-password").await;
    assert_eq!(exchange(&app, &code).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_shows_the_form_again_and_gives_no_code() {
    let app = spawn_gantry().await;
    create_user(&app, "jimmy", "jimmy-password", false).await;

    for (username, password) in [
        ("jimmy", "not-the-password"),
        ("<b>nobody</b>", "nobody-guess"),
    ] {
        let (status, headers, page) = sign_in_form(&app, username, password).await;
        assert_eq!(status, 401, "{page}");
        assert!(headers.get("location").is_none());
        assert!(
            page.contains(r#"<p class="error" role="alert">Wrong username or password.</p>"#),
            "{page}"
        );
        assert!(
            !page.contains(password),
            "the password is never shown: {page}"
        );
        assert!(
            page.contains(r#"<input type="hidden" name="state" value="s-1">"#),
            "{page}"
        );
    }
    let (_, _, page) = sign_in_form(&app, "<b>nobody</b>", "nobody-guess").await;
    assert!(
        page.contains(r#"value="&lt;b&gt;nobody&lt;/b&gt;""#),
        "{page}"
    );
    assert!(!page.contains("<b>nobody"), "{page}");

    let (status, _, page) = sign_in_form(&app, "", "").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Enter your username and password."), "{page}");

    // Guessing is throttled like every login: a fifth failure locks the username.
    for _ in 0..4 {
        assert_eq!(sign_in_form(&app, "jimmy", "guess").await.0, 401);
    }
    let (status, headers, page) = sign_in_form(&app, "jimmy", "jimmy-password").await;
    assert_eq!(status, 429, "{page}");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        page.contains("Too many failed sign-ins; try again in 1 seconds."),
        "{page}"
    );
    let signed_in = eventually(Duration::from_secs(5), || async {
        sign_in_form(&app, "jimmy", "jimmy-password").await.0 == 302
    })
    .await;
    assert!(signed_in, "the lock ends");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_user_gets_no_code() {
    use command::{
        Repository,
        user::{Details, Registration, User, UserCommand},
        values::Username,
    };
    let app = spawn_gantry().await;
    let users: Repository<User, _> = Repository::new(app.event_store().await);
    let id = events::user::user_id("newbie");
    let hash = command::password::hash("newbie-secret".into())
        .await
        .unwrap();
    let db = app.database().await;
    let credential = projection::credentials::store(&db.pool, &id, &hash)
        .await
        .unwrap();
    let register = UserCommand::Register(Registration {
        username: Username::parse("newbie").unwrap(),
        details: Details::default(),
        credential: Some(credential),
    });
    users.execute(&id, &register, &ctx("newbie")).await.unwrap();
    let refused = eventually(Duration::from_secs(10), || async {
        let (status, headers, page) = sign_in_form(&app, "newbie", "newbie-secret").await;
        status == 403
            && headers.get("location").is_none()
            && page.contains("The account newbie is pending: it cannot sign in.")
    })
    .await;
    assert!(
        refused,
        "{:?}",
        sign_in_form(&app, "newbie", "newbie-secret").await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_refuses_unknown_clients_and_sends_other_errors_back() {
    let mut listed = settings(&fresh_instance());
    listed.oauth_clients = Some(format!(
        "{CLIENT}={REDIRECT},other=https://courses.example.org/cb"
    ));
    let app = spawn_with(listed, Roles::DEV).await;
    let get = |query: Vec<(&'static str, String)>| {
        let url = app.url("/oauth/authorize");
        async move {
            let response = browser().get(url).query(&query).send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers, response.text().await.unwrap())
        }
    };

    // Unknown client, a redirect URI not its own, none at all: a page, never a redirect.
    let cases = [
        (
            "client_id",
            "stranger",
            "This client or its redirect_uri is not registered with Gantry.",
        ),
        (
            "redirect_uri",
            "https://evil.example/cb",
            "This client or its redirect_uri is not registered with Gantry.",
        ),
        (
            "redirect_uri",
            "https://courses.example.org/cb",
            "This client or its redirect_uri is not registered with Gantry.",
        ),
        ("client_id", "", "The request names no client (client_id)."),
        ("redirect_uri", "", "The request has no redirect_uri."),
    ];
    for (name, value, message) in cases {
        let query = authorize_query("s")
            .into_iter()
            .map(|(k, v)| {
                if k == name {
                    (k, value.to_string())
                } else {
                    (k, v)
                }
            })
            .collect();
        let (status, headers, page) = get(query).await;
        assert_eq!(status, 400, "{name}={value}: {page}");
        assert!(headers.get("location").is_none(), "{name}={value}");
        assert!(
            page.contains(&format!("<p class=\"error\">{message}</p>")),
            "{page}"
        );
    }
    // A listed client and URI get the form.
    let mut other = authorize_query("s");
    other[0].1 = "other".into();
    other[1].1 = "https://courses.example.org/cb".into();
    assert_eq!(get(other).await.0, 200);

    // Other errors go back to the client, with its state.
    let with = |name: &'static str, value: &str| {
        let mut query = authorize_query("st");
        query.retain(|(k, _)| *k != name);
        if !value.is_empty() {
            query.push((name, value.to_string()));
        }
        query
    };
    for (query, error, description) in [
        (
            with("response_type", "token"),
            "unsupported_response_type",
            "only response_type=code is supported",
        ),
        (
            with("response_type", ""),
            "invalid_request",
            "response_type is required",
        ),
        (
            with("scope", "admin"),
            "invalid_scope",
            "the only scope is read_write",
        ),
    ] {
        let (status, headers, page) = get(query).await;
        assert_eq!(status, 302, "{page}");
        assert_eq!(
            redirected(&headers),
            vec![
                ("error".to_string(), error.to_string()),
                ("error_description".to_string(), description.to_string()),
                ("state".to_string(), "st".to_string()),
            ]
        );
    }
    assert_eq!(get(with("scope", "read_write")).await.0, 200);

    // The POST checks the same; a repeated parameter is refused.
    let (status, headers, page) = post_form(
        &app,
        &[
            ("client_id", "stranger"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("username", "admin"),
            ("password", crate::helpers::ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(headers.get("location").is_none());
    let (status, _, page) = post_form(
        &app,
        &[
            ("client_id", CLIENT),
            ("client_id", "other"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("The parameter client_id is repeated."),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_error_of_the_proxy_in_the_course_envelope() {
    let app = spawn_gantry().await;
    let error = |message: &str| json!({ "error": true, "message": message });
    let raw = |path: &'static str, body: &'static str| {
        let request = app.http.post(app.url(path)).body(body);
        app.send(request)
    };
    let not_json = error("Failed to parse spec request request: expected value at line 1 column 1");
    for path in [
        "/v1/proxy/token",
        "/v1/proxy/refresh",
        "/v1/proxy/introspection",
        "/v1/proxy/logout",
    ] {
        assert_eq!(raw(path, "code=x").await, (400, not_json.clone()), "{path}");
    }
    assert_eq!(
        raw("/v1/proxy/token", "{}").await,
        (
            400,
            error("Failed to parse spec request request: code is empty")
        )
    );
    assert_eq!(
        raw("/v1/proxy/token", r#"{"code": "ab\u0000"}"#).await,
        (
            400,
            error("Failed to parse spec request request: code contains a control character")
        )
    );
    assert_eq!(
        raw("/v1/proxy/token", r#"{"code": "not-a-code"}"#).await,
        (
            400,
            error("Exchange Token fail: invalid_grant: the code is unknown or was used")
        )
    );
    assert_eq!(
        raw("/v1/proxy/refresh", r#"{"refresh_token": null}"#).await,
        (
            400,
            error("Failed to parse spec request request: refresh_token is empty")
        )
    );
    assert_eq!(
        raw("/v1/proxy/refresh", r#"{"refresh_token": "garbage"}"#).await,
        (
            400,
            error("Exchange Token fail: invalid_grant: the refresh token is not valid")
        )
    );
    // An access token is no refresh token.
    let (status, body) = post(
        &app,
        "/v1/proxy/refresh",
        json!({ "refresh_token": app.admin_token }),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            error("Exchange Token fail: invalid_grant: the refresh token is not valid")
        )
    );
    assert_eq!(
        raw("/v1/proxy/introspection", "{}").await,
        (
            400,
            error("Failed to parse spec request request: token is empty")
        )
    );
    assert_eq!(
        raw("/v1/proxy/introspection", r#"{"token": "garbage"}"#).await,
        (200, json!({ "active": false }))
    );
    assert_eq!(
        raw("/v1/proxy/logout", "{}").await,
        (
            400,
            error("Failed to parse spec request request: token is empty")
        )
    );
    assert_eq!(
        raw("/v1/proxy/logout", r#"{"token": "garbage"}"#).await,
        (403, invalid_token())
    );

    // A code bound to one client is not exchanged for another.
    create_user(&app, "jimmy", "jimmy-password", false).await;
    let code = code_for(&app, "jimmy", "jimmy-password").await;
    assert_eq!(
        post(
            &app,
            "/v1/proxy/token",
            json!({ "code": code, "client_id": "someone_else" })
        )
        .await,
        (
            400,
            error(
                "Exchange Token fail: invalid_grant: the code was issued to another client or redirect_uri"
            )
        )
    );
    let code = code_for(&app, "jimmy", "jimmy-password").await;
    let (status, body) = post(
        &app,
        "/v1/proxy/token",
        json!({ "code": code, "client_id": CLIENT, "redirect_uri": REDIRECT }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The token check of the course door, on the health check the document shows it on.
    assert_eq!(
        kubernetes_auth(&app, None).await,
        (401, error("Authorization header is missing"))
    );
    let not_bearer = error("Authorization header is not Bearer Token format or token is missing");
    for header in ["Token abc", "Bearer", "Bearer ", "bearer abc", "abc"] {
        assert_eq!(
            kubernetes_auth(&app, Some(header)).await,
            (401, not_bearer.clone()),
            "{header}"
        );
    }
    assert_eq!(
        kubernetes_auth(&app, Some("Bearer garbage")).await,
        (403, invalid_token())
    );
    let (status, _) = kubernetes_auth(&app, Some(&format!("Bearer {}", app.admin_token))).await;
    assert_eq!(status, 503);
    let short = app.login("jimmy", "jimmy-password", 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        kubernetes_auth(&app, Some(&format!("Bearer {short}"))).await,
        (403, error("Access token expired"))
    );
    assert_eq!(
        introspect(&app, &short).await,
        (200, json!({ "active": false }))
    );
}
