//! No password in any answer or any log line: a `gantry dev` process logging at `debug`
//! serves logins, creations, password changes and failed attempts at every door that takes
//! a password, and then neither its log nor any answer holds one of the passwords used, nor
//! one of the hashes the credential store keeps.

use std::{sync::Mutex, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, fresh_instance, gantry_process_logging, remove_instance, settings,
};

/// Sends requests and keeps every answer's text.
struct Recorder {
    http: reqwest::Client,
    base: String,
    answers: Mutex<Vec<String>>,
}

impl Recorder {
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.expect("body");
        self.answers
            .lock()
            .unwrap()
            .push(format!("{headers}\n{text}"));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An OpenPAI login; the token, if any.
    async fn pai_login(&self, username: &str, password: &str) -> Option<String> {
        let (_, body) = self
            .send(
                self.http
                    .post(self.url("/api/v1/token"))
                    .json(&json!({"username": username, "password": password})),
            )
            .await;
        body["token"].as_str().map(str::to_string)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_password_is_in_any_answer_or_log_line() {
    let settings = settings(&fresh_instance());
    let log_path = std::env::temp_dir().join(format!("{}.log", settings.instance));
    let log = std::fs::File::create(&log_path).expect("log file");
    let process = gantry_process_logging("dev", &settings, "debug", log.into()).await;
    let recorder = Recorder {
        http: reqwest::Client::new(),
        base: process.base.clone().expect("serves"),
        answers: Mutex::new(Vec::new()),
    };
    let mut admin = None;
    for _ in 0..100 {
        admin = recorder.pai_login(ADMIN, ADMIN_PASSWORD).await;
        if admin.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = admin.expect("the bootstrap admin logs in");
    let passwords = [
        "first-Secret-4711",
        "second-Secret-4712",
        "wrong-Secret-4713",
        "admin-set-Secret-4714",
        "edge-Secret-4715",
        "studio-Secret-4716",
    ];

    // OpenPAI: create, log in, a wrong guess, change one's own password, an admin's change.
    let (status, body) = recorder
        .send(
            recorder
                .http
                .post(recorder.url("/api/v2/user"))
                .bearer_auth(&admin)
                .json(&json!({"username": "alice", "password": passwords[0]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let alice = recorder
        .pai_login("alice", passwords[0])
        .await
        .expect("alice logs in");
    assert!(recorder.pai_login("alice", passwords[2]).await.is_none());
    assert!(recorder.pai_login("nobody", passwords[2]).await.is_none());
    let (status, body) = recorder
        .send(
            recorder
                .http
                .put(recorder.url("/api/v2/user/alice/password"))
                .bearer_auth(&alice)
                .json(&json!({"oldPassword": passwords[0], "newPassword": passwords[1]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = recorder
        .send(
            recorder
                .http
                .put(recorder.url("/api/v2/user/alice/password"))
                .bearer_auth(&admin)
                .json(&json!({"newPassword": passwords[3]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(recorder.pai_login("alice", passwords[3]).await.is_some());

    // The edge door: a registration, refused while pending, a wrong guess, then approved.
    let (status, body) = recorder
        .send(
            recorder
                .http
                .post(recorder.url("/v1/user"))
                .json(&json!({"user": "edgar", "password": passwords[4]})),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    for password in [passwords[4], passwords[2]] {
        let (status, _) = recorder
            .send(
                recorder
                    .http
                    .post(recorder.url("/v1/authorization"))
                    .json(&json!({"user": "edgar", "password": password})),
            )
            .await;
        assert!(status >= 400);
    }

    // The studio door: a login, a wrong guess, a password change.
    let (status, body) = recorder
        .send(
            recorder
                .http
                .post(recorder.url("/rest-auth/login/"))
                .json(&json!({"username": "alice", "password": passwords[3]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let key = body["key"].as_str().expect("a key").to_string();
    let (status, _) = recorder
        .send(
            recorder
                .http
                .post(recorder.url("/rest-auth/login/"))
                .json(&json!({"username": "alice", "password": passwords[2]})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = recorder
        .send(
            recorder
                .http
                .post(recorder.url("/rest-auth/password/change/"))
                .header("Authorization", format!("Token {key}"))
                .json(
                    &json!({"old_password": passwords[3], "new_password1": passwords[5],
                    "new_password2": passwords[5]}),
                ),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The hashes the credential store holds now are secrets too.
    let db = projection::Database::connect(&settings.database_url, &settings.instance)
        .await
        .expect("database");
    let hashes: Vec<String> = db
        .pool
        .get()
        .await
        .expect("connection")
        .query(
            "SELECT password_hash FROM credentials WHERE password_hash IS NOT NULL",
            &[],
        )
        .await
        .expect("credentials")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(hashes.len() >= 3, "{} hashes", hashes.len());

    drop(process);
    let log = std::fs::read_to_string(&log_path).expect("the log");
    let _ = std::fs::remove_file(&log_path);
    assert!(
        log.contains("alice"),
        "the log is the process's, at debug level"
    );
    let answers = recorder.answers.lock().unwrap().join("\n");
    for password in passwords.iter().chain([&ADMIN_PASSWORD]) {
        assert!(!log.contains(password), "the log holds {password}");
        assert!(!answers.contains(password), "an answer holds {password}");
    }
    for hash in &hashes {
        assert!(
            !log.contains(hash.as_str()),
            "the log holds a password hash"
        );
        assert!(
            !answers.contains(hash.as_str()),
            "an answer holds a password hash"
        );
    }
    remove_instance(&settings);
}
