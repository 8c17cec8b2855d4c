//! The OpenPAI door: token and user creation, in OpenPAI's envelope.

use serde_json::{Value, json};

use crate::helpers::spawn_gantry;

fn assert_pai_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_from_a_form_or_json_with_its_errors() {
    let app = spawn_gantry().await;
    let form = app
        .http
        .post(app.url("/api/v1/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=admin&password=admin-password&expiration=60");
    let (status, body) = app.send(form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "admin");
    assert_eq!(body["admin"], true);
    assert!(body["token"].as_str().unwrap().split('.').count() == 3);

    let token = |params: Value| app.http.post(app.url("/api/v1/token")).json(&params);
    let (status, body) = app
        .send(token(
            json!({"username": "admin", "password": "admin-password", "expiration": "120"}),
        ))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = app
        .send(token(json!({"username": "ghost", "password": "whatever"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": "NoUserError", "message": "User ghost is not found."})
    );
    let (status, body) = app
        .send(token(json!({"username": "admin", "password": "wrong"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": "IncorrectPassworkError", "message": "Password is incorrect."})
    );
    for bad in [
        json!({"password": "x"}),
        json!({"username": "admin"}),
        json!({"username": 5, "password": "x"}),
    ] {
        let (status, body) = app.send(token(bad)).await;
        assert_pai_error(status, &body, 400, "InvalidParametersError");
    }
    let (status, body) = app
        .send(token(
            json!({"username": "admin", "password": "admin-password", "expiration": -5}),
        ))
        .await;
    assert_pai_error(status, &body, 400, "InvalidParametersError");
    let (status, body) = app
        .send(app.http.post(app.url("/api/v1/token")).body("{not json"))
        .await;
    assert_pai_error(status, &body, 400, "InvalidParametersError");
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_create_users_who_then_log_in() {
    let app = spawn_gantry().await;
    let create = |body: Value| app.http.post(app.url("/api/v2/user")).json(&body);
    let alice = json!({"username": "alice.w-1", "password": "secret1", "admin": false, "email": "a@example.org",
                       "virtualCluster": ["default"], "extension": {"team": "vision"}});

    let (status, body) = app.send(create(alice.clone())).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": "UnauthorizedUserError", "message": "Guest is not allowed to do this operation."})
    );

    let (status, body) = app.send(app.admin(create(alice.clone()))).await;
    assert_eq!(status, 201);
    assert_eq!(body, json!({"message": "User is created successfully"}));
    let (status, body) = app.send(app.admin(create(alice.clone()))).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"code": "ConflictUserError", "message": "User name alice.w-1 already exists."})
    );

    let (status, body) = app
        .send(
            app.http
                .post(app.url("/api/v1/token"))
                .json(&json!({"username": "alice.w-1", "password": "secret1"})),
        )
        .await;
    assert_eq!((status, &body["admin"]), (200, &json!(false)), "{body}");
    let alice_token = body["token"].as_str().unwrap().to_string();
    let (status, body) = app
        .send(create(json!({"username": "bob", "password": "secret1"})).bearer_auth(&alice_token))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"code": "ForbiddenUserError", "message": "Non-admin is not allow to do this operation."})
    );

    for bad in [
        json!({"username": "bad name", "password": "secret1"}),
        json!({"username": "bob", "password": "short"}),
        json!({"username": "bob", "password": "secret1", "admin": "yes"}),
        json!({"username": "bob", "password": "secret1", "virtualCluster": ["no-dash"]}),
        json!({"username": "bob"}),
    ] {
        let (status, body) = app.send(app.admin(create(bad.clone()))).await;
        assert_pai_error(status, &body, 400, "InvalidParametersError");
    }
    // A user's token works at the course door too.
    let (status, _) = app
        .send(
            app.http
                .post(app.url("/v1/course/list"))
                .bearer_auth(&alice_token)
                .body(r#"{"user":"x"}"#),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_server_prefix_reaches_the_same_door() {
    let app = spawn_gantry().await;
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/rest-server/api/v1/token"))
                .json(&json!({"username": "admin", "password": "admin-password"})),
        )
        .await;
    assert_eq!((status, &body["user"]), (200, &json!("admin")));
    let (status, body) = app.send(app.http.get(app.url("/rest-server/api/v1"))).await;
    assert_eq!((status, &body["name"]), (200, &json!("PAI RESTfulAPI")));
    let (status, body) = app.send(app.http.get(app.url("/api/v9/nothing"))).await;
    assert_pai_error(status, &body, 404, "NotFoundError");
}
