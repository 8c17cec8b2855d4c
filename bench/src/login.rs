//! The admin's token, as every benchmark gets it: `POST /api/v1/token`.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

/// The bootstrap admin every benchmark logs in as.
#[derive(clap::Args, Debug)]
pub struct Admin {
    #[arg(
        long = "admin-user",
        env = "GANTRY_ADMIN_USER",
        default_value = "admin"
    )]
    pub user: String,
    #[arg(
        long = "admin-password",
        env = "GANTRY_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub password: String,
}

/// How long a fresh Gantry may take to project its bootstrap admin.
const WAIT: Duration = Duration::from_secs(30);

/// Logs in as `user`, retrying while the bootstrap admin is not yet projected.
pub async fn admin_token(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    admin_token_within(http, base, user, password, WAIT).await
}

/// [`admin_token`], waiting at most `within`.
pub async fn admin_token_within(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    within: Duration,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let answer = http
            .post(format!("{base}/api/v1/token"))
            .json(&json!({ "username": user, "password": password, "expiration": 24 * 3600 }))
            .send()
            .await;
        let last = match answer {
            Ok(response) => {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if let Some(token) = body["token"].as_str() {
                    return Ok(token.to_string());
                }
                format!("HTTP {status}: {body}")
            }
            Err(e) => format!("{:#}", anyhow::Error::from(e)),
        };
        if Instant::now() >= deadline {
            bail!("cannot log in as {user} at {base}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
