//! The machine-learning studio's door: its accounts (`/rest-auth/*`), in the shapes of
//! django-rest-auth on Django REST framework. Clients send `Authorization: Token <key>`;
//! errors are DRF's: `{"detail": …}` for the request as a whole, `{"field": [messages]}`
//! and `non_field_errors` for its fields.
//!
//! Decisions where its document is silent:
//! - Every path answers with and without its trailing slash (Django's `APPEND_SLASH` would
//!   redirect; answering both serves the same clients without losing a POST's body). A
//!   method a path does not take is 405 `Method "GET" not allowed.` with `Allow`; an unknown
//!   path under `/rest-auth/` is 404 `Not found.`.
//! - Bodies are JSON, or a form (`application/x-www-form-urlencoded`), as DRF's parsers
//!   take them; an empty body has no fields. Text fields are trimmed as DRF trims them, and
//!   numbers are taken as their text; passwords are kept exactly as typed (the same
//!   password logs in at every door).
//! - The key: `POST /rest-auth/login/` answers `{"key": …}`, an access token of Gantry's
//!   token service (the same at every door), valid 14 days (a Django token lasted until
//!   logout; a bound is safer). Any of `Token <key>`, `Bearer <key>` or the bare key is
//!   accepted. DRF's 401s: no header "Authentication credentials were not provided.", a
//!   keyword without a key "Invalid token header. No credentials provided.", a key with
//!   spaces "Invalid token header. Token string should not contain spaces.", a key that is
//!   unknown, expired or revoked (or of a deleted user) "Invalid token.", of a pending or
//!   disabled user "User inactive or deleted.", each with `WWW-Authenticate: Token`.
//! - Login takes `username` or `email` (the email first, as rest-auth did) and `password`;
//!   with neither name: `Must include either "username" or "email" and "password".`. An
//!   address held by exactly one user logs that user in; an unknown address, or one several
//!   users share, fails like a wrong password. Every failure is 400 `non_field_errors`
//!   "Unable to log in with provided credentials.", throttled and as slow for an unknown user
//!   as for a wrong password (`crate::auth::check_password`), except a user who may not log
//!   in (the domain's rule): "User account is disabled." (rest-auth's) or "User account is
//!   waiting for approval." for a self-registered user no admin approved yet, answered
//!   whatever the password. A throttled attempt is DRF's 429 "Request was throttled.
//!   Expected available in N seconds." with `Retry-After`.
//! - Logout (`POST`; `GET` is 405, as `ACCOUNT_LOGOUT_ON_GET` is off by default) revokes
//!   every key of the user (`TokensRevoked`): a DRF user had one token, shared by all their
//!   clients. Without a token it answers success, as rest-auth did; a bad token is 401.
//! - Password change needs the key and `old_password` (its check counts for the login
//!   throttle); "Your old password was entered incorrectly. Please enter it again." when it is
//!   wrong. The new password must pass Django's validators, reported under `new_password2`
//!   as Django's `SetPasswordForm` does. The change voids every earlier key: the client logs
//!   in again with the new password.
//! - Password validators (registration, change, reset): Django's defaults minus the
//!   similarity check: at least 8 characters, not a common password (a list of a few hundred
//!   embedded here), not entirely numeric, in that order; and the domain's longest password.
//! - Password reset: the mail goes to the `outbox` table, since no mail server is
//!   configured; the log line names only its recipient and subject, the body (which holds
//!   the code) is only in the outbox. Only approved users get one (Django mailed only active
//!   users). The answer is the same whether or not the address is known. The mail gives
//!   `uid` (the user's number in URL-safe base64, as Django's) and `token`: a random code,
//!   stored only as its SHA-256 (`projection::studio`), valid 24 hours, used once; using it
//!   voids the user's other reset codes; codes that expired unused are deleted when the next
//!   code is issued. The outbox keeps each mail, unsent, for a mailer or an operator to
//!   deliver (and set `sent_at`). Confirm checks, in rest-auth's order, `uid` ("Invalid
//!   value"), the new passwords, then `token` ("Invalid value"), and sets the password
//!   (`PasswordReset`), which voids every earlier key.
//! - `/rest-auth/user/`: `pk` is the user's number, the same at every door. `username` is
//!   read only (it names the user at every door and in the log): sent unchanged it is
//!   ignored, changed it is 400 "The username cannot be changed.". `email` may change
//!   (`UserEmailChanged`; blank clears it) if no other user holds the address. `first_name`
//!   and `last_name` are the user's one real name: written as "first last" (one space
//!   between; either may be empty), read back by splitting at the last space (a name without
//!   one is all `first_name`), so a last name with a space reads back partly as first name.
//!   First names take 30 characters and last names 150, as Django 2's, and together at most
//!   the domain's 128. PUT and PATCH both change only the fields sent (no field is required
//!   when `username` is read only); the answer is the user as they are now.
//! - Registration makes a *pending* user (`UserRegistered`): they log in only once an admin
//!   approves them, at any door. So the answer is no key but 201 `{"detail": …}` (rest-auth's
//!   shape when a key is not given at once) saying so. Django's field errors come first, all
//!   together; "The two password fields didn't match." only once the fields are valid, as
//!   DRF runs a serializer's `validate` after its fields. E-mail is optional (allauth's
//!   default); an address another user holds (any case) is refused. Both names are checked
//!   against the user directory first, so every field error comes in one answer; the
//!   username is then the domain's rule (`AlreadyExists`), while the address is checked only
//!   there (a rule over all users: two registrations at one instant could both pass it).
//! - E-mail verification: registering with an address mails a key (valid 3 days, allauth's
//!   default, used once, stored as a hash). `verify-email` with it records that the address
//!   was confirmed (`projection::studio::email_confirmed_at`) and answers `{"detail": "ok"}`;
//!   an unknown, used or expired key is 404 `Not found.`. Confirming approves nobody:
//!   approval is an admin's.

mod accounts;
mod errors;
mod fields;
mod registration;
mod reset;

use std::{net::IpAddr, sync::Arc};

use warp::{
    Filter,
    filters::BoxedFilter,
    http::Method,
    path,
    reply::{Response, json},
};

use crate::{App, Principal, auth, body, context};

pub use errors::StudioError;

/// How long a login's key lasts.
const KEY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// What a studio handler reads of a request besides its route.
pub struct Call {
    method: Method,
    client: Option<IpAddr>,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Result<bytes::Bytes, body::BodyError>,
}

impl Call {
    /// Refuses a method the path does not take; `allow` is the path's `Allow` header.
    fn allow(&self, methods: &[Method], allow: &'static str) -> Result<(), StudioError> {
        if methods.contains(&self.method) {
            Ok(())
        } else {
            Err(StudioError::method_not_allowed(&self.method, allow))
        }
    }

    fn fields(&self) -> Result<fields::Fields, StudioError> {
        let body = match &self.body {
            Ok(body) => body,
            Err(body::BodyError::TooLarge) => return Err(body::BodyError::TooLarge.into()),
            Err(body::BodyError::Read(e)) => return Err(body::BodyError::Read(e.clone()).into()),
        };
        fields::Fields::parse(self.content_type.as_deref(), body)
    }

    /// Whether the request carries credentials at all (DRF treats an empty header as none).
    fn has_credentials(&self) -> bool {
        self.authorization
            .as_deref()
            .is_some_and(|h| !h.trim().is_empty())
    }

    /// The user behind the request's key, as DRF's `TokenAuthentication` says its failures.
    fn principal(&self, app: &App) -> Result<Principal, StudioError> {
        let header = self
            .authorization
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| StudioError::unauthenticated(errors::NOT_AUTHENTICATED))?;
        let words: Vec<&str> = header.split_whitespace().collect();
        let keyword = words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("token") || w.eq_ignore_ascii_case("bearer"));
        if keyword && words.len() == 1 {
            return Err(StudioError::unauthenticated(
                "Invalid token header. No credentials provided.",
            ));
        }
        if keyword && words.len() > 2 {
            return Err(StudioError::unauthenticated(
                "Invalid token header. Token string should not contain spaces.",
            ));
        }
        Ok(app.authenticate(Some(header))?)
    }
}

fn call() -> impl Filter<Extract = (Call,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::addr::remote())
        .and(context::header_text("content-type"))
        .and(auth::authorization())
        .and(body::bytes())
        .map(
            |method, peer: Option<std::net::SocketAddr>, content_type, authorization, body| Call {
                method,
                client: peer.map(|p| p.ip()),
                content_type,
                authorization,
                body,
            },
        )
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let app = warp::any().map(move || app.clone());
    let ctx = |route| context::request_context("studio", route);

    let login = path!("rest-auth" / "login")
        .and(ctx("/rest-auth/login/"))
        .and(app.clone())
        .and(call())
        .then(accounts::login);
    let logout = path!("rest-auth" / "logout")
        .and(ctx("/rest-auth/logout/"))
        .and(app.clone())
        .and(call())
        .then(accounts::logout);
    let password_change = path!("rest-auth" / "password" / "change")
        .and(ctx("/rest-auth/password/change/"))
        .and(app.clone())
        .and(call())
        .then(accounts::change_password);
    let password_reset = path!("rest-auth" / "password" / "reset")
        .and(ctx("/rest-auth/password/reset/"))
        .and(app.clone())
        .and(call())
        .then(reset::request);
    let password_reset_confirm = path!("rest-auth" / "password" / "reset" / "confirm")
        .and(ctx("/rest-auth/password/reset/confirm/"))
        .and(app.clone())
        .and(call())
        .then(reset::confirm);
    let user = path!("rest-auth" / "user")
        .and(ctx("/rest-auth/user/"))
        .and(app.clone())
        .and(call())
        .then(accounts::user);
    let registration = path!("rest-auth" / "registration")
        .and(ctx("/rest-auth/registration/"))
        .and(app.clone())
        .and(call())
        .then(registration::register);
    let verify_email = path!("rest-auth" / "registration" / "verify-email")
        .and(ctx("/rest-auth/registration/verify-email/"))
        .and(app)
        .and(call())
        .then(registration::verify_email);
    let not_found = warp::path("rest-auth").and(ctx("unmatched")).then(
        |ctx: context::RequestContext| async move {
            ctx.answer(async { StudioError::not_found() }).await
        },
    );

    login
        .or(logout)
        .unify()
        .or(password_change)
        .unify()
        .or(password_reset)
        .unify()
        .or(password_reset_confirm)
        .unify()
        .or(user)
        .unify()
        .or(registration)
        .unify()
        .or(verify_email)
        .unify()
        .or(not_found)
        .unify()
        .boxed()
}

/// `{"detail": text}` with 200.
fn detail(text: &str) -> warp::reply::Json {
    json(&serde_json::json!({ "detail": text }))
}

/// Django's `urlsafe_base64_encode` of a user's number (`3` → `Mw`): the `uid` of a reset.
fn encode_uid(number: i64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = number.to_string().into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The number a `uid` encodes, if it is one.
fn decode_uid(uid: &str) -> Option<i64> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in uid.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    let text = String::from_utf8(bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_django_s() {
        assert_eq!(encode_uid(3), "Mw");
        assert_eq!(encode_uid(12), "MTI");
        assert_eq!(encode_uid(123), "MTIz");
        assert_eq!(encode_uid(1234), "MTIzNA");
        for n in [0, 3, 12, 123, 1234, 98_765_432_101] {
            assert_eq!(decode_uid(&encode_uid(n)), Some(n));
        }
        assert_eq!(decode_uid("MTI="), Some(12));
        for bad in ["", "!!", "YQ", "Mw Mw"] {
            assert_eq!(decode_uid(bad), None, "{bad}");
        }
    }
}
