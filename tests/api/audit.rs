//! The admins' view of the log: who did what (actors, request ids), the log filtered and
//! paged and followed, an aggregate as of a past moment, rebuilds that never take the read
//! models down, and the audit that recomputes them from the log.

use std::time::Duration;

use events::user::user_id;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, course_envelope, eventually, gantry_process_logging, settings, spawn_gantry,
};

/// `GET /admin/events?<query>` as the admin: status and body.
async fn events(app: &TestApp, query: &str) -> (u16, Value) {
    app.send(app.admin(app.http.get(app.url(&format!("/admin/events?{query}")))))
        .await
}

fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

async fn create_user(app: &TestApp, username: &str) {
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({"username": username, "password": "a-secret-word"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn rename(app: &TestApp, id: &str, name: &str) {
    let (status, body) = app
        .send(
            app.admin(app.http.put(app.url("/v1/course/update")))
                .body(json!({"id": id, "name": name}).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Appends `n` course creations straight onto the log, many in flight at once.
async fn flood(app: &TestApp, n: usize) {
    let js = app.jetstream().await;
    let instance = app.settings.instance.clone();
    futures::stream::iter(0..n)
        .map(|i| {
            let js = js.clone();
            let id = uuid::Uuid::new_v4().to_string();
            let subject = format!("{instance}.ev.course.{id}");
            let payload = course_envelope(
                &id,
                "CourseCreated",
                1,
                json!({"owner": "flood", "name": format!("flood {i}"), "introduction": "",
                       "image": "", "level": "basic", "gpu": 1, "datasets": []}),
            );
            async move {
                js.publish(subject, payload.into())
                    .await
                    .expect("publish")
                    .await
                    .expect("ack");
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
}

/// `GET /admin/projections` as the admin.
async fn projections(app: &TestApp) -> Value {
    let (status, body) = app
        .send(app.admin(app.http.get(app.url("/admin/projections"))))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn rebuild_of<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["projections"]
        .as_array()
        .expect("projections")
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["rebuild"])
        .unwrap_or_else(|| panic!("{name} in {status}"))
}

/// Runs `gantry <args>` for the instance and returns its exit status and stdout.
fn gantry(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env("GANTRY_INSTANCE", &app.settings.instance)
        .env("GANTRY_NATS_URL", &app.settings.nats_url)
        .env("GANTRY_DATABASE_URL", &app.settings.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("gantry runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn events_name_their_actor_and_keep_the_request_id() {
    let app = spawn_gantry().await;
    let response = app
        .admin(app.http.post(app.url("/api/v2/user")))
        .header("X-Request-Id", "audit-req-17")
        .json(&json!({"username": "ada", "password": "a-secret-word"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "audit-req-17");
    // An id that is not a sane token is replaced by a fresh one.
    let response = app
        .admin(app.http.get(app.url("/admin/projections")))
        .header("X-Request-Id", "has spaces")
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");

    let (status, page) = events(
        &app,
        &format!("aggregate=user&aggregate_id={}", user_id("ada")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let created = &page["events"][0];
    assert_eq!(created["type"], "UserCreated", "{page}");
    assert_eq!(created["meta"]["actor"], "user:admin");
    assert_eq!(created["meta"]["request_id"], "audit-req-17");
    // The bootstrap admin was made by Gantry itself.
    let (_, page) = events(
        &app,
        &format!("aggregate=user&aggregate_id={}", user_id("admin")),
    )
    .await;
    assert_eq!(page["events"][0]["meta"]["actor"], "system:bootstrap");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_filtered_and_paged_in_sequence_order() {
    let app = spawn_gantry().await;
    let first = app.create_course("ada", "one", "basic").await;
    let before_second = chrono::Utc::now();
    let second = app.create_course("ada", "two", "basic").await;
    rename(&app, &first, "one renamed").await;
    create_user(&app, "bob").await;

    // Every course event, in order, with its sequence.
    let (status, all) = events(&app, "aggregate=course").await;
    assert_eq!(status, 200, "{all}");
    let types: Vec<_> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(types, ["CourseCreated", "CourseCreated", "CourseUpdated"]);
    assert_eq!(all["next_after"], Value::Null);
    let all_seqs = seqs(&all);
    assert!(all_seqs.windows(2).all(|w| w[0] < w[1]), "{all_seqs:?}");

    // Pages of two, each starting after the last: the same events, once each.
    let (_, page1) = events(&app, "aggregate=course&limit=2").await;
    assert_eq!(seqs(&page1), all_seqs[..2]);
    assert_eq!(page1["next_after"], all_seqs[1]);
    let (_, page2) = events(
        &app,
        &format!("aggregate=course&limit=2&after={}", all_seqs[1]),
    )
    .await;
    assert_eq!(seqs(&page2), all_seqs[2..]);
    assert_eq!(page2["next_after"], Value::Null);

    // One aggregate, one type, one actor, a time and a sequence range.
    let (_, one) = events(&app, &format!("aggregate=course&aggregate_id={first}")).await;
    assert_eq!(seqs(&one), [all_seqs[0], all_seqs[2]]);
    let (_, by_id) = events(&app, &format!("aggregate_id={second}")).await;
    assert_eq!(seqs(&by_id), [all_seqs[1]]);
    let (_, updates) = events(&app, "type=CourseUpdated").await;
    assert_eq!(seqs(&updates), [all_seqs[2]]);
    let (_, by_admin) = events(&app, "actor=user:admin&aggregate=user").await;
    assert_eq!(
        by_admin["events"][0]["data"]["username"], "bob",
        "{by_admin}"
    );
    let (_, nobody) = events(&app, "actor=user:nobody").await;
    assert_eq!(nobody["events"], json!([]));
    let from = before_second.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, since) = events(&app, &format!("aggregate=course&from={}", urlencode(&from))).await;
    assert_eq!(seqs(&since), all_seqs[1..]);
    let (_, until) = events(&app, &format!("aggregate=course&to={}", urlencode(&from))).await;
    assert_eq!(seqs(&until), all_seqs[..1]);
    let (_, after) = events(&app, &format!("after={}", all_seqs[2])).await;
    assert_eq!(after["events"][0]["type"], "UserCreated", "{after}");

    // The whole match as NDJSON, without paging.
    let response = app
        .admin(
            app.http
                .get(app.url("/admin/events?aggregate=course&limit=1")),
        )
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[2]["seq"], all_seqs[2]);

    // Bad input is the client's, said clearly.
    for (query, says) in [
        ("aggregate=spaceship", "unknown aggregate type"),
        ("aggregate_id=a.b", "aggregate_id"),
        ("from=yesterday", "from must be an RFC 3339"),
        ("to=2026-02-30T00:00:00Z", "to must be an RFC 3339"),
        ("after=-3", "after must be"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("follow=maybe", "follow"),
    ] {
        let (status, body) = events(&app, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "BadRequest", "{query}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }

    // Admins only.
    let (status, body) = app.send(app.http.get(app.url("/admin/events"))).await;
    assert_eq!((status, &body["error"]), (401, &json!("Unauthorized")));
    let bob = app.login("bob", "a-secret-word", 3600).await;
    let (status, body) = app
        .send(app.http.get(app.url("/admin/events")).bearer_auth(bob))
        .await;
    assert_eq!((status, &body["error"]), (403, &json!("Forbidden")));
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_receives_an_event_appended_after_it_connected() {
    let app = spawn_gantry().await;
    let old = app.create_course("ada", "before", "basic").await;

    for accept in ["application/x-ndjson", "text/event-stream"] {
        let response = app
            .admin(
                app.http
                    .get(app.url("/admin/events?aggregate=course&follow=true")),
            )
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(accept),
            "{accept}: {:?}",
            response.headers()
        );
        let mut body = response;
        let mut seen = String::new();
        let name = format!("after {accept}");
        let mut created = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !seen.contains(&name) {
            if seen.contains(&old) && !created {
                // Connected and caught up: now a new event.
                app.create_course("ada", &name, "basic").await;
                created = true;
            }
            let chunk = tokio::time::timeout_at(deadline, body.chunk())
                .await
                .unwrap_or_else(|_| panic!("{accept}: nothing new arrived; seen {seen}"))
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        if accept == "text/event-stream" {
            assert!(seen.contains("event:CourseCreated"), "{seen}");
            assert!(seen.contains("id:"), "{seen}");
        } else {
            let last: Value =
                serde_json::from_str(seen.trim_end().lines().last().unwrap()).unwrap();
            assert_eq!(last["data"]["name"], name.as_str());
        }
        // The client leaves; the server goes on serving.
        drop(body);
    }
    let (status, _) = events(&app, "limit=1").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aggregate_shows_its_state_as_of_a_past_moment() {
    let app = spawn_gantry().await;
    let id = app.create_course("ada", "first name", "basic").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    rename(&app, &id, "second name").await;
    let get = |query: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.send(
                app.admin(
                    app.http
                        .get(app.url(&format!("/admin/aggregates/course/{id}{query}"))),
                ),
            )
            .await
        }
    };

    let (status, now) = get(String::new()).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(
        (&now["aggregate"], &now["id"]),
        (&json!("course"), &json!(id))
    );
    assert_eq!(now["events"].as_array().unwrap().len(), 2);
    assert_eq!(now["state"]["status"], "active");
    assert_eq!(now["state"]["details"]["name"], "second name", "{now}");

    let first_seq = now["events"][0]["seq"].as_u64().unwrap();
    let (status, then) = get(format!("?seq={first_seq}")).await;
    assert_eq!(status, 200);
    assert_eq!(then["events"].as_array().unwrap().len(), 1);
    assert_eq!(then["state"]["details"]["name"], "first name", "{then}");
    let at = urlencode(&between.to_rfc3339());
    let (_, then) = get(format!("?at={at}")).await;
    assert_eq!(then["state"]["details"]["name"], "first name", "{then}");
    let (_, before) = get("?at=2000-01-01T00:00:00Z".into()).await;
    assert_eq!(
        (&before["events"], &before["state"]["status"]),
        (&json!([]), &json!("new"))
    );

    // Users fold through the user aggregate's own evolve.
    let (status, user) = app
        .send(
            app.admin(
                app.http
                    .get(app.url(&format!("/admin/aggregates/user/{}", user_id("admin")))),
            ),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["state"]["profile"]["username"], "admin");

    for (path, status, error) in [
        ("/admin/aggregates/spaceship/x", 400, "BadRequest"),
        (
            "/admin/aggregates/course/00000000-0000-4000-8000-000000000000",
            404,
            "NotFound",
        ),
        (
            &*format!("/admin/aggregates/course/{id}?at=noon"),
            400,
            "BadRequest",
        ),
        (
            &*format!("/admin/aggregates/course/{id}?seq=x"),
            400,
            "BadRequest",
        ),
        (
            &*format!("/admin/aggregates/course/{id}?seq=1&at=2026-01-01T00:00:00Z"),
            400,
            "BadRequest",
        ),
    ] {
        let (got, body) = app.send(app.admin(app.http.get(app.url(path)))).await;
        assert_eq!(
            (got, &body["error"]),
            (status, &json!(error)),
            "{path}: {body}"
        );
    }
}

/// The indexes of the tables in `schema`, by name.
async fn index_names(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let rows = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_runs_while_queries_and_writes_go_on() {
    let app = spawn_gantry().await;
    const FLOOD: usize = 20_000;
    flood(&app, FLOOD).await;
    let mine = app.create_course("ada", "mine", "basic").await;
    create_user(&app, "bob").await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            projections(&app).await["projections"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["lag"] == 0)
        })
        .await,
        "the read models catch up"
    );

    // Another process holding the rebuild of the catalogue: 409 for that one and for all.
    let db = app.database().await;
    let holder = db.pool.get().await.unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock(hashtext($1), hashtext('course_catalogue'))",
            &[&app.settings.instance],
        )
        .await
        .unwrap();
    for body in [
        json!({"projection": "course_catalogue"}),
        json!({"projection": "all"}),
    ] {
        let (status, answer) = app
            .send(
                app.admin(app.http.post(app.url("/admin/projections/rebuild")))
                    .json(&body),
            )
            .await;
        assert_eq!(
            (status, &answer["error"]),
            (409, &json!("Conflict")),
            "{body}: {answer}"
        );
    }
    holder
        .execute(
            "SELECT pg_advisory_unlock(hashtext($1), hashtext('course_catalogue'))",
            &[&app.settings.instance],
        )
        .await
        .unwrap();
    let (status, answer) = app
        .send(
            app.admin(app.http.post(app.url("/admin/projections/rebuild")))
                .json(&json!({"projection": "nothing"})),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("BadRequest")),
        "{answer}"
    );

    let before = index_names(&holder, &app.settings.instance).await;

    // An empty body rebuilds all.
    let (status, answer) = app
        .send(app.admin(app.http.post(app.url("/admin/projections/rebuild/"))))
        .await;
    assert_eq!(status, 202, "{answer}");
    let every: Vec<&str> = projection::registry::registered()
        .iter()
        .map(|p| p.name())
        .collect();
    assert_eq!(answer["rebuilding"], json!(every));

    // Early in the catalogue's rebuild (far from its end), a second request is refused.
    let early = eventually(Duration::from_secs(30), || async {
        let status = projections(&app).await;
        let catalogue = rebuild_of(&status, "course_catalogue");
        catalogue["status"] == "rebuilding"
            && catalogue["applied"].as_u64().unwrap_or(0) < FLOOD as u64 / 2
    })
    .await;
    assert!(early, "the rebuild was seen running early on");
    let (status, answer) = app
        .send(
            app.admin(app.http.post(app.url("/admin/projections/rebuild")))
                .json(&json!({"projection": "all"})),
        )
        .await;
    assert_eq!(status, 409, "{answer}");

    // Queries never fail nor see fewer courses; writes go on.
    let mut written = Vec::new();
    for round in 0.. {
        let (status, course) = app.get_course(&mine).await;
        assert_eq!(status, 200, "round {round}: {course}");
        let (status, list) = app.send(app.http.get(app.url("/v1/course/list"))).await;
        assert_eq!(status, 200, "round {round}: {list}");
        let count = list["courses"].as_array().map_or(0, Vec::len);
        assert!(
            count > FLOOD + written.len(),
            "round {round}: {count} courses"
        );
        if round % 5 == 0 {
            written.push(
                app.create_course("ada", &format!("during {round}"), "basic")
                    .await,
            );
        }
        let status = projections(&app).await;
        let rebuilds: Vec<&Value> = ["course_catalogue", "user_directory", "group_directory"]
            .iter()
            .map(|name| rebuild_of(&status, name))
            .collect();
        if rebuilds
            .iter()
            .all(|r| r["status"] == "idle" && r["outcome"] == "done")
        {
            assert!(
                rebuilds[0]["applied"].as_u64().unwrap() > FLOOD as u64,
                "{status}"
            );
            assert!(rebuilds[0]["finished_at"].is_string(), "{status}");
            break;
        }
        assert!(round < 3000, "the rebuild ends: {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every course written during the rebuild is there, and the models equal the log.
    for id in &written {
        assert_eq!(app.get_course(id).await.0, 200, "{id}");
    }
    let (ok, out, err) = gantry(&app, &["audit", "verify"]);
    assert!(ok, "audit after the rebuild: {out} {err}");
    assert!(err.contains("course_catalogue: matches the log"), "{err}");
    // No scratch schema is left behind.
    let client = db.pool.get().await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1 || '\\_%'",
            &[&app.settings.instance],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // The swapped-in tables (filled unlogged) survive a crash of the database like the rest.
    let unlogged: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relpersistence <> 'p'",
            &[&app.settings.instance],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(unlogged.is_empty(), "unlogged after the swap: {unlogged:?}");
    // And with every index they had (those not needed while filling are built at the end).
    let after = index_names(&client, &app.settings.instance).await;
    assert_eq!(after, before);
    assert!(after.iter().any(|i| i == "course_owner"), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_killed_half_way_leaves_the_live_tables_serving_and_starts_again() {
    let app = spawn_gantry().await;
    flood(&app, 20000).await;
    let mine = app.create_course("ada", "mine", "basic").await;
    assert!(
        eventually(Duration::from_secs(120), || async {
            rebuild_of(&projections(&app).await, "course_catalogue").is_object()
                && app
                    .checkpoint("course_catalogue")
                    .await
                    .is_some_and(|(seq, _)| seq > 20000)
        })
        .await
    );

    let mut replay = gantry_process_logging(
        "replay",
        &settings(&app.settings.instance),
        "warn",
        std::process::Stdio::null(),
    )
    .await;
    // Half way: killed.
    assert!(
        eventually(Duration::from_secs(60), || async {
            let status = projections(&app).await;
            let rebuild = rebuild_of(&status, "course_catalogue");
            rebuild["status"] == "rebuilding" && rebuild["applied"].as_u64().unwrap_or(0) > 0
        })
        .await,
        "the replay got going"
    );
    replay.child.kill().unwrap();
    replay.child.wait().unwrap();

    // The live tables still serve, and the rebuild reads as interrupted, not running.
    assert_eq!(app.get_course(&mine).await.0, 200);
    let (status, list) = app.send(app.http.get(app.url("/v1/course/list"))).await;
    assert_eq!(status, 200);
    assert_eq!(list["courses"].as_array().unwrap().len(), 20001);
    let status = projections(&app).await;
    let rebuild = rebuild_of(&status, "course_catalogue");
    assert_eq!(
        (&rebuild["status"], &rebuild["outcome"]),
        (&json!("idle"), &json!("interrupted")),
        "{status}"
    );

    // Started again, it simply runs to the end (and drops the leftover).
    let (ok, out, err) = gantry(&app, &["replay", "--projection", "course_catalogue"]);
    assert!(ok, "{out} {err}");
    assert!(err.contains("rebuilt course_catalogue"), "{err}");
    let status = projections(&app).await;
    assert_eq!(
        rebuild_of(&status, "course_catalogue")["outcome"],
        "done",
        "{status}"
    );
    assert_eq!(app.get_course(&mine).await.0, 200);
    let (ok, out, err) = gantry(&app, &["audit", "verify"]);
    assert!(ok, "{out} {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_catches_a_read_model_row_altered_by_hand() {
    let app = spawn_gantry().await;
    let id = app.create_course("ada", "honest", "basic").await;
    create_user(&app, "bob").await;
    let (ok, out, err) = gantry(&app, &["audit", "verify"]);
    assert!(ok, "{out} {err}");
    assert_eq!(out, "", "nothing differs");
    for name in ["course_catalogue", "user_directory", "group_directory"] {
        assert!(err.contains(&format!("{name}: matches the log")), "{err}");
    }

    let db = app.database().await;
    let client = db.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE course SET name = 'tampered' WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    client
        .execute("DELETE FROM users WHERE username = 'bob'", &[])
        .await
        .unwrap();
    let (ok, out, err) = gantry(&app, &["audit", "verify"]);
    assert!(!ok, "the audit fails: {out} {err}");
    assert!(
        out.contains("course_catalogue.course: missing") && out.contains("honest"),
        "{out}"
    );
    assert!(
        out.contains("course_catalogue.course: unexpected") && out.contains("tampered"),
        "{out}"
    );
    assert!(
        out.contains("user_directory.users: missing") && out.contains("bob"),
        "{out}"
    );
    assert!(err.contains("group_directory: matches the log"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gantry_events_prints_the_log_as_json_lines() {
    let app = spawn_gantry().await;
    let id = app.create_course("ada", "printed", "basic").await;
    let (ok, out, err) = gantry(
        &app,
        &["events", "--aggregate", "course", "--aggregate-id", &id],
    );
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["type"], "CourseCreated");
    assert_eq!(lines[0]["meta"]["actor"], "user:admin");
    assert!(lines[0]["seq"].is_u64());
    let (ok, _, err) = gantry(&app, &["events", "--aggregate", "spaceship"]);
    assert!(!ok);
    assert!(err.contains("unknown aggregate type"), "{err}");
}
