//! The accounting door and its charge subject, end to end: accounts, users and jobs in the
//! DRF service's shapes, charges exactly once whichever way they come, and the epilogue as
//! a real process.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_instance, settings, spawn_gantry, spawn_with};

const RATES: &str = "[default]\ncpu_hour = 1.0\ngpu_hour = 0.0\n\n[partition.gpu]\ncpu_hour = 1.0\ngpu_hour = 10.0\n";

impl TestApp {
    fn acct(&self, path: &str) -> String {
        self.url(&format!("/accounting/{path}"))
    }

    /// An admin request at the accounting door, with `Token` as DRF clients send it.
    async fn acct_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.acct(path))
            .header("authorization", format!("Token {}", self.admin_token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn open_account(&self, name: &str, allocation: i64, account_type: &str) -> i64 {
        let (status, body) = self
            .acct_send(
                reqwest::Method::POST,
                "accounts/",
                Some(json!({
                    "accountname": name, "accountallocation": allocation,
                    "type": account_type, "description": "Research of potatoes"
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["accountid"].as_i64().expect("accountid")
    }

    async fn add_slurm_user(&self, username: &str) -> i64 {
        let (status, body) = self
            .acct_send(
                reqwest::Method::POST,
                "users/",
                Some(json!({
                    "username": username, "usermetadata": "despacito",
                    "email": format!("{username}@ocf.berkeley.edu"), "ldapuid": 1092385
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["userid"].as_i64().expect("userid")
    }

    async fn balance(&self, account: i64) -> Value {
        let (status, body) = self
            .acct_send(reqwest::Method::GET, &format!("accounts/{account}/"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["accountbalance"].clone()
    }

    /// One request on the charge subject, and its reply.
    async fn charge(&self, nats: &async_nats::Client, request: &Value) -> Value {
        let reply = nats
            .request(
                format!("{}.cmd.accounting.charge", self.settings.instance),
                serde_json::to_vec(request).unwrap().into(),
            )
            .await
            .expect("the charge service replies");
        serde_json::from_slice(&reply.payload).expect("a JSON reply")
    }

    async fn nats(&self) -> async_nats::Client {
        async_nats::connect(self.settings.nats_url.as_str())
            .await
            .expect("NATS")
    }

    /// The `SUCharged` events of one Slurm job in the log.
    async fn charges_of(&self, cluster: &str, slurm_job_id: i64) -> Vec<Value> {
        let id = events::accounting::slurm_job_id(cluster, slurm_job_id);
        self.events_of("slurm_job", &id)
            .await
            .into_iter()
            .filter(|e| e["type"] == "SUCharged")
            .collect()
    }
}

fn charge_request(job: i64, su: Value) -> Value {
    json!({
        "cluster": "brc", "slurm_job_id": job, "user": "shasan", "account": "fc_hasan",
        "partition": "gpu", "su": su, "cpus": 4, "gpus": 1, "nodes": 1,
        "start": "2026-11-30T10:00:00Z", "end": "2026-11-30T11:00:00Z"
    })
}

#[tokio::test]
async fn accounts_users_and_jobs_in_the_services_shapes() {
    let app = spawn_gantry().await;
    // The root, with links built from the request's Host; no token is 401.
    let (status, body) = app
        .send(
            app.http
                .get(app.acct(""))
                .header("host", "accounting.example:8111"),
        )
        .await;
    assert_eq!(
        (status, body),
        (401, json!({"success": false, "error": "Not authorized."}))
    );
    let (status, body) = app
        .send(
            app.http
                .get(app.acct(""))
                .header("host", "accounting.example:8111")
                .header("authorization", format!("Bearer {}", app.admin_token)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "users": "http://accounting.example:8111/accounting/users/",
            "jobs": "http://accounting.example:8111/accounting/jobs/",
            "accounts": "http://accounting.example:8111/accounting/accounts/"
        })
    );

    // An account from JSON, a user from a form, a job from a multipart body.
    let account = app.open_account("fc_hasan", 1_000_000, "FCA").await;
    let (status, body) = app
        .send(
            app.http
                .post(app.acct("users/"))
                .header("authorization", format!("Token {}", app.admin_token))
                .form(&[
                    ("username", "shasan"),
                    ("usermetadata", "despacito"),
                    ("email", "shasan@ocf.berkeley.edu"),
                    ("ldapuid", "1092385"),
                ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let user = body["userid"].as_i64().unwrap();
    assert_eq!(body["username"], "shasan");
    assert_eq!(body["ldapuid"], 1092385);
    assert_eq!(body["accounts"], json!([]));
    assert_eq!(body["success"], true);

    // Partitions and QOS are named once (a charge names them) and shown as ids.
    let nats = app.nats().await;
    let reply = app.charge(&nats, &charge_request(1, json!(10))).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let boundary = "XyZ123";
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let multipart: String = [
        part("jobslurmid", "2"),
        part("cluster", "brc"),
        part("submitdate", "2017-07-18T08:39:29Z"),
        part("startdate", "2017-07-19T08:39:29Z"),
        part("enddate", "2017-07-20T08:39:29Z"),
        part("userid", &user.to_string()),
        part("accountid", &account.to_string()),
        part("amount", "0"),
        part("jobstatus", "4"),
        part("partition", "1"),
        part("qos", "1"),
    ]
    .concat()
        + &format!("--{boundary}--\r\n");
    let (status, job) = app
        .send(
            app.http
                .post(app.acct("jobs/"))
                .header("authorization", format!("Token {}", app.admin_token))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(multipart),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    let number = job["jobnumber"].as_i64().unwrap();
    for (field, value) in [
        ("jobslurmid", json!(2)),
        ("submitdate", json!("2017-07-18T08:39:29Z")),
        ("startdate", json!("2017-07-19T08:39:29Z")),
        ("enddate", json!("2017-07-20T08:39:29Z")),
        ("userid", json!(user)),
        ("accountid", json!(account)),
        ("amount", json!(0)),
        ("jobstatus", json!(4)),
        ("partition", json!(1)),
        ("qos", json!(1)),
        ("success", json!(true)),
    ] {
        assert_eq!(job[field], value, "{field}: {job}");
    }

    // The epilogue's PATCH: 0 → 1,337 charges 1,337; → 1,500 charges 163; → 1,000 refunds.
    for (amount, balance) in [
        ("1337", 1_000_000 - 10 - 1337),
        ("1500", 1_000_000 - 10 - 1500),
        ("1000", 1_000_000 - 10 - 1000),
        ("1000", 1_000_000 - 10 - 1000),
    ] {
        let (status, body) = app
            .send(
                app.http
                    .patch(app.acct(&format!("jobs/{number}/")))
                    .header("authorization", format!("Token {}", app.admin_token))
                    .form(&[("amount", amount)]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["amount"], amount.parse::<i64>().unwrap());
        assert_ne!(body["updated"], job["updated"]);
        assert_eq!(app.balance(account).await, balance);
    }
    let charges = app.charges_of("brc", 2).await;
    let moved: Vec<i64> = charges
        .iter()
        .map(|c| c["data"]["su_hundredths"].as_i64().unwrap())
        .collect();
    assert_eq!(moved, vec![133_700, 16_300, -50_000]);

    // The account shows its balance and its members (the user joined through their job).
    let (status, body) = app
        .acct_send(reqwest::Method::GET, &format!("accounts/{account}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["users"], json!([user]));
    assert_eq!(body["accountallocation"], 1_000_000);
    assert_eq!(body["accountname"], "fc_hasan");
    assert_eq!(body["overdrawn"], false);
    let (_, body) = app
        .acct_send(reqwest::Method::GET, &format!("users/{user}/"), None)
        .await;
    assert_eq!(body["accounts"], json!([account]));

    // An account PATCH: name, allocation (the balance moves with it), a balance that is
    // not the derived one is refused.
    let (status, body) = app
        .acct_send(
            reqwest::Method::PATCH,
            &format!("accounts/{account}/"),
            Some(json!({"accountname": "fc_zhang", "accountallocation": 2_000_000})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accountname"], "fc_zhang");
    assert_eq!(body["accountbalance"], 2_000_000 - 1010);
    let (status, body) = app
        .acct_send(
            reqwest::Method::PATCH,
            &format!("accounts/{account}/"),
            Some(json!({"accountbalance": 5})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "Invalid account information.");
    assert_eq!(
        body["accountbalance"],
        json!(["The balance is the allocation minus the charges; it cannot be set."])
    );

    // Lists with the DRF paging and filters.
    let (status, body) = app.acct_send(reqwest::Method::GET, "jobs/", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 2);
    assert_eq!(body["next"], Value::Null);
    assert_eq!(body["previous"], Value::Null);
    assert_eq!(body["success"], true);
    for (query, expected) in [
        ("jobs/?slurmjobid=2", json!([number])),
        ("jobs/?slurmjobid=99", json!([])),
        ("jobs/?amount=1000", json!([number])),
        ("jobs/?amount=1000.001", json!([number])),
        ("jobs/?status=4", json!([number])),
        (
            &format!("jobs/?userid={user}&accountid={account}&slurmjobid=2"),
            json!([number]),
        ),
        ("jobs/?partition=1&qos=1&slurmjobid=2", json!([number])),
        ("jobs/?submitdate=2017-07-18", json!([number])),
        ("jobs/?startdate=2017-07-19T08:39:29Z", json!([number])),
        ("jobs/?enddate=2017-07-21", json!([])),
    ] {
        let (status, body) = app.acct_send(reqwest::Method::GET, query, None).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["results"]["jobnumber"], expected, "{query}");
    }
    for (query, expected) in [
        ("users/?saviousername=shasan", json!([user])),
        ("users/?ldapid=1092385", json!([user])),
        ("users/?email=shasan@ocf.berkeley.edu", json!([user])),
        (&format!("users/?accountid={account}"), json!([user])),
        ("users/?email=nobody@example.org", json!([])),
        ("accounts/?accountname=fc_zhang", json!([account])),
        (&format!("accounts/?userid={user}"), json!([account])),
        ("accounts/?allocation=2000000&type=FCA", json!([account])),
        ("accounts/?type=ICA", json!([])),
    ] {
        let (status, body) = app.acct_send(reqwest::Method::GET, query, None).await;
        assert_eq!(status, 200, "{query}: {body}");
        let key = if query.starts_with("users") {
            "userid"
        } else {
            "accountid"
        };
        assert_eq!(body["results"][key], expected, "{query}");
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, body) = app
        .acct_send(
            reqwest::Method::GET,
            &format!("accounts/?created={today}"),
            None,
        )
        .await;
    assert_eq!(body["results"]["accountid"], json!([account]));
    for query in [
        "jobs/?slurmjobid=two",
        "jobs/?amount=NaN",
        "users/?ldapid=x",
        "accounts/?created=July",
    ] {
        let (status, body) = app.acct_send(reqwest::Method::GET, query, None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"], "Invalid filter.");
    }
    for page in ["2", "0", "x"] {
        let (status, body) = app
            .acct_send(reqwest::Method::GET, &format!("jobs/?page={page}"), None)
            .await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Invalid page."})),
            "{page}"
        );
    }

    // Bad input: every 400 with the document's words, and no event written.
    let before = app.whole_log().await.len();
    for (path, method, body, error, field) in [
        (
            "jobs/999999/",
            "GET",
            None,
            "Invalid job/Job not found.",
            None,
        ),
        ("jobs/abc/", "GET", None, "Invalid job/Job not found.", None),
        (
            "users/999999/",
            "GET",
            None,
            "Invalid user/User not found.",
            None,
        ),
        (
            "accounts/999999/",
            "GET",
            None,
            "Invalid account/Account not found.",
            None,
        ),
        (
            "jobs/999999/",
            "PATCH",
            Some(json!({"amount": 5})),
            "Invalid job/Job not found.",
            None,
        ),
        (
            &format!("jobs/{number}/") as &str,
            "PATCH",
            Some(json!({"amount": "NaN"})),
            "Invalid amount.",
            Some("amount"),
        ),
        (
            &format!("jobs/{number}/"),
            "PATCH",
            Some(json!({"amount": "Infinity"})),
            "Invalid amount.",
            Some("amount"),
        ),
        (
            &format!("jobs/{number}/"),
            "PATCH",
            Some(json!({"amount": 1e12})),
            "Invalid amount.",
            Some("amount"),
        ),
        (
            &format!("jobs/{number}/"),
            "PATCH",
            Some(json!({"amount": -5})),
            "Invalid amount.",
            Some("amount"),
        ),
        (
            &format!("jobs/{number}/"),
            "PATCH",
            Some(json!({"startdate": "yesterday"})),
            "Invalid job information.",
            Some("startdate"),
        ),
        (
            &format!("jobs/{number}/"),
            "PATCH",
            Some(json!({"userid": 999999})),
            "Invalid job information.",
            Some("userid"),
        ),
        (
            "jobs/",
            "POST",
            Some(json!({"jobslurmid": 3})),
            "Invalid job information.",
            Some("submitdate"),
        ),
        (
            "jobs/",
            "POST",
            Some(json!({
                "jobslurmid": 3, "submitdate": "2017-07-18T08:39:29Z", "userid": 999999,
                "accountid": account, "amount": 1, "jobstatus": 1, "partition": 1, "qos": 1
            })),
            "Invalid job information.",
            Some("userid"),
        ),
        (
            "jobs/",
            "POST",
            Some(json!({
                "jobslurmid": 3, "submitdate": "2017-07-18T08:39:29Z", "userid": user,
                "accountid": 999999, "amount": 1, "jobstatus": 1, "partition": 77, "qos": 40000
            })),
            "Invalid job information.",
            Some("accountid"),
        ),
        (
            "users/",
            "POST",
            Some(json!({
                "username": "shasan", "usermetadata": "x", "email": "a@b.c", "ldapuid": 1
            })),
            "Invalid user information.",
            Some("username"),
        ),
        (
            "users/",
            "POST",
            Some(json!({
                "username": "a-very-long-username-indeed", "usermetadata": "x", "email": "nope", "ldapuid": 3_000_000_000i64
            })),
            "Invalid user information.",
            Some("ldapuid"),
        ),
        (
            "accounts/",
            "POST",
            Some(json!({
                "accountname": "fc_zhang", "accountallocation": 1, "type": "FCA", "description": "d"
            })),
            "Invalid account information.",
            Some("accountname"),
        ),
        (
            "accounts/",
            "POST",
            Some(json!({
                "accountname": "x", "accountallocation": 1, "type": "ELEVENCHARS", "description": "d"
            })),
            "Invalid account information.",
            Some("type"),
        ),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, answer) = app.acct_send(method.clone(), path, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_eq!(answer["success"], false, "{answer}");
        assert_eq!(answer["error"], error, "{method} {path}: {answer}");
        if let Some(field) = field {
            assert!(answer[field].is_array(), "{method} {path}: {answer}");
        }
    }
    assert_eq!(app.whole_log().await.len(), before, "no event was written");

    // OPTIONS: DRF's metadata, from the same rules as validation.
    let (status, body) = app.acct_send(reqwest::Method::OPTIONS, "jobs/", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "Job List");
    let post = &body["actions"]["POST"];
    assert_eq!(
        post["jobslurmid"],
        json!({"type": "integer", "required": true, "read_only": false, "label": "Jobslurmid",
               "min_value": -2147483648i64, "max_value": 2147483647})
    );
    assert_eq!(post["qos"]["max_value"], 32767);
    assert_eq!(post["amount"]["type"], "float");
    assert_eq!(post["jobnumber"]["read_only"], true);
    let (_, body) = app
        .acct_send(reqwest::Method::OPTIONS, "users/", None)
        .await;
    assert_eq!(body["actions"]["POST"]["username"]["max_length"], 20);
    assert_eq!(body["actions"]["POST"]["email"]["max_length"], 100);
    let (_, body) = app
        .acct_send(reqwest::Method::OPTIONS, "accounts/", None)
        .await;
    assert_eq!(body["actions"]["POST"]["accountname"]["max_length"], 50);
    assert_eq!(body["actions"]["POST"]["description"]["max_length"], 150);
    assert_eq!(
        body["actions"]["POST"]["users"]["read_only"], false,
        "admins set users"
    );
    let (_, body) = app
        .acct_send(reqwest::Method::OPTIONS, &format!("jobs/{number}/"), None)
        .await;
    assert_eq!(body["name"], "Job Instance");
    assert_eq!(body["actions"]["PATCH"]["amount"]["required"], false);
}

#[tokio::test]
async fn a_list_pages_by_100_with_links_that_keep_the_filters() {
    let app = spawn_gantry().await;
    let account = app.open_account("fc_pages", 10, "FCA").await;
    let mut users = Vec::new();
    for i in 0..101 {
        users.push(app.add_slurm_user(&format!("u{i:03}")).await);
    }
    let (status, body) = app
        .acct_send(reqwest::Method::GET, "users/?email=&x=1", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 0);
    let (status, body) = app
        .send(
            app.http
                .get(app.acct("users/?x=1"))
                .header("host", "acct.example")
                .header("authorization", format!("Token {}", app.admin_token)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 101);
    assert_eq!(body["results"]["userid"].as_array().unwrap().len(), 100);
    assert_eq!(
        body["next"],
        "http://acct.example/accounting/users/?x=1&page=2"
    );
    assert_eq!(body["previous"], Value::Null);
    let (status, body) = app
        .send(
            app.http
                .get(app.acct("users/?x=1&page=2"))
                .header("host", "acct.example")
                .header("authorization", format!("Token {}", app.admin_token)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"]["userid"], json!([users[100]]));
    assert_eq!(body["next"], Value::Null);
    assert_eq!(
        body["previous"],
        "http://acct.example/accounting/users/?x=1"
    );
    let (status, _) = app
        .acct_send(reqwest::Method::GET, "users/?page=3", None)
        .await;
    assert_eq!(status, 404);

    // An admin sets an account's users: joins and leaves, nothing for the same list again.
    for list in [
        json!([users[0], users[1]]),
        json!([users[1]]),
        json!([users[1]]),
    ] {
        let (status, body) = app
            .acct_send(
                reqwest::Method::PATCH,
                &format!("accounts/{account}/"),
                Some(json!({ "users": list })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["users"], list);
    }
    let id = app
        .database()
        .await
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT account_id FROM acct_account WHERE number = $1",
            &[&account],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    let kinds: Vec<String> = app
        .events_of("account", &id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["AccountOpened", "UserJoinedAccount", "UserLeftAccount"]
    );
}

#[tokio::test]
async fn members_read_their_accounts_and_epilogues_write_their_clusters_jobs() {
    let app = spawn_gantry().await;
    // A Gantry user and the accounting user of the same name.
    let (status, body) = app
        .send(
            app.admin(app.http.post(app.url("/api/v2/user")))
                .json(&json!({
                    "username": "shasan", "password": "shasan-secret", "admin": false,
                    "email": "shasan@example.org", "virtualCluster": ["default"]
                })),
        )
        .await;
    assert!(status < 300, "{body}");
    let token = app.login("shasan", "shasan-secret", 3600).await;
    let mine = app.open_account("fc_hasan", 100, "FCA").await;
    let theirs = app.open_account("fc_other", 100, "FCA").await;
    let user = app.add_slurm_user("shasan").await;
    let (status, _) = app
        .acct_send(
            reqwest::Method::PATCH,
            &format!("accounts/{mine}/"),
            Some(json!({ "users": [user] })),
        )
        .await;
    assert_eq!(status, 200);
    let as_member = |method: reqwest::Method, path: &str| {
        app.http
            .request(method, app.acct(path))
            .header("authorization", format!("Token {token}"))
    };
    let (status, body) = app.send(as_member(reqwest::Method::GET, "accounts/")).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"]["accountid"], json!([mine]));
    let (status, _) = app
        .send(as_member(
            reqwest::Method::GET,
            &format!("accounts/{mine}/"),
        ))
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .send(as_member(
            reqwest::Method::GET,
            &format!("accounts/{theirs}/"),
        ))
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("Invalid account/Account not found."))
    );
    let (status, body) = app
        .send(
            as_member(reqwest::Method::PATCH, &format!("accounts/{mine}/"))
                .json(&json!({"accountallocation": 5})),
        )
        .await;
    assert_eq!(
        (status, body),
        (403, json!({"success": false, "error": "Not authorized."}))
    );
    let (_, body) = app
        .send(as_member(reqwest::Method::OPTIONS, "accounts/"))
        .await;
    assert_eq!(body["actions"]["POST"]["users"]["read_only"], true);
    let (status, _) = app
        .send(
            app.http
                .get(app.acct("accounts/"))
                .header("authorization", "Token nonsense"),
        )
        .await;
    assert_eq!(status, 401);

    // An epilogue credential records jobs of its own cluster only, and nothing else.
    let (status, body) = app
        .acct_send(
            reqwest::Method::POST,
            "credentials/",
            Some(json!({"cluster": "brc"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let credential = body["token"].as_str().unwrap().to_string();
    let (status, _) = app
        .send(as_member(reqwest::Method::POST, "credentials/").json(&json!({"cluster": "brc"})))
        .await;
    assert_eq!(status, 403);
    let as_epilogue = |method: reqwest::Method, path: &str| {
        app.http
            .request(method, app.acct(path))
            .header("authorization", format!("Token {credential}"))
    };
    let job = |cluster: &str| {
        json!({
            "jobslurmid": 7, "cluster": cluster, "submitdate": "2026-11-30T10:00:00Z",
            "userid": user, "accountid": theirs, "amount": "12.34", "jobstatus": 3,
            "partition": "gpu", "qos": "normal"
        })
    };
    let (status, body) = app
        .send(as_epilogue(reqwest::Method::POST, "jobs/").json(&job("other")))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["cluster"].is_array());
    let (status, body) = app
        .send(as_epilogue(reqwest::Method::POST, "jobs/").json(&job("brc")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["amount"], 12.34);
    assert_eq!(app.balance(theirs).await, 88);
    let (status, _) = app
        .send(as_epilogue(reqwest::Method::POST, "accounts/").json(&json!({"accountname": "x"})))
        .await;
    assert_eq!(status, 403);
    // The charge's actor is the cluster's epilogue.
    let events = app
        .events_of("slurm_job", &events::accounting::slurm_job_id("brc", 7))
        .await;
    assert!(
        events.iter().all(|e| e["meta"]["actor"] == "epilogue:brc"),
        "{events:?}"
    );
    // The user joined `theirs` through the job, and now reads it.
    let (status, _) = app
        .send(as_member(
            reqwest::Method::GET,
            &format!("accounts/{theirs}/"),
        ))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn refusing_account_types_take_no_new_jobs_once_overdrawn() {
    let mut s = settings(&fresh_instance());
    s.accounting_refuse_overdraft = "ICA".into();
    let app = spawn_with(s, gantry::Roles::DEV).await;
    let ica = app.open_account("ic_small", 1, "ICA").await;
    let fca = app.open_account("fc_small", 1, "FCA").await;
    let user = app.add_slurm_user("shasan").await;
    let post = |account: i64, slurm: i64| {
        app.acct_send(
            reqwest::Method::POST,
            "jobs/",
            Some(json!({
                "jobslurmid": slurm, "submitdate": "2026-11-30T10:00:00Z", "userid": user,
                "accountid": account, "amount": 5, "jobstatus": 3, "partition": "gpu", "qos": "normal"
            })),
        )
    };
    assert_eq!(post(ica, 1).await.0, 200);
    assert_eq!(app.balance(ica).await, -4);
    let (status, body) = post(ica, 2).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "Account ic_small has a balance of -4 SU and takes no new jobs."
    );
    // A charge of a job that ran is always recorded.
    let nats = app.nats().await;
    let mut request = charge_request(3, json!(1));
    request["account"] = json!("ic_small");
    let reply = app.charge(&nats, &request).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["balance"], -5);
    // Other types go negative, flagged.
    assert_eq!(post(fca, 4).await.0, 200);
    assert_eq!(post(fca, 5).await.0, 200);
    let (_, body) = app
        .acct_send(reqwest::Method::GET, &format!("accounts/{fca}/"), None)
        .await;
    assert_eq!(
        (body["accountbalance"].clone(), body["overdrawn"].clone()),
        (json!(-9), json!(true))
    );
}

#[tokio::test]
async fn the_same_charge_three_ways_charges_once_even_after_the_duplicate_window() {
    let mut s = settings(&fresh_instance());
    s.duplicate_window_secs = 1;
    let app = spawn_with(s, gantry::Roles::DEV).await;
    let account = app.open_account("fc_hasan", 1000, "FCA").await;
    app.add_slurm_user("shasan").await;
    let nats = app.nats().await;
    let request = charge_request(42, json!(13.37));
    let first = app.charge(&nats, &request).await;
    assert_eq!(
        first,
        json!({"ok": true, "charged": 13.37, "balance": 986.63, "duplicate": false})
    );
    // Redelivered, and retried by the epilogue after JetStream forgot the first.
    let again = app.charge(&nats, &request).await;
    assert_eq!(
        again,
        json!({"ok": true, "charged": 0, "balance": 986.63, "duplicate": true})
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = app.charge(&nats, &request).await;
    assert_eq!(later["duplicate"], true);
    // The HTTP PATCH with the same amount.
    let (_, jobs) = app
        .acct_send(reqwest::Method::GET, "jobs/?slurmjobid=42", None)
        .await;
    let number = jobs["results"]["jobnumber"][0].as_i64().unwrap();
    let (status, body) = app
        .acct_send(
            reqwest::Method::PATCH,
            &format!("jobs/{number}/"),
            Some(json!({"amount": 13.37})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.charges_of("brc", 42).await.len(), 1);
    assert_eq!(app.balance(account).await, 987);
    // A job of the same Slurm id on another cluster is another job.
    let mut elsewhere = request.clone();
    elsewhere["cluster"] = json!("savio");
    assert_eq!(app.charge(&nats, &elsewhere).await["duplicate"], false);
    let (_, jobs) = app
        .acct_send(reqwest::Method::GET, "jobs/?slurmjobid=42", None)
        .await;
    assert_eq!(jobs["count"], 2);
    // Permanent refusals.
    for (field, value, error) in [
        ("account", json!("nope"), "unknown account \"nope\""),
        ("user", json!("nobody"), "unknown user \"nobody\""),
    ] {
        let mut bad = charge_request(43, json!(1));
        bad[field] = value;
        assert_eq!(
            app.charge(&nats, &bad).await,
            json!({"ok": false, "error": error})
        );
    }
    let mut bad = charge_request(43, json!(1));
    bad["su"] = json!(-1);
    assert_eq!(app.charge(&nats, &bad).await["ok"], false);
    let mut bad = charge_request(43, json!(1));
    bad["start"] = json!("yesterday");
    assert_eq!(app.charge(&nats, &bad).await["ok"], false);
}

/// Each process takes an aggregate it never read as new until the log says otherwise (an
/// append expecting sequence 0): two processes sharing the charges, neither having read the
/// other's writes, still charge every job exactly.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_that_never_read_a_job_charge_it_exactly() {
    let app = spawn_gantry().await;
    let other = spawn_with(app.settings.clone(), gantry::Roles::SERVE_AND_PROJECT).await;
    let account = app.open_account("fc_hasan", 1000, "FCA").await;
    app.add_slurm_user("shasan").await;
    let nats = app.nats().await;
    // The charge subject is a queue group of both: each request goes to one of them.
    let request = charge_request(7, json!(10));
    assert_eq!(app.charge(&nats, &request).await["charged"], 10);
    for _ in 0..6 {
        assert_eq!(
            app.charge(&nats, &request).await,
            json!({"ok": true, "charged": 0, "balance": 990, "duplicate": true})
        );
    }
    let (_, jobs) = app
        .acct_send(reqwest::Method::GET, "jobs/?slurmjobid=7", None)
        .await;
    let number = jobs["results"]["jobnumber"][0].as_i64().unwrap();
    for (amount, door) in [(11, &other), (12, &app), (13, &other), (14, &app)] {
        let (status, body) = door
            .acct_send(
                reqwest::Method::PATCH,
                &format!("jobs/{number}/"),
                Some(json!({ "amount": amount })),
            )
            .await;
        assert_eq!((status, &body["amount"]), (200, &json!(amount)), "{body}");
    }
    assert_eq!(app.charges_of("brc", 7).await.len(), 5);
    assert_eq!(app.balance(account).await, 986);
    assert_eq!(other.balance(account).await, 986);
}

#[tokio::test]
async fn a_thousand_concurrent_charges_on_one_account_end_exact() {
    let app = spawn_gantry().await;
    let account = app.open_account("fc_hasan", 1_000_000, "FCA").await;
    app.add_slurm_user("shasan").await;
    let nats = app.nats().await;
    let started = std::time::Instant::now();
    let replies = futures::future::join_all((0..1000).map(|i| {
        let nats = nats.clone();
        let app = &app;
        async move {
            // 0.01 … 10.00 SU: every hundredth counts.
            let h = i + 1;
            let su = format!("{}.{:02}", h / 100, h % 100);
            let request = charge_request(10_000 + i, serde_json::from_str(&su).unwrap());
            app.charge(&nats, &request).await
        }
    }))
    .await;
    let elapsed = started.elapsed();
    assert!(
        replies.iter().all(|r| r["ok"] == true),
        "{:?}",
        replies.iter().find(|r| r["ok"] != true)
    );
    // Σ 0.01 … 10.00 SU, in hundredths.
    let total: i64 = (1..=1000).sum();
    let db = app.database().await;
    let exact: i64 = db
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT allocation * 100 - charged_hundredths FROM acct_account WHERE number = $1",
            &[&account],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(exact, 100_000_000 - total, "took {elapsed:?}");
    assert_eq!(
        app.balance(account).await,
        (100_000_000 - total + 50).div_euclid(100)
    );
}

/// Runs the built `gantry epilogue` with Slurm's environment of job `job` (without
/// blocking the runtime, which also runs the Gantry it talks to).
async fn epilogue(
    app: &TestApp,
    nats_url: &str,
    dir: &std::path::Path,
    job: i64,
    args: &[&str],
) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("epilogue")
        .args(args)
        .env_clear()
        .env("GANTRY_INSTANCE", &app.settings.instance)
        .env("GANTRY_NATS_URL", nats_url)
        .env("GANTRY_STATE_DIR", dir)
        .env("GANTRY_SLURM_CLUSTER", "brc")
        .env("GANTRY_EPILOGUE_TIMEOUT_MS", "20000")
        .env("SLURM_JOB_ID", job.to_string())
        .env("SLURM_JOB_USER", "shasan")
        .env("SLURM_JOB_ACCOUNT", "fc_hasan")
        .env("SLURM_JOB_PARTITION", "gpu")
        .env("SLURM_JOB_NUM_NODES", "2")
        .env("SLURM_CPUS_ON_NODE", "4")
        .env("SLURM_JOB_GPUS", "0,1")
        .env("SLURM_JOB_START_TIME", "1764496800")
        .env("SLURM_JOB_END_TIME", "1764502200")
        .output()
        .await
        .expect("gantry epilogue runs")
}

#[tokio::test]
async fn the_epilogue_spools_while_nats_is_down_and_charges_once_when_flushed() {
    let app = spawn_gantry().await;
    let account = app.open_account("fc_hasan", 1000, "FCA").await;
    app.add_slurm_user("shasan").await;
    let dir = std::env::temp_dir().join(format!("gantry-epilogue-{}", app.settings.instance));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rates.toml"), RATES).unwrap();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();

    // 1.5 h × 2 nodes × (4 CPUs × 1 + 2 GPUs × 10) = 72 SU. NATS down: spooled, exit 0.
    let closed = format!("nats://127.0.0.1:{}", crate::helpers::free_port());
    let out = epilogue(&app, &closed, &dir, 77, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("spooled job brc/77"),
        "{}",
        stderr(&out)
    );
    let spooled = dir.join("spool").join("brc-77.json");
    assert!(spooled.exists());
    let charge: Value = serde_json::from_slice(&std::fs::read(&spooled).unwrap()).unwrap();
    assert_eq!(charge["su"], 72.0);
    assert_eq!(app.balance(account).await, 1000);

    // Flushed later: charged, the file gone; flushing again sends nothing.
    let nats = app.settings.nats_url.clone();
    let out = epilogue(&app, &nats, &dir, 77, &["--flush"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("charged 72"), "{}", stderr(&out));
    assert!(!spooled.exists());
    assert_eq!(app.balance(account).await, 928);
    let out = epilogue(&app, &nats, &dir, 77, &["--flush"]).await;
    assert_eq!(out.status.code(), Some(0));
    // The epilogue retried for the same job: a duplicate, exit 0, nothing more charged.
    let out = epilogue(&app, &nats, &dir, 77, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("already charged"), "{}", stderr(&out));
    assert_eq!(app.charges_of("brc", 77).await.len(), 1);
    assert_eq!(app.balance(account).await, 928);

    // A partition missing from the table charges at the default and warns.
    let out = epilogue(&app, &nats, &dir, 78, &["--partition", "debug"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not in the rate table"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.balance(account).await, 928 - 12);

    // Refused: exit 3 with the reply's error on one line. Bad usage: 2. No rates: 1.
    let out = epilogue(&app, &nats, &dir, 79, &["--account", "nope"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("unknown account"), "{}", stderr(&out));
    let out = epilogue(&app, &nats, &dir, 79, &["--no-such-flag"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = epilogue(
        &app,
        &nats,
        &dir,
        79,
        &["--rates", "/nonexistent/rates.toml"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rate table"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
