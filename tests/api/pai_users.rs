//! The OpenPAI door's users and groups: every endpoint with its answer and its documented
//! errors, in OpenPAI's envelope.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_gantry};

const GUEST: &str = "Guest is not allowed to do this operation.";
const NON_ADMIN: &str = "Non-admin is not allow to do this operation.";

fn guest() -> Value {
    json!({"code": "UnauthorizedUserError", "message": GUEST})
}

fn non_admin() -> Value {
    json!({"code": "ForbiddenUserError", "message": NON_ADMIN})
}

fn message(text: &str) -> Value {
    json!({ "message": text })
}

fn error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// Sends `method path` with `token` (none: a guest) and a JSON `body`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

/// Creates a user through the door (as the admin) and logs them in.
async fn user(app: &TestApp, username: &str, admin: bool) -> String {
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v2/user",
        Some(&app.admin_token),
        Some(json!({
            "username": username, "password": format!("{username}-secret"), "admin": admin,
            "email": format!("{username}@example.org"), "virtualCluster": ["default"],
            "extension": {"team": "vision"}
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    app.login(username, &format!("{username}-secret"), 3600)
        .await
}

async fn group(app: &TestApp, name: &str) {
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v2/group",
        Some(&app.admin_token),
        Some(json!({"groupname": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

fn is_invalid(status: u16, body: &Value) -> bool {
    status == 400 && body["code"] == "InvalidParametersError" && body["message"].is_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_read_in_openpai_shape_by_anyone_signed_in() {
    let app = spawn_gantry().await;
    let alice = user(&app, "alice", false).await;
    let bob = user(&app, "bob", false).await;
    let admin = app.admin_token.clone();

    let alice_seen = |email: &str| {
        json!({
            "username": "alice", "grouplist": [], "email": email,
            "virtualCluster": ["default"], "admin": false, "extension": {"team": "vision"}
        })
    };
    // Admins and the user see the email; other users see it empty.
    for (token, email) in [
        (&admin, "alice@example.org"),
        (&alice, "alice@example.org"),
        (&bob, ""),
    ] {
        for path in [
            "/api/v2/user/alice",
            "/api/v2/user/alice/",
            "/rest-server/api/v2/user/alice",
        ] {
            let (status, body) = call(&app, Method::GET, path, Some(token), None).await;
            assert_eq!((status, body), (200, alice_seen(email)), "{path}");
        }
    }
    for path in ["/api/v2/user", "/api/v2/user/", "/rest-server/api/v2/user"] {
        let (status, body) = call(&app, Method::GET, path, Some(&bob), None).await;
        assert_eq!(status, 200, "{body}");
        let names: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["admin", "alice", "bob"], "{path}");
        assert_eq!(body[1], alice_seen(""));
        assert_eq!(body[2]["email"], "bob@example.org");
        assert_eq!(body[0]["admin"], true);
    }
    // A name written as its clients encode it.
    let (status, body) = call(&app, Method::GET, "/api/v2/user/%61lice", Some(&bob), None).await;
    assert_eq!((status, body["username"].clone()), (200, json!("alice")));

    let (status, body) = call(&app, Method::GET, "/api/v2/user/ghost", Some(&bob), None).await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User ghost is not found."))
    );
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v2/user/bad%20name",
        Some(&bob),
        None,
    )
    .await;
    assert!(is_invalid(status, &body), "{status} {body}");
    for path in ["/api/v2/user", "/api/v2/user/alice"] {
        let (status, body) = call(&app, Method::GET, path, None, None).await;
        assert_eq!((status, body), (401, guest()), "{path}");
        let (status, body) = call(&app, Method::GET, path, Some("not-a-token"), None).await;
        assert_eq!((status, body), (401, guest()), "{path}");
    }
}

/// Every endpoint of the door's users and groups: a guest is 401, and a non-admin is 403 on
/// those only admins may use, each in OpenPAI's envelope.
#[tokio::test(flavor = "multi_thread")]
async fn guests_and_non_admins_are_refused_in_openpai_words() {
    let app = spawn_gantry().await;
    let alice = user(&app, "alice", false).await;
    user(&app, "bob", false).await;
    group(&app, "vision").await;

    let any = |m: Method, p: &'static str, b: Value| (m, p, b, false);
    let admin_only = |m: Method, p: &'static str, b: Value| (m, p, b, true);
    let endpoints = [
        any(Method::GET, "/api/v2/user", json!(null)),
        any(Method::GET, "/api/v2/user/bob", json!(null)),
        admin_only(
            Method::POST,
            "/api/v2/user",
            json!({"username": "carol", "password": "carol-secret"}),
        ),
        admin_only(Method::DELETE, "/api/v2/user/bob", json!(null)),
        any(
            Method::PUT,
            "/api/v2/user/bob/password",
            json!({"oldPassword": "bob-secret", "newPassword": "another-secret"}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/user/bob/virtualcluster",
            json!({"virtualCluster": ["default"]}),
        ),
        any(
            Method::PUT,
            "/api/v2/user/bob/email",
            json!({"email": "b@example.org"}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/user/bob/admin",
            json!({"admin": true}),
        ),
        any(
            Method::PUT,
            "/api/v2/user/bob/extension",
            json!({"extension": {"a": 1}}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/user/bob/grouplist",
            json!({"grouplist": ["vision"]}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/user/bob/group",
            json!({"groupname": "vision"}),
        ),
        admin_only(
            Method::DELETE,
            "/api/v2/user/bob/group",
            json!({"groupname": "vision"}),
        ),
        any(Method::GET, "/api/v2/group", json!(null)),
        any(Method::GET, "/api/v2/group/vision", json!(null)),
        admin_only(Method::POST, "/api/v2/group", json!({"groupname": "nlp"})),
        admin_only(
            Method::PUT,
            "/api/v2/group/vision/extension",
            json!({"extension": {"a": 1}}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/group/vision/extension/acls/admin",
            json!({"data": true}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/group/vision/description",
            json!({"description": "d"}),
        ),
        admin_only(
            Method::PUT,
            "/api/v2/group/vision/externalname",
            json!({"externalName": "e"}),
        ),
        admin_only(Method::DELETE, "/api/v2/group/vision", json!(null)),
    ];
    for (method, path, body, admin) in endpoints {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = call(&app, method.clone(), path, None, body.clone()).await;
        assert_eq!((status, answer), (401, guest()), "{method} {path}");
        let prefixed = format!("/rest-server{path}");
        let (status, answer) = call(&app, method.clone(), &prefixed, None, body.clone()).await;
        assert_eq!((status, answer), (401, guest()), "{method} {prefixed}");
        // alice is not bob: another user's password, email and extension are refused too.
        let (status, answer) = call(&app, method.clone(), path, Some(&alice), body).await;
        if admin || method != Method::GET {
            assert_eq!((status, answer), (403, non_admin()), "{method} {path}");
        } else {
            assert_eq!(status, 200, "{method} {path}: {answer}");
        }
    }
    // Nothing was changed by any of them.
    let (_, bob) = call(
        &app,
        Method::GET,
        "/api/v2/user/bob",
        Some(&app.admin_token),
        None,
    )
    .await;
    assert_eq!(
        bob,
        json!({"username": "bob", "grouplist": [], "email": "bob@example.org",
               "virtualCluster": ["default"], "admin": false, "extension": {"team": "vision"}})
    );
    app.login("bob", "bob-secret", 60).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_deletes_users_but_not_admins() {
    let app = spawn_gantry().await;
    user(&app, "bob", false).await;
    user(&app, "carol", false).await;
    user(&app, "boss", true).await;
    let admin = Some(app.admin_token.as_str());

    let (status, body) = call(&app, Method::DELETE, "/api/v2/user/bob", admin, None).await;
    assert_eq!(
        (status, body),
        (200, message("user is removed successfully"))
    );
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/rest-server/api/v2/user/carol/",
        admin,
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (200, message("user is removed successfully"))
    );
    assert!(app.try_login("bob", "bob-secret", 60).await.is_none());
    let (status, body) = call(&app, Method::GET, "/api/v2/user/bob", admin, None).await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User bob is not found."))
    );
    let (status, body) = call(&app, Method::DELETE, "/api/v2/user/bob", admin, None).await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User bob is not found."))
    );
    for name in ["boss", "admin"] {
        let (status, body) = call(
            &app,
            Method::DELETE,
            &format!("/api/v2/user/{name}"),
            admin,
            None,
        )
        .await;
        assert_eq!(
            (status, body),
            (
                403,
                error(
                    "RemoveAdminError",
                    &format!("Admin {name} is not allowed to remove.")
                )
            )
        );
    }
    let (status, body) = call(&app, Method::DELETE, "/api/v2/user/a%20b", admin, None).await;
    assert!(is_invalid(status, &body), "{status} {body}");
    // A deleted user's name may be taken again, with a new password.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v2/user",
        admin,
        Some(json!({"username": "bob", "password": "new-bob-secret"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(app.try_login("bob", "bob-secret", 60).await.is_none());
    app.login("bob", "new-bob-secret", 60).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_changes_their_own_password_and_an_admin_anyones() {
    let app = spawn_gantry().await;
    let alice = user(&app, "alice", false).await;
    user(&app, "bob", false).await;
    let password = |who: &str| format!("/api/v2/user/{who}/password");

    // Their own, proving the old one.
    let (status, body) = call(
        &app,
        Method::PUT,
        &password("alice"),
        Some(&alice),
        Some(json!({"oldPassword": "alice-secret", "newPassword": "alice-second"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("update user password successfully."))
    );
    assert!(app.try_login("alice", "alice-secret", 60).await.is_none());
    // A new password voids the tokens issued before it.
    let (status, body) = call(&app, Method::GET, "/api/v2/user/alice", Some(&alice), None).await;
    assert_eq!((status, body), (401, guest()));
    let alice = app.login("alice", "alice-second", 3600).await;

    let (status, body) = call(
        &app,
        Method::PUT,
        &password("alice"),
        Some(&alice),
        Some(json!({"oldPassword": "not-the-one", "newPassword": "alice-third"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            error("ForbiddenUserError", "Pls input the correct password.")
        )
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        &password("alice"),
        Some(&alice),
        Some(json!({"newPassword": "alice-third"})),
    )
    .await;
    assert!(is_invalid(status, &body), "{status} {body}");
    let (status, body) = call(
        &app,
        Method::PUT,
        &password("alice"),
        Some(&alice),
        Some(json!({"oldPassword": "alice-second", "newPassword": "short"})),
    )
    .await;
    assert!(is_invalid(status, &body), "{status} {body}");
    assert!(
        body["message"].as_str().unwrap().contains("newPassword"),
        "{body}"
    );

    // Not another user's, even with that user's password right.
    let (status, body) = call(
        &app,
        Method::PUT,
        &password("bob"),
        Some(&alice),
        Some(json!({"oldPassword": "bob-secret", "newPassword": "taken-over"})),
    )
    .await;
    assert_eq!((status, body), (403, non_admin()));
    app.login("bob", "bob-secret", 60).await;

    // An admin needs no old password.
    let (status, body) = call(
        &app,
        Method::PUT,
        "/rest-server/api/v2/user/bob/password/",
        Some(&app.admin_token),
        Some(json!({"newPassword": "bob-second"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("update user password successfully."))
    );
    assert!(app.try_login("bob", "bob-secret", 60).await.is_none());
    app.login("bob", "bob-second", 60).await;
    let (status, body) = call(
        &app,
        Method::PUT,
        &password("ghost"),
        Some(&app.admin_token),
        Some(json!({"newPassword": "ghost-secret"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User ghost is not found."))
    );
    app.login("alice", "alice-second", 60).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_clusters_email_and_extension_of_a_user() {
    let app = spawn_gantry().await;
    let alice = user(&app, "alice", false).await;
    user(&app, "bob", false).await;
    let admin = Some(app.admin_token.as_str());
    let get = |who: &'static str| {
        let app = &app;
        async move {
            call(
                app,
                Method::GET,
                &format!("/api/v2/user/{who}"),
                admin,
                None,
            )
            .await
            .1
        }
    };

    // Virtual clusters: only existing ones (`default`).
    let vc = "/api/v2/user/bob/virtualcluster";
    let (status, body) = call(
        &app,
        Method::PUT,
        vc,
        admin,
        Some(json!({"virtualCluster": []})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            201,
            message("Update user virtualCluster data successfully.")
        )
    );
    assert_eq!(get("bob").await["virtualCluster"], json!([]));
    let (status, body) = call(
        &app,
        Method::PUT,
        "/rest-server/api/v2/user/bob/virtualcluster/",
        admin,
        Some(json!({"virtualCluster": ["default"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(get("bob").await["virtualCluster"], json!(["default"]));
    let (status, body) = call(
        &app,
        Method::PUT,
        vc,
        admin,
        Some(json!({"virtualCluster": ["default", "vc2"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            error("NoVirtualClusterError", "Virtual cluster vc2 is not found.")
        )
    );
    for bad in [
        json!({"virtualCluster": ["no-dash"]}),
        json!({"virtualCluster": "default"}),
        json!({}),
    ] {
        let (status, body) = call(&app, Method::PUT, vc, admin, Some(bad.clone())).await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/ghost/virtualcluster",
        admin,
        Some(json!({"virtualCluster": ["default"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User ghost not found."))
    );
    // And when a user is created.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v2/user",
        admin,
        Some(json!({"username": "carol", "password": "carol-secret", "virtualCluster": ["vc9"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            error("NoVirtualClusterError", "Virtual cluster vc9 is not found.")
        )
    );

    // Email: their own, or anyone's for an admin. The answer is the document's.
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/email",
        Some(&alice),
        Some(json!({"email": "alice@lab.example"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            201,
            message("Update user virtualCluster data successfully.")
        )
    );
    assert_eq!(get("alice").await["email"], "alice@lab.example");
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/email/",
        admin,
        Some(json!({"email": ""})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(get("alice").await["email"], "");
    for bad in [
        json!({"email": "not an address"}),
        json!({"email": 5}),
        json!({}),
    ] {
        let (status, body) = call(
            &app,
            Method::PUT,
            "/api/v2/user/alice/email",
            Some(&alice),
            Some(bad.clone()),
        )
        .await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/ghost/email",
        admin,
        Some(json!({"email": "g@example.org"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User ghost not found."))
    );

    // Extension: the keys sent are set, the others kept.
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/extension",
        Some(&alice),
        Some(json!({"extension": {"editor": "vim", "team": {"name": "nlp"}}})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("Update user extension data successfully."))
    );
    let (status, _) = call(
        &app,
        Method::PUT,
        "/rest-server/api/v2/user/alice/extension/",
        admin,
        Some(json!({"extension": {"quota": [1, 2]}})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        get("alice").await["extension"],
        json!({"editor": "vim", "team": {"name": "nlp"}, "quota": [1, 2]})
    );
    for bad in [json!({"extension": []}), json!({})] {
        let (status, body) = call(
            &app,
            Method::PUT,
            "/api/v2/user/alice/extension",
            Some(&alice),
            Some(bad.clone()),
        )
        .await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/ghost/extension",
        admin,
        Some(json!({"extension": {}})),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User ghost not found."))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_promote_and_demote_but_keep_the_last_admin() {
    let app = spawn_gantry().await;
    let bob = user(&app, "bob", false).await;
    let admin = Some(app.admin_token.as_str());
    let set = |who: &str, to: bool| {
        let app = &app;
        let path = format!("/api/v2/user/{who}/admin");
        async move { call(app, Method::PUT, &path, admin, Some(json!({"admin": to}))).await }
    };

    assert_eq!(
        set("bob", true).await,
        (201, message("Update user admin permission successfully."))
    );
    let (_, body) = call(&app, Method::GET, "/api/v2/user/bob", Some(&bob), None).await;
    assert_eq!(body["admin"], true);
    // bob's own token now carries an admin's rights, at once.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v2/group",
        Some(&bob),
        Some(json!({"groupname": "by_bob"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The admin demotes themself while bob is one: allowed. Then bob is the last.
    assert_eq!(
        set("admin", false).await,
        (201, message("Update user admin permission successfully."))
    );
    let last = error(
        "ForbiddenUserError",
        "The last admin cannot be demoted or disabled.",
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "/rest-server/api/v2/user/bob/admin/",
        Some(&bob),
        Some(json!({"admin": false})),
    )
    .await;
    assert_eq!((status, body), (403, last));
    let (_, body) = call(&app, Method::GET, "/api/v2/user/bob", Some(&bob), None).await;
    assert_eq!(body["admin"], true);

    let bob = Some(bob.as_str());
    for bad in [json!({"admin": "yes"}), json!({})] {
        let (status, body) = call(
            &app,
            Method::PUT,
            "/api/v2/user/admin/admin",
            bob,
            Some(bad.clone()),
        )
        .await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/ghost/admin",
        bob,
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, error("NoUserError", "User ghost not found."))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_admin_loses_admin_rights_on_the_very_next_request() {
    let app = spawn_gantry().await;
    let boss = user(&app, "boss", true).await;
    let create_group = |name: &str| {
        let app = &app;
        let boss = boss.clone();
        let body = json!({ "groupname": name });
        async move { call(app, Method::POST, "/api/v2/group", Some(&boss), Some(body)).await }
    };
    assert_eq!(create_group("first").await.0, 201);

    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/v2/user/boss/admin",
        Some(&app.admin_token),
        Some(json!({"admin": false})),
    )
    .await;
    assert_eq!(status, 201);
    // The same token, the very next request.
    assert_eq!(create_group("second").await, (403, non_admin()));
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/admin/password",
        Some(&boss),
        Some(json!({"newPassword": "taken-over"})),
    )
    .await;
    assert_eq!((status, body), (403, non_admin()));
    app.login("admin", crate::helpers::ADMIN_PASSWORD, 60).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_groups_are_set_joined_and_left() {
    let app = spawn_gantry().await;
    user(&app, "alice", false).await;
    for name in ["vision", "nlp", "speech"] {
        group(&app, name).await;
    }
    let admin = Some(app.admin_token.as_str());
    let groups_of_alice = || async {
        call(&app, Method::GET, "/api/v2/user/alice", admin, None)
            .await
            .1["grouplist"]
            .clone()
    };

    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/grouplist",
        admin,
        Some(json!({"grouplist": ["vision", "nlp"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("update user grouplist successfully."))
    );
    assert_eq!(groups_of_alice().await, json!(["vision", "nlp"]));
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/grouplist",
        admin,
        Some(json!({"grouplist": ["vision", "nope"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, error("NoGroupError", "Group nope is not found."))
    );
    for bad in [
        json!({"grouplist": ["no-dash"]}),
        json!({"grouplist": "vision"}),
        json!({}),
    ] {
        let (status, body) = call(
            &app,
            Method::PUT,
            "/api/v2/user/alice/grouplist",
            admin,
            Some(bad.clone()),
        )
        .await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }
    assert_eq!(groups_of_alice().await, json!(["vision", "nlp"]));

    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/group",
        admin,
        Some(json!({"groupname": "speech"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("User alice is added into group speech"))
    );
    // Joining again changes nothing.
    let (status, _) = call(
        &app,
        Method::PUT,
        "/rest-server/api/v2/user/alice/group/",
        admin,
        Some(json!({"groupname": "speech"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(groups_of_alice().await, json!(["vision", "nlp", "speech"]));
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/api/v2/user/alice/group",
        admin,
        Some(json!({"groupname": "vision"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("User alice is removed from group vision"))
    );
    assert_eq!(groups_of_alice().await, json!(["nlp", "speech"]));

    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v2/user/alice/group",
        admin,
        Some(json!({"groupname": "nope"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, error("NoGroupError", "Group nope is not found."))
    );
    for method in [Method::PUT, Method::DELETE] {
        let (status, body) = call(
            &app,
            method.clone(),
            "/api/v2/user/ghost/group",
            admin,
            Some(json!({"groupname": "nlp"})),
        )
        .await;
        assert_eq!(
            (status, body),
            (404, error("NoUserError", "User ghost not found.")),
            "{method}"
        );
        for bad in [json!({"groupname": "a b"}), json!({})] {
            let (status, body) = call(
                &app,
                method.clone(),
                "/api/v2/user/alice/group",
                admin,
                Some(bad.clone()),
            )
            .await;
            assert!(is_invalid(status, &body), "{method} {bad}: {status} {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_are_created_changed_read_and_deleted() {
    let app = spawn_gantry().await;
    let alice = user(&app, "alice", false).await;
    let admin = Some(app.admin_token.as_str());
    let vision = |ext: Value, description: &str, external: &str| {
        json!({"groupname": "vision", "description": description, "externalName": external,
               "extension": ext})
    };

    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v2/group",
        admin,
        Some(
            json!({"groupname": "vision", "description": "the vision lab",
                    "externalName": "CN=vision", "extension": {"acls": {"admin": false}}}),
        ),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("group is created successfully"))
    );
    let (status, body) = call(
        &app,
        Method::POST,
        "/rest-server/api/v2/group/",
        admin,
        Some(json!({"groupname": "nlp"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v2/group",
        admin,
        Some(json!({"groupname": "vision"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            409,
            error("ConflictGroupError", "Group name vision already exists.")
        )
    );
    for bad in [
        json!({"groupname": "no-dash"}),
        json!({}),
        json!({"groupname": "g", "extension": {"acls": {"admin": "yes"}}}),
        json!({"groupname": "g", "extension": []}),
        json!({"groupname": "g", "description": 5}),
    ] {
        let (status, body) = call(
            &app,
            Method::POST,
            "/api/v2/group",
            admin,
            Some(bad.clone()),
        )
        .await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }

    // Anyone signed in reads them.
    let (status, body) = call(&app, Method::GET, "/api/v2/group", Some(&alice), None).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!([
                {"groupname": "nlp", "description": "", "externalName": "", "extension": {}},
                vision(json!({"acls": {"admin": false}}), "the vision lab", "CN=vision"),
            ])
        )
    );

    let path = "/api/v2/group/vision";
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("{path}/extension"),
        admin,
        Some(json!({"extension": {"storage": ["nfs"]}})),
    )
    .await;
    // The document's words for this answer.
    assert_eq!(
        (status, body),
        (201, message("group is created successfully"))
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("{path}/extension/acls/virtualClusters"),
        admin,
        Some(json!({"data": ["default", "vc2"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("Update group extension data successfully"))
    );
    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("/rest-server{path}/extension/quota/gpu/"),
        admin,
        Some(json!({"data": 4})),
    )
    .await;
    assert_eq!(status, 201);
    for (attribute, data) in [
        ("acls/admin", json!("yes")),
        ("acls/virtualClusters", json!("default")),
        ("acls/admin/deeper", json!(1)),
        ("a//b", json!(1)),
    ] {
        let (status, body) = call(
            &app,
            Method::PUT,
            &format!("{path}/extension/{attribute}"),
            admin,
            Some(json!({ "data": data })),
        )
        .await;
        assert!(is_invalid(status, &body), "{attribute}: {status} {body}");
    }
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("{path}/extension/acls/admin"),
        admin,
        Some(json!({})),
    )
    .await;
    assert!(is_invalid(status, &body), "{status} {body}");

    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("{path}/description"),
        admin,
        Some(json!({"description": "computer vision"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (201, message("update group description data successfully."))
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("{path}/externalname/"),
        admin,
        Some(json!({"externalName": "CN=cv"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            201,
            message("update group externalNameData data successfully.")
        )
    );
    for (attribute, bad) in [
        ("description", json!({"description": 1})),
        ("description", json!({})),
        ("externalname", json!({"externalName": ["x"]})),
        ("extension", json!({"extension": "x"})),
    ] {
        let (status, body) = call(
            &app,
            Method::PUT,
            &format!("{path}/{attribute}"),
            admin,
            Some(bad.clone()),
        )
        .await;
        assert!(is_invalid(status, &body), "{bad}: {status} {body}");
    }
    let expected = vision(
        json!({"acls": {"admin": false, "virtualClusters": ["default", "vc2"]},
               "storage": ["nfs"], "quota": {"gpu": 4}}),
        "computer vision",
        "CN=cv",
    );
    for (token, p) in [
        (&alice, path.to_string()),
        (&alice, format!("/rest-server{path}/")),
    ] {
        let (status, body) = call(&app, Method::GET, &p, Some(token), None).await;
        assert_eq!((status, body), (200, expected.clone()), "{p}");
    }

    let (status, body) = call(&app, Method::DELETE, path, admin, None).await;
    assert_eq!(
        (status, body),
        (200, message("group is removed successfully"))
    );
    let gone = error("NoGroupError", "Group vision is not found.");
    let (status, body) = call(&app, Method::GET, path, Some(&alice), None).await;
    assert_eq!((status, body), (404, gone.clone()));
    let (status, body) = call(&app, Method::DELETE, path, admin, None).await;
    assert_eq!((status, body), (404, gone.clone()));
    for (attribute, body) in [
        ("description", json!({"description": "x"})),
        ("externalname", json!({"externalName": "x"})),
        ("extension", json!({"extension": {}})),
        ("extension/acls/admin", json!({"data": true})),
    ] {
        let (status, answer) = call(
            &app,
            Method::PUT,
            &format!("{path}/{attribute}"),
            admin,
            Some(body),
        )
        .await;
        assert_eq!((status, answer), (404, gone.clone()), "{attribute}");
    }
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v2/group/no-dash",
        Some(&alice),
        None,
    )
    .await;
    assert!(is_invalid(status, &body), "{status} {body}");
}
