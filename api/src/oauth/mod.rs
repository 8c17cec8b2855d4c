//! Gantry's own OAuth2 provider behind the course door's proxy (`/v1/proxy/*`): the login
//! form at `GET`/`POST /oauth/authorize` that issues authorization codes (RFC 6749 §4.1).
//!
//! The course platform's front end sends the browser here with `client_id`, `redirect_uri`,
//! `state` and `response_type=code`; the person logs in with a Gantry username and password
//! (checked by [`crate::auth::check_password`], throttled, pending and disabled users
//! refused); the browser goes back to `redirect_uri?code=…&state=…`; the front end hands the
//! code to `POST /v1/proxy/token`, which exchanges it once for Gantry tokens
//! (`crate::courses` proxy). The tokens are ordinary Gantry tokens: every door accepts them.
//!
//! Decisions where the documents are silent:
//! - **Clients.** `GANTRY_OAUTH_CLIENTS` lists the accepted clients as comma-separated
//!   `client_id=redirect_uri` pairs (repeat a client id for several URIs); a redirect URI must
//!   match one of its client's exactly, as RFC 6749 §3.1.2 and the OAuth security BCP ask.
//!   Unset, any client id (`[A-Za-z0-9._-]`, at most 64) is accepted with a redirect URI on a
//!   loopback host (`localhost`, `127.0.0.1`, `[::1]`, any port and path), enough for a
//!   front end in development and nothing more. Not "any URI": the exchange takes only the
//!   code (the document's `/v1/proxy/token` has no client secret), so a login form that
//!   redirected anywhere would hand a stranger's site a code it could exchange for the
//!   user's tokens.
//! - A request with a missing or refused `client_id` or `redirect_uri` is answered with an
//!   error page (400) and never redirected. Other errors go back to the client as
//!   `redirect_uri?error=…&state=…` (§4.1.2.1): `unsupported_response_type` when
//!   `response_type` is not `code`, `invalid_request` when it is missing or a parameter is
//!   repeated, `invalid_scope` for an unknown scope.
//! - **Scope.** One scope, `read_write` (the document's), granted when none is asked for: a
//!   Gantry token acts with all of its user's current rights.
//! - **Codes** are 256 random bits, stored only as their SHA-256 (`projection::oauth_codes`),
//!   bound to client, redirect URI and user, single use across every `serve` process, and
//!   live `GANTRY_OAUTH_CODE_TTL_MS` (60,000 ms by default).
//! - A wrong password and an unknown user get the same page (401, "Wrong username or
//!   password."); a pending or disabled user 403 with their status; a throttled login 429 with
//!   `Retry-After`. The username is kept in the form, never the password. Every page is
//!   `no-store`, may not be framed (clickjacking), and sends no referrer (the page's URL
//!   carries the client's `state`).
//! - Not covered: login CSRF (a site posting its own credentials through a visitor's
//!   browser); that needs a session cookie the provider does not keep.

mod authorize;
mod page;

use std::{sync::Arc, time::Duration};

use warp::{Filter, filters::BoxedFilter, path, reply::Response};

use crate::{App, body, context};

/// The one scope tokens are granted.
pub const SCOPE: &str = "read_write";
/// How long an access token from the proxy lives, and its refresh token.
pub const ACCESS_TTL: Duration = Duration::from_secs(3600);
pub const REFRESH_TTL: Duration = Duration::from_secs(5 * 3600);

/// The provider's settings: which clients it serves and how long a code lives.
#[derive(Debug, Clone)]
pub struct OAuth {
    pub clients: Clients,
    pub code_ttl: Duration,
}

impl OAuth {
    pub fn new(clients: Clients, code_ttl: Duration) -> Self {
        Self { clients, code_ttl }
    }
}

/// The clients the login form accepts (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clients {
    /// Any well-formed client id, redirected only to a loopback host.
    Loopback,
    /// These `(client_id, redirect_uri)` pairs, exactly.
    Listed(Vec<(String, String)>),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientsError {
    #[error("GANTRY_OAUTH_CLIENTS: {0:?} is not client_id=redirect_uri")]
    NotAPair(String),
    #[error("GANTRY_OAUTH_CLIENTS: {0:?} is not a client id ([A-Za-z0-9._-], at most 64)")]
    ClientId(String),
    #[error("GANTRY_OAUTH_CLIENTS: {0:?} is not an absolute http or https URI without a fragment")]
    RedirectUri(String),
}

impl Clients {
    /// The clients of `GANTRY_OAUTH_CLIENTS`; unset or blank: [`Clients::Loopback`].
    pub fn parse(spec: Option<&str>) -> Result<Self, ClientsError> {
        let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
            return Ok(Self::Loopback);
        };
        let mut pairs = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, uri) = entry
                .split_once('=')
                .ok_or_else(|| ClientsError::NotAPair(entry.to_string()))?;
            let (id, uri) = (id.trim(), uri.trim());
            if !client_id_is_valid(id) {
                return Err(ClientsError::ClientId(id.to_string()));
            }
            if redirect_host(uri).is_none() {
                return Err(ClientsError::RedirectUri(uri.to_string()));
            }
            pairs.push((id.to_string(), uri.to_string()));
        }
        Ok(Self::Listed(pairs))
    }

    /// Whether `client_id` may be sent back to `redirect_uri`.
    pub fn accepts(&self, client_id: &str, redirect_uri: &str) -> bool {
        match self {
            Self::Listed(pairs) => pairs
                .iter()
                .any(|(id, uri)| id == client_id && uri == redirect_uri),
            Self::Loopback => {
                client_id_is_valid(client_id)
                    && redirect_host(redirect_uri).is_some_and(|host| {
                        matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
                    })
            }
        }
    }
}

fn client_id_is_valid(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The lower-cased host of an absolute `http`/`https` URI without user info or fragment,
/// or `None` for anything else.
fn redirect_host(uri: &str) -> Option<String> {
    if uri.contains('#') || uri.len() > 2048 {
        return None;
    }
    let parsed: warp::http::Uri = uri.parse().ok()?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return None;
    }
    let authority = parsed.authority()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(authority.host().to_ascii_lowercase())
}

/// `GET` and `POST /oauth/authorize`, with and without a trailing slash.
pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = || context::request_context("courses", "/oauth/authorize");
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();

    let show = path!("oauth" / "authorize")
        .and(warp::get())
        .and(ctx())
        .and(app.clone())
        .and(query)
        .then(authorize::show);
    let submit = path!("oauth" / "authorize")
        .and(warp::post())
        .and(ctx())
        .and(app)
        .and(warp::addr::remote())
        .and(body::bytes())
        .then(authorize::submit);
    show.or(submit).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_clients_match_exactly() {
        let clients = Clients::parse(Some(
            " web=https://courses.example.org/callback, web=http://127.0.0.1:3000/cb ,cli=http://localhost/x?a=1",
        ))
        .unwrap();
        assert!(clients.accepts("web", "https://courses.example.org/callback"));
        assert!(clients.accepts("web", "http://127.0.0.1:3000/cb"));
        assert!(clients.accepts("cli", "http://localhost/x?a=1"));
        assert!(!clients.accepts("web", "https://courses.example.org/callback/"));
        assert!(!clients.accepts("web", "https://courses.example.org/callback?x=1"));
        assert!(!clients.accepts("cli", "https://courses.example.org/callback"));
        assert!(!clients.accepts("other", "http://127.0.0.1:3000/cb"));
    }

    #[test]
    fn without_a_list_only_loopback_redirects_are_accepted() {
        let clients = Clients::parse(None).unwrap();
        assert_eq!(Clients::parse(Some("  ")).unwrap(), Clients::Loopback);
        for uri in [
            "http://127.0.0.1:9/callback",
            "http://localhost:3000/",
            "https://LOCALHOST/cb?x=1",
            "http://[::1]:8080/cb",
        ] {
            assert!(clients.accepts("test_client_1", uri), "{uri}");
        }
        for uri in [
            "https://evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://user@127.0.0.1/cb",
            "http://127.0.0.1/cb#frag",
            "javascript:alert(1)",
            "/relative",
            "",
        ] {
            assert!(!clients.accepts("test_client_1", uri), "{uri}");
        }
        assert!(!clients.accepts("", "http://127.0.0.1/cb"));
        assert!(!clients.accepts("a b", "http://127.0.0.1/cb"));
        assert!(!clients.accepts(&"x".repeat(65), "http://127.0.0.1/cb"));
    }

    #[test]
    fn a_bad_list_is_refused_at_start() {
        assert_eq!(
            Clients::parse(Some("web")),
            Err(ClientsError::NotAPair("web".into()))
        );
        assert_eq!(
            Clients::parse(Some("w b=http://x/")),
            Err(ClientsError::ClientId("w b".into()))
        );
        assert_eq!(
            Clients::parse(Some("web=ftp://x/")),
            Err(ClientsError::RedirectUri("ftp://x/".into()))
        );
    }
}
