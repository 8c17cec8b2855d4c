//! Who may do what, at every door: one table, checked against a running Gantry and
//! rendered into `docs/authorization.md` (run with `GANTRY_WRITE_DOCS=1` to write it; the
//! test fails when the document and the table differ).
//!
//! For each endpoint: a guest gets 401 unless the endpoint is open; a user on an admin
//! endpoint gets 403; a user on another user's resource gets 403 while their own is
//! allowed; an admin is allowed. "Allowed" means the door got past authorization: any
//! answer but 401 or 403 (a 404 for a resource that is not there is allowed). Every refusal
//! is checked to be in the door's own envelope.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_gantry};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone, without a token.
    Open,
    /// Any user with a token.
    User,
    /// A user on their own resource; an admin on anyone's.
    Own,
    /// Admins only.
    Admin,
    /// The holder of a refresh token (the edge platform's refresh): a guest and an access
    /// token are refused.
    Refresh,
}

/// What `{mine}` and `{theirs}` stand for in a row's path and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    None,
    /// A course of the caller, and one of another user.
    Course,
    /// The caller's own user name, and another user's.
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Courses,
    Pai,
    Edge,
    Studio,
    Gantry,
    Accounting,
    Metrics,
}

impl Door {
    fn title(self) -> &'static str {
        match self {
            Door::Courses => "GPU course platform",
            Door::Pai => "OpenPAI",
            Door::Edge => "Edge AI platform",
            Door::Studio => "Machine-learning studio",
            Door::Gantry => "Gantry admin",
            Door::Accounting => "Slurm allocation accounting",
            Door::Metrics => "Gantry metrics",
        }
    }

    /// Asserts that a refusal is in this door's envelope.
    fn assert_envelope(self, status: u16, body: &Value, what: &str) {
        let ok = match self {
            Door::Courses => body["error"] == true && body["message"].is_string(),
            Door::Pai => {
                let code = if status == 401 {
                    "UnauthorizedUserError"
                } else {
                    "ForbiddenUserError"
                };
                body["code"] == code && body["message"].is_string()
            }
            Door::Gantry => {
                let kind = if status == 401 {
                    "Unauthorized"
                } else {
                    "Forbidden"
                };
                body["error"] == kind && body["message"].is_string()
            }
            Door::Edge => body["code"] == status && body["message"].is_string(),
            Door::Studio => body["detail"].is_string(),
            Door::Accounting => body["success"] == false && body["error"] == "Not authorized.",
            Door::Metrics => true,
        };
        assert!(ok, "{what}: {status} {body} is not the door's envelope");
    }
}

struct Row {
    door: Door,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    access: Access,
    resource: Resource,
    /// Whether the call voids the caller's tokens (a logout, a new password): the admin's
    /// call is then made by an admin of its own.
    revokes: bool,
}

fn row(door: Door, method: &'static str, path: &'static str, access: Access) -> Row {
    Row {
        door,
        method,
        path,
        body: None,
        access,
        resource: Resource::None,
        revokes: false,
    }
}

impl Row {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn on(mut self, resource: Resource) -> Self {
        self.resource = resource;
        self
    }

    /// A call that voids the caller's tokens, made by a user of its own.
    fn revoking(mut self) -> Self {
        self.revokes = true;
        self.resource = Resource::User;
        self
    }
}

/// Every endpoint that takes a request of a person (the simulator's are the cluster's).
fn table() -> Vec<Row> {
    use Access::*;
    use Door::*;
    let course = json!({"user": "{mine}", "name": "matrix", "introduction": "i",
        "image": "nvidia/caffe:latest", "level": "basic", "GPU": 1, "datasets": []});
    vec![
        row(Courses, "GET", "/v1/course/list", Open),
        row(Courses, "POST", "/v1/course/list", User).body(json!({"user": "{mine}"})),
        row(Courses, "POST", "/v1/course/create", Own)
            .body(course)
            .on(Resource::User),
        row(Courses, "PUT", "/v1/course/update", Own)
            .body(json!({"id": "{theirs}", "name": "renamed"}))
            .on(Resource::Course),
        row(Courses, "DELETE", "/v1/course/delete/{theirs}", Own).on(Resource::Course),
        row(Courses, "GET", "/v1/course/get/{theirs}", User).on(Resource::Course),
        row(Courses, "GET", "/v1/course/level/basic", Open),
        row(Courses, "POST", "/v1/course/search", Open).body(json!({"query": "m"})),
        row(Courses, "POST", "/v1/health/database", Open).body(json!({"message": "hi"})),
        row(Courses, "POST", "/v1/health/databaseAuth", User).body(json!({"message": "hi"})),
        row(Courses, "GET", "/v1/health/kubernetes", Open),
        row(Courses, "GET", "/v1/health/kubernetesAuth", User),
        row(Courses, "POST", "/v1/job/launch", Own)
            .body(json!({"course_id": "00000000-0000-4000-8000-000000000000", "user": "{theirs}"}))
            .on(Resource::User),
        row(Courses, "POST", "/v1/job/list", Own)
            .body(json!({"user": "{theirs}"}))
            .on(Resource::User),
        // A job of nobody: any user gets past the token check (the owner rule is the
        // jobs test's).
        row(
            Courses,
            "DELETE",
            "/v1/job/delete/00000000-0000-4000-8000-000000000000",
            User,
        ),
        row(Courses, "GET", "/v1/datasets", User),
        row(Courses, "GET", "/v1/images", User),
        row(Courses, "POST", "/v1/images", Admin).body(json!({"image": "nvidia/digits:6.0"})),
        row(Courses, "DELETE", "/v1/images", Admin).body(json!({"image": "nvidia/digits:6.0"})),
        row(Courses, "POST", "/v1/proxy/token", Open).body(json!({"code": "nothing"})),
        row(Courses, "POST", "/v1/proxy/refresh", Open).body(json!({"refresh_token": "nothing"})),
        row(Courses, "POST", "/v1/proxy/introspection", Open).body(json!({"token": "nothing"})),
        row(Pai, "GET", "/api/v1", Open),
        row(Pai, "POST", "/api/v1/token", Open)
            .body(json!({"username": "nobody", "password": "nothing"})),
        row(Pai, "POST", "/api/v2/user", Admin)
            .body(json!({"username": "made_by_matrix", "password": "a-secret-word"})),
        row(Pai, "GET", "/api/v2/user", User),
        row(Pai, "GET", "/api/v2/user/{theirs}", User).on(Resource::User),
        row(Pai, "DELETE", "/api/v2/user/{theirs}", Admin).on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/password", Own)
            .body(json!({"oldPassword": "a-secret-word", "newPassword": "another-secret"}))
            .on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/virtualcluster", Admin)
            .body(json!({"virtualCluster": ["default"]}))
            .on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/email", Own)
            .body(json!({"email": "someone@example.org"}))
            .on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/admin", Admin)
            .body(json!({"admin": false}))
            .on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/extension", Own)
            .body(json!({"extension": {"k": "v"}}))
            .on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/grouplist", Admin)
            .body(json!({"grouplist": []}))
            .on(Resource::User),
        row(Pai, "PUT", "/api/v2/user/{theirs}/group", Admin)
            .body(json!({"groupname": "nogroup"}))
            .on(Resource::User),
        row(Pai, "DELETE", "/api/v2/user/{theirs}/group", Admin)
            .body(json!({"groupname": "nogroup"}))
            .on(Resource::User),
        row(Pai, "GET", "/api/v2/group", User),
        row(Pai, "GET", "/api/v2/group/nogroup", User),
        row(Pai, "POST", "/api/v2/group", Admin).body(json!({"groupname": "made_by_matrix"})),
        row(Pai, "PUT", "/api/v2/group/nogroup/extension", Admin)
            .body(json!({"extension": {"k": "v"}})),
        row(
            Pai,
            "PUT",
            "/api/v2/group/nogroup/extension/acls/virtualClusters",
            Admin,
        )
        .body(json!({"data": ["default"]})),
        row(Pai, "PUT", "/api/v2/group/nogroup/description", Admin)
            .body(json!({"description": "d"})),
        row(Pai, "PUT", "/api/v2/group/nogroup/externalname", Admin)
            .body(json!({"externalName": "e"})),
        row(Pai, "DELETE", "/api/v2/group/nogroup", Admin),
        row(Edge, "POST", "/v1/authorization", Open)
            .body(json!({"user": "alice", "password": "a-secret-word"})),
        row(Edge, "PUT", "/v1/authorization", Refresh).on(Resource::User),
        row(Edge, "DELETE", "/v1/authorization", User).revoking(),
        row(Edge, "GET", "/v1/authorization", User),
        row(Edge, "POST", "/v1/user", Open)
            .body(json!({"user": "registered_by_matrix", "password": "a-secret-word"})),
        row(Edge, "PUT", "/v1/user", User)
            .body(json!({"oldPassword": "a-secret-word", "password": "another-secret"}))
            .revoking(),
        row(Edge, "GET", "/v1/admin/user", Admin),
        row(Edge, "POST", "/v1/admin/user", Admin)
            .body(json!({"user": "sub_by_matrix", "password": "a-secret-word"})),
        row(Edge, "PUT", "/v1/admin/user/999999", Admin).body(json!({"status": 0})),
        row(Edge, "DELETE", "/v1/admin/user/999999", Admin),
        row(Edge, "PUT", "/v1/admin/user/999999/password", Admin)
            .body(json!({"password": "another-secret"})),
        row(Studio, "POST", "/rest-auth/login/", Open)
            .body(json!({"username": "nobody", "password": "nothing"})),
        row(Studio, "POST", "/rest-auth/logout/", Open).revoking(),
        row(Studio, "POST", "/rest-auth/password/change/", User)
            .body(
                json!({"old_password": "a-secret-word", "new_password1": "Another-Secret-9",
                "new_password2": "Another-Secret-9"}),
            )
            .revoking(),
        row(Studio, "POST", "/rest-auth/password/reset/", Open)
            .body(json!({"email": "nobody@example.org"})),
        row(Studio, "POST", "/rest-auth/password/reset/confirm/", Open).body(json!({
            "uid": "MQ", "token": "nothing", "new_password1": "Another-Secret-9",
            "new_password2": "Another-Secret-9"})),
        row(Studio, "GET", "/rest-auth/user/", User),
        row(Studio, "PUT", "/rest-auth/user/", User)
            .body(json!({"username": "{mine}", "first_name": "Ada"}))
            .on(Resource::User),
        row(Studio, "PATCH", "/rest-auth/user/", User).body(json!({"first_name": "Ada"})),
        row(Studio, "POST", "/rest-auth/registration/", Open).body(json!({
            "username": "studio_matrix", "email": "studio@example.org",
            "password1": "Another-Secret-9", "password2": "Another-Secret-9"})),
        row(
            Studio,
            "POST",
            "/rest-auth/registration/verify-email/",
            Open,
        )
        .body(json!({"key": "nothing"})),
        row(Gantry, "GET", "/admin/projections", Admin),
        row(Gantry, "GET", "/admin/parked", Admin),
        row(Gantry, "POST", "/admin/parked/1/retry", Admin),
        row(Gantry, "POST", "/admin/projections/rebuild", Admin)
            .body(json!({"projection": "group_directory"})),
        row(Gantry, "GET", "/admin/events", Admin),
        row(Gantry, "GET", "/admin/aggregates/course/{theirs}", Admin).on(Resource::Course),
        row(
            Gantry,
            "DELETE",
            "/admin/users/{theirs}/personal-data",
            Admin,
        )
        .on(Resource::User),
        row(Accounting, "GET", "/accounting/", User),
        row(Accounting, "GET", "/accounting/jobs/", User),
        row(Accounting, "POST", "/accounting/jobs/", Admin).body(json!({"jobslurmid": 1})),
        row(Accounting, "GET", "/accounting/jobs/1/", User),
        row(Accounting, "PATCH", "/accounting/jobs/1/", Admin).body(json!({"amount": 1})),
        row(Accounting, "GET", "/accounting/users/", User),
        row(Accounting, "POST", "/accounting/users/", Admin).body(json!({"username": "x"})),
        row(Accounting, "GET", "/accounting/users/1/", User),
        row(Accounting, "PATCH", "/accounting/users/1/", Admin).body(json!({"usermetadata": "m"})),
        row(Accounting, "GET", "/accounting/accounts/", User),
        row(Accounting, "POST", "/accounting/accounts/", Admin).body(json!({"accountname": "x"})),
        row(Accounting, "GET", "/accounting/accounts/1/", User),
        row(Accounting, "PATCH", "/accounting/accounts/1/", Admin).body(json!({"type": "ICA"})),
        row(Accounting, "POST", "/accounting/credentials/", Admin).body(json!({"cluster": "brc"})),
        row(Metrics, "GET", "/metrics", Open),
    ]
}

/// The table as operators read it.
fn render(rows: &[Row]) -> String {
    let mut text = String::from(
        "# Who may do what\n\n\
         Generated from the authorization test (`tests/api/authorization.rs`), which checks \
         every line against a running Gantry. A guest has no token; a user has one; *own* \
         means a user may act on their own resource (their courses, their account) and gets \
         403 on another user's, while an admin may act on anyone's. A refusal is 401 for a \
         guest and 403 for a user, in the door's own envelope. The OAuth2 login form \
         (`/oauth/authorize`) and `/v1/proxy/logout` take no token of the caller's \
         (a password, and the token to end) and are tested with the course door.\n",
    );
    let mut door = None;
    for row in rows {
        if door != Some(row.door) {
            door = Some(row.door);
            text.push_str(&format!(
                "\n## {}\n\n| method | path | guest | user | admin |\n| --- | --- | --- | --- | --- |\n",
                row.door.title()
            ));
        }
        let (guest, user) = match row.access {
            Access::Open => ("yes", "yes"),
            Access::User => ("401", "yes"),
            Access::Own => ("401", "own only (403)"),
            Access::Admin => ("401", "403"),
            Access::Refresh => ("401", "with a refresh token"),
        };
        let path = row.path.replace("{theirs}", ":id").replace("{mine}", ":id");
        text.push_str(&format!(
            "| {} | `{}` | {guest} | {user} | yes |\n",
            row.method, path
        ));
    }
    text
}

struct Fixture {
    app: TestApp,
    user_token: String,
    serial: std::sync::atomic::AtomicUsize,
}

impl Fixture {
    async fn new() -> Self {
        let app = spawn_gantry().await;
        create_user(&app, "alice").await;
        create_user(&app, "bob").await;
        let user_token = app.login("alice", "a-secret-word", 3600).await;
        Self {
            app,
            user_token,
            serial: Default::default(),
        }
    }

    /// `(mine, theirs, the user's token)` for a row: fresh each time, so a row that deletes
    /// or changes a password leaves the next one its own.
    async fn resources(&self, resource: Resource) -> (String, String, String) {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match resource {
            Resource::None => ("alice".into(), "bob".into(), self.user_token.clone()),
            Resource::User => {
                let (mine, theirs) = (format!("mine{n}"), format!("theirs{n}"));
                create_user(&self.app, &mine).await;
                create_user(&self.app, &theirs).await;
                let token = self.app.login(&mine, "a-secret-word", 3600).await;
                (mine, theirs, token)
            }
            Resource::Course => (
                self.app
                    .create_course("alice", &format!("mine{n}"), "basic")
                    .await,
                self.app
                    .create_course("bob", &format!("theirs{n}"), "basic")
                    .await,
                self.user_token.clone(),
            ),
        }
    }

    /// An admin of their own, for a call that voids the caller's tokens.
    async fn fresh_admin(&self) -> String {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("admin{n}");
        let (status, body) = self
            .app
            .send(
                self.app
                    .admin(self.app.http.post(self.app.url("/api/v2/user")))
                    .json(&json!({"username": name, "password": "a-secret-word", "admin": true})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.app.login(&name, "a-secret-word", 3600).await
    }

    /// A refresh token of `username`, from a login at the edge door.
    async fn refresh_token(&self, username: &str) -> String {
        let password = if username == crate::helpers::ADMIN {
            crate::helpers::ADMIN_PASSWORD
        } else {
            "a-secret-word"
        };
        let (status, body) = self
            .app
            .send(
                self.app
                    .http
                    .post(self.app.url("/v1/authorization"))
                    .json(&json!({"user": username, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["refreshToken"]
            .as_str()
            .expect("a refresh token")
            .to_string()
    }

    /// The status and body of `row` sent with `token`, `{target}` being `target`.
    async fn call(&self, row: &Row, token: Option<&str>, target: &str, mine: &str) -> (u16, Value) {
        let fill = |text: &str| text.replace("{theirs}", target).replace("{mine}", mine);
        let url = self.app.url(&fill(row.path));
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method");
        let mut request = self.app.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &row.body {
            request = request
                .header("content-type", "application/json")
                .body(fill(&body.to_string()));
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

async fn create_user(app: &TestApp, username: &str) {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({
                    "username": username, "password": "a-secret-word"
                })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn allowed(status: u16) -> bool {
    status != 401 && status != 403
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_refuses_and_allows_as_the_table_says() {
    let rows = table();
    let fixture = Fixture::new().await;
    let admin = fixture.app.admin_token.clone();
    for row in &rows {
        let what = format!("{} {}", row.method, row.path);
        let (mine, theirs, user) = fixture.resources(row.resource).await;
        // For a row on the caller's own things, the user's own resource is `{theirs}` of
        // the allowed call.
        let (status, body) = fixture.call(row, None, &theirs, &mine).await;
        if row.access == Access::Open {
            assert!(allowed(status), "{what} as a guest: {status} {body}");
        } else {
            assert_eq!(status, 401, "{what} as a guest: {body}");
            row.door.assert_envelope(status, &body, &what);
        }
        match row.access {
            Access::Open | Access::User => {
                let (status, body) = fixture.call(row, Some(&user), &theirs, &mine).await;
                assert!(allowed(status), "{what} as a user: {status} {body}");
            }
            Access::Refresh => {
                let (status, body) = fixture.call(row, Some(&user), &theirs, &mine).await;
                assert_eq!(status, 401, "{what} with an access token: {body}");
                row.door.assert_envelope(status, &body, &what);
                let refresh = fixture.refresh_token(&mine).await;
                let (status, body) = fixture.call(row, Some(&refresh), &theirs, &mine).await;
                assert!(
                    allowed(status),
                    "{what} with a refresh token: {status} {body}"
                );
            }
            Access::Admin => {
                let (status, body) = fixture.call(row, Some(&user), &theirs, &mine).await;
                assert_eq!(status, 403, "{what} as a user: {body}");
                row.door.assert_envelope(status, &body, &what);
            }
            Access::Own => {
                // Another user's: `{mine}` is theirs too.
                let (status, body) = fixture.call(row, Some(&user), &theirs, &theirs).await;
                assert_eq!(status, 403, "{what} as a user on another's: {body}");
                row.door.assert_envelope(status, &body, &what);
                let (status, body) = fixture.call(row, Some(&user), &mine, &mine).await;
                assert!(
                    allowed(status),
                    "{what} as a user on their own: {status} {body}"
                );
            }
        }
        let (_, theirs, _) = fixture.resources(row.resource).await;
        let admin = match (row.access, row.revokes) {
            (Access::Refresh, _) => fixture.refresh_token(crate::helpers::ADMIN).await,
            (_, true) => fixture.fresh_admin().await,
            _ => admin.clone(),
        };
        let (status, body) = fixture.call(row, Some(&admin), &theirs, &theirs).await;
        assert!(allowed(status), "{what} as an admin: {status} {body}");
    }
}

#[test]
fn the_document_shows_the_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/authorization.md");
    let rendered = render(&table());
    if std::env::var_os("GANTRY_WRITE_DOCS").is_some() {
        std::fs::write(&path, &rendered).expect("docs/authorization.md is written");
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == rendered,
        "docs/authorization.md differs from the table; run \
         GANTRY_WRITE_DOCS=1 cargo test --test api authorization:: and commit it"
    );
}
