//! Every endpoint of the course document: success and documented errors, bodies checked.

use serde_json::{Value, json};

use crate::helpers::spawn_gantry;

fn assert_error(status: u16, body: &Value, expected_status: u16, message: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body, &json!({ "error": true, "message": message }));
}

#[tokio::test(flavor = "multi_thread")]
async fn create_then_list_shows_the_course_with_every_field() {
    let app = spawn_gantry().await;
    let (status, body) = app
        .send(app.admin(app.http.post(app.url("/v1/course/create"))).body(
            r#"{"user":"jimmy","name":"image process","introduction":"markdown text with escape","image":"nvidia/caffe:latest","level":"basic","GPU":2,"datasets":["mnist","caltech256"]}"#,
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "error": false, "message": "Course image process created successfully" })
    );

    let courses = app.courses_of("jimmy").await;
    assert_eq!(courses.len(), 1);
    let course = &courses[0];
    assert_eq!(course["name"], "image process");
    assert_eq!(course["introduction"], "markdown text with escape");
    assert_eq!(course["image"], "nvidia/caffe:latest");
    assert_eq!(course["level"], "basic");
    assert_eq!(course["gpu"], 2);
    assert_eq!(course["datasets"], json!(["mnist", "caltech256"]));
    let id = course["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let created = course["createAt"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == 20,
        "createAt is RFC 3339 to the second: {created}"
    );
    let keys: Vec<&str> = course
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "createAt",
            "name",
            "introduction",
            "image",
            "gpu",
            "level",
            "datasets"
        ]
    );
    assert!(app.courses_of("somebody-else").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_path_answers_with_and_without_a_trailing_slash() {
    let app = spawn_gantry().await;
    let id = app.create_course("jimmy", "slash", "advance").await;
    for path in ["/v1/course/list", "/v1/course/list/"] {
        let (status, body) = app.send(app.http.get(app.url(path))).await;
        assert_eq!(
            (status, body["courses"].as_array().map(Vec::len)),
            (200, Some(1)),
            "GET {path}"
        );
        let (status, body) = app
            .send(
                app.admin(app.http.post(app.url(path)))
                    .body(r#"{"user":"jimmy"}"#),
            )
            .await;
        assert_eq!(
            (status, body["courses"].as_array().map(Vec::len)),
            (200, Some(1)),
            "POST {path}"
        );
    }
    for path in [
        format!("/v1/course/get/{id}"),
        format!("/v1/course/get/{id}/"),
    ] {
        let (status, body) = app.send(app.admin(app.http.get(app.url(&path)))).await;
        assert_eq!(
            (status, body["course"]["id"].as_str()),
            (200, Some(id.as_str())),
            "{path}"
        );
    }
    for path in ["/v1/course/level/advance", "/v1/course/level/advance/"] {
        let (status, body) = app.send(app.http.get(app.url(path))).await;
        assert_eq!(
            (status, body["courses"].as_array().map(Vec::len)),
            (200, Some(1)),
            "{path}"
        );
    }
    for path in ["/v1/course/search", "/v1/course/search/"] {
        let (status, body) = app
            .send(app.http.post(app.url(path)).body(r#"{"query":"sla"}"#))
            .await;
        assert_eq!(
            (status, body["courses"].as_array().map(Vec::len)),
            (200, Some(1)),
            "{path}"
        );
    }
    for (i, path) in ["/v1/course/create", "/v1/course/create/"]
        .iter()
        .enumerate()
    {
        let (status, _) = app
            .send(
                app.admin(app.http.post(app.url(path)))
                    .body(format!(r#"{{"user":"amy","name":"c{i}"}}"#)),
            )
            .await;
        assert_eq!(status, 200, "{path}");
    }
    for (i, path) in ["/v1/course/update", "/v1/course/update/"]
        .iter()
        .enumerate()
    {
        let (status, _) = app
            .send(
                app.admin(app.http.put(app.url(path)))
                    .body(format!(r#"{{"id":"{id}","name":"renamed {i}"}}"#)),
            )
            .await;
        assert_eq!(status, 200, "{path}");
    }
    for path in ["/v1/health/database", "/v1/health/database/"] {
        let (status, _) = app
            .send(app.http.post(app.url(path)).body(r#"{"message":"x"}"#))
            .await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _) = app
        .send(
            app.admin(
                app.http
                    .delete(app.url(&format!("/v1/course/delete/{id}/"))),
            ),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_errors_are_told_apart_as_the_document_lists_them() {
    let app = spawn_gantry().await;
    let create = || {
        app.http
            .post(app.url("/v1/course/create"))
            .body(r#"{"user":"jimmy","name":"x"}"#)
    };
    let (status, body) = app.send(create()).await;
    assert_error(status, &body, 401, "Authorization header is missing");
    let (status, body) = app
        .send(create().header("Authorization", "Token abc"))
        .await;
    assert_error(
        status,
        &body,
        401,
        "Authorization header is not Bearer Token format or token is missing",
    );
    let (status, body) = app.send(create().header("Authorization", "Bearer")).await;
    assert_error(
        status,
        &body,
        401,
        "Authorization header is not Bearer Token format or token is missing",
    );
    let (status, body) = app.send(create().bearer_auth("not-a-token")).await;
    assert_error(status, &body, 403, "Invalid API token");

    // A token that lives one second works at once and is refused once that second is over.
    let short = app.login("admin", "admin-password", 1).await;
    let (status, _) = app.send(create().bearer_auth(&short)).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = app.send(create().bearer_auth(&short)).await;
    assert_error(status, &body, 403, "Access token expired");

    // Which endpoints need a token follows the platform.
    let id = app.create_course("jimmy", "open", "basic").await;
    for (method, path, body) in [
        ("POST", "/v1/course/list".to_string(), r#"{"user":"jimmy"}"#),
        ("PUT", "/v1/course/update".to_string(), r#"{"id":"x"}"#),
        ("DELETE", format!("/v1/course/delete/{id}"), ""),
        ("GET", format!("/v1/course/get/{id}"), ""),
        (
            "POST",
            "/v1/health/databaseAuth".to_string(),
            r#"{"message":"x"}"#,
        ),
    ] {
        let request = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .body(body);
        let (status, body) = app.send(request).await;
        assert_error(status, &body, 401, "Authorization header is missing");
    }
    for (method, path, body) in [
        ("GET", "/v1/course/list", ""),
        ("GET", "/v1/course/level/basic", ""),
        ("POST", "/v1/course/search", r#"{"query":"o"}"#),
        ("POST", "/v1/health/database", r#"{"message":"x"}"#),
    ] {
        let (status, _) = app
            .send(
                app.http
                    .request(method.parse().unwrap(), app.url(path))
                    .body(body),
            )
            .await;
        assert_eq!(status, 200, "{method} {path} answers without a token");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_are_400s_in_the_course_envelope() {
    let app = spawn_gantry().await;
    let post = |path: &str, body: &'static str| app.admin(app.http.post(app.url(path))).body(body);

    let (status, body) = app.send(post("/v1/course/list", r#"{"user":""}"#)).await;
    assert_error(status, &body, 400, "Empty user name");
    let (status, body) = app.send(post("/v1/course/list", r#"{}"#)).await;
    assert_error(status, &body, 400, "Empty user name");
    for bad in [r#"{"user":"#, "", "[1,2]", r#"{"user": 5}"#] {
        let (status, body) = app.send(post("/v1/course/list", bad)).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"], true);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Failed to parse spec request request: "),
            "{body}"
        );
    }
    let (status, body) = app
        .send(post(
            "/v1/course/create",
            r#"{"user":"j","name":"x","GPU":"one"}"#,
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to parse spec request request: invalid type"),
        "{body}"
    );
    let (status, body) = app
        .send(post(
            "/v1/course/create",
            r#"{"user":"j","name":"x","GPU":-1}"#,
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .send(post("/v1/course/create", r#"{"user":"j","name":""}"#))
        .await;
    assert_error(
        status,
        &body,
        400,
        "Failed to parse spec request request: name is empty",
    );
    let (status, body) = app.send(post("/v1/course/search", r#"{"query":""}"#)).await;
    assert_error(status, &body, 400, "Empty query condition");
    assert!(
        app.send(app.http.get(app.url("/v1/course/list"))).await.1["courses"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Unknown fields are ignored; null is an empty value.
    let (status, _) = app
        .send(post(
            "/v1/course/create",
            r#"{"user":"j","name":"x","colour":"blue","datasets":null,"GPU":null}"#,
        ))
        .await;
    assert_eq!(status, 200);

    // Over 1 MiB is 413, and nothing is written.
    let huge = format!(
        r#"{{"user":"j","name":"huge","introduction":"{}"}}"#,
        "a".repeat(1024 * 1024)
    );
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/course/create")))
                .body(huge),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], true);
    assert_eq!(app.courses_of("j").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_changes_what_is_given_and_refuses_unknown_ids() {
    let app = spawn_gantry().await;
    let id = app.create_course("jimmy", "before", "basic").await;
    let (status, body) = app
        .send(app.admin(app.http.put(app.url("/v1/course/update"))).body(format!(
            r#"{{"id":"{id}","name":"after","introduction":"","level":"advance","datasets":["cifar-10"]}}"#
        )))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "error": false, "message": format!("Course {id} updated successfully") })
    );
    let (_, body) = app
        .send(app.admin(app.http.get(app.url(&format!("/v1/course/get/{id}")))))
        .await;
    assert_eq!(body["course"]["name"], "after");
    assert_eq!(
        body["course"]["introduction"], "intro",
        "an empty value leaves the field as it was"
    );
    assert_eq!(body["course"]["level"], "advance");
    assert_eq!(body["course"]["datasets"], json!(["cifar-10"]));
    assert_eq!(body["course"]["image"], "nvidia/caffe:latest");

    let put = |body: String| {
        app.admin(app.http.put(app.url("/v1/course/update")))
            .body(body)
    };
    let (status, body) = app.send(put(r#"{"name":"x"}"#.into())).await;
    assert_error(status, &body, 400, "Course id is empty");
    for unknown in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".into(),
        "'; DROP TABLE course; --".into(),
    ] {
        let (status, body) = app
            .send(put(json!({ "id": unknown, "name": "x" }).to_string()))
            .await;
        assert_error(status, &body, 400, "Course Id is not found");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_the_course_once() {
    let app = spawn_gantry().await;
    let id = app.create_course("jimmy", "doomed", "basic").await;
    let delete = |path: String| app.admin(app.http.delete(app.url(&path)));
    let (status, body) = app.send(delete(format!("/v1/course/delete/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "error": false, "message": format!("Course {id} is deleted successfully, associated jobs are also deleted") })
    );
    assert!(app.courses_of("jimmy").await.is_empty());
    let (status, body) = app
        .send(app.admin(app.http.get(app.url(&format!("/v1/course/get/{id}")))))
        .await;
    assert_error(status, &body, 400, "Course Id is not found");
    let (status, body) = app.send(delete(format!("/v1/course/delete/{id}"))).await;
    assert_error(status, &body, 400, "Course Id is not found");
    let (status, body) = app.send(delete("/v1/course/delete/".into())).await;
    assert_error(status, &body, 400, "Empty course id");
    let (status, body) = app
        .send(delete("/v1/course/delete/%27%20OR%201=1".into()))
        .await;
    assert_error(status, &body, 400, "Course Id is not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_level_list_and_search_read_the_catalogue() {
    let app = spawn_gantry().await;
    let basic = app.create_course("amy", "Deep Learning 101", "basic").await;
    app.create_course("bob", "deep dive: 100% GPUs_", "advance")
        .await;
    app.create_course("bob", "画像処理 ✓", "advance").await;

    let (status, body) = app
        .send(app.admin(app.http.get(app.url(&format!("/v1/course/get/{basic}")))))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["error"], false);
    assert_eq!(body["course"]["name"], "Deep Learning 101");
    let (status, body) = app
        .send(app.admin(app.http.get(app.url("/v1/course/get/"))))
        .await;
    assert_error(status, &body, 400, "Empty course id");

    let (_, body) = app
        .send(app.http.get(app.url("/v1/course/level/advance")))
        .await;
    let names: Vec<&str> = body["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deep dive: 100% GPUs_", "画像処理 ✓"]);
    let (_, body) = app
        .send(app.http.get(app.url("/v1/course/level/expert")))
        .await;
    assert_eq!(body, json!({ "error": false, "courses": [] }));
    let (status, body) = app.send(app.http.get(app.url("/v1/course/level/"))).await;
    assert_error(status, &body, 400, "empty level string");

    let (_, body) = app.send(app.http.get(app.url("/v1/course/list"))).await;
    assert_eq!(body["courses"].as_array().unwrap().len(), 3);

    let search = |q: &str| {
        app.http
            .post(app.url("/v1/course/search"))
            .body(json!({ "query": q }).to_string())
    };
    let names = |body: Value| -> Vec<String> {
        body["courses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(app.send(search("Deep")).await.1),
        ["Deep Learning 101"],
        "search is case-sensitive"
    );
    assert_eq!(
        names(app.send(search("%")).await.1),
        ["deep dive: 100% GPUs_"],
        "% is itself"
    );
    assert_eq!(
        names(app.send(search("_")).await.1),
        ["deep dive: 100% GPUs_"],
        "_ is itself"
    );
    assert_eq!(names(app.send(search("処理")).await.1), ["画像処理 ✓"]);
    assert!(names(app.send(search("' OR ''='")).await.1).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_on_another_origin_are_answered() {
    let app = spawn_gantry().await;
    let response = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/course/create"))
        .header("Origin", "http://frontend.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "authorization,content-type"
    );
    assert!(
        response.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    let response = app
        .http
        .get(app.url("/v1/course/list"))
        .header("Origin", "http://x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response.headers().contains_key("x-request-id"));
    // The document's samples send JSON as a form (`curl -d`): accepted all the same.
    let (status, _) = app
        .send(
            app.admin(app.http.post(app.url("/v1/course/list")))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(r#"{"user":"jimmy"}"#),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_lists_the_instance_tables() {
    let app = spawn_gantry().await;
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/v1/health/database"))
                .body(r#"{"message": "xs"}"#),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["error"], false);
    assert_eq!(body["message"], "xs");
    let tables: Vec<&str> = body["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tables.contains(&"course") && tables.contains(&"users"),
        "{tables:?}"
    );

    let (status, body) = app
        .send(
            app.http
                .post(app.url("/v1/health/databaseAuth"))
                .body(r#"{"message": "xs"}"#),
        )
        .await;
    assert_error(status, &body, 401, "Authorization header is missing");
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/v1/health/databaseAuth")))
                .body(r#"{"message": "ys"}"#),
        )
        .await;
    assert_eq!((status, &body["message"]), (200, &json!("ys")));
    let (status, body) = app
        .send(app.http.post(app.url("/v1/health/database")).body("{"))
        .await;
    assert_eq!((status, &body["error"]), (400, &json!(true)));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_and_methods_are_clear_errors() {
    let app = spawn_gantry().await;
    let (status, body) = app.send(app.http.get(app.url("/v1/nothing"))).await;
    assert_eq!((status, &body["error"]), (404, &json!(true)));
    let (status, body) = app.send(app.http.patch(app.url("/v1/course/list"))).await;
    assert_eq!((status, &body["error"]), (405, &json!(true)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_that_is_not_text_is_answered_by_the_door() {
    let app = spawn_gantry().await;
    let bytes = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let request = app
        .http
        .post(app.url("/v1/course/create"))
        .header("Authorization", bytes.clone())
        .header(
            "X-Request-Id",
            reqwest::header::HeaderValue::from_bytes(b"\xff").unwrap(),
        )
        .body(r#"{"user":"j","name":"x"}"#);
    let (status, body) = app.send(request).await;
    assert_error(status, &body, 403, "Invalid API token");
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/api/v2/user"))
                .header("Authorization", bytes)
                .body("{}"),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (401, &json!("UnauthorizedUserError"))
    );
}
