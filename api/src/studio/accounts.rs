//! Login, logout, password change and the user's own details (`/rest-auth/login/`,
//! `/logout/`, `/password/change/`, `/user/`).

use std::sync::Arc;

use command::{
    user::{DetailsChange, PasswordChange, UserCommand},
    values::{Email, RealName},
};
use events::user::UserStatus;
use serde_json::json;
use warp::{
    http::Method,
    reply::{Response, json},
};

use super::{
    Call, KEY_LIFETIME,
    errors::StudioError,
    fields::{Char, Fields, password_problems},
};
use crate::{
    App, Principal, RequestContext,
    auth::{self, LoginError},
};

const UNABLE: &str = "Unable to log in with provided credentials.";
pub(super) const EMAIL_TAKEN: &str = "A user is already registered with this e-mail address.";
pub(super) const MISMATCH: &str = "The two password fields didn't match.";

/// `POST /rest-auth/login/`: username or email, and password → `{"key": …}`.
pub async fn login(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        let mut fields = call.fields()?;
        let username = fields.char("username", Char::OPTIONAL);
        let email = fields.email("email", Char::OPTIONAL);
        let password = fields.char("password", Char::PASSWORD);
        fields.check()?;
        let password = checked(password)?;
        let Some(login_name) = login_name(&app, username, email).await? else {
            return Err(Fields::non_field(
                "Must include either \"username\" or \"email\" and \"password\".",
            ));
        };
        let principal = check(&app, &call, &login_name, password)
            .await
            .map_err(|e| login_error(e, UNABLE))?;
        let session = app
            .sign_in(&principal, KEY_LIFETIME, None)
            .map_err(StudioError::unknown)?;
        Ok::<_, StudioError>(json(&json!({ "key": session.access })))
    })
    .await
}

/// The name to log in with: the username of the one user holding `email` if one was given
/// (rest-auth tried the address first), else `username`. An address no single user holds
/// becomes a name no user can have (`:` is no username's), so the attempt fails as slowly
/// as a wrong password and is throttled under that address.
async fn login_name(
    app: &App,
    username: Option<String>,
    email: Option<String>,
) -> Result<Option<String>, StudioError> {
    match (
        email.filter(|e| !e.is_empty()),
        username.filter(|u| !u.is_empty()),
    ) {
        (Some(email), _) => {
            let holders = projection::studio::users_with_email(&app.db.pool, &email)
                .await
                .map_err(StudioError::query)?;
            Ok(Some(match holders.as_slice() {
                [one] => one.username.clone(),
                _ => format!("email:{}", email.to_lowercase()),
            }))
        }
        (None, Some(username)) => Ok(Some(username)),
        (None, None) => Ok(None),
    }
}

/// The user `username` if `password` is theirs (throttled, `crate::auth::check_password`).
async fn check(
    app: &App,
    call: &Call,
    username: &str,
    password: String,
) -> Result<Principal, LoginError> {
    auth::check_password(&app.db.pool, &app.logins, username, password, call.client).await
}

/// A failed password check, in rest-auth's words; `wrong` is what a wrong password is here.
fn login_error(error: LoginError, wrong: &str) -> StudioError {
    match error {
        LoginError::Throttled(throttled) => throttled.into(),
        LoginError::NoUser | LoginError::WrongPassword => StudioError::non_field(wrong),
        LoginError::NotApproved(UserStatus::Pending) => {
            StudioError::non_field("User account is waiting for approval.")
        }
        LoginError::NotApproved(_) => StudioError::non_field("User account is disabled."),
        LoginError::Query(e) => StudioError::query(e),
        LoginError::Hashing(e) => e.into(),
    }
}

/// `POST /rest-auth/logout/`: every key of the user stops working (`TokensRevoked`).
pub async fn logout(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        if call.has_credentials() {
            let principal = call.principal(&app)?;
            app.write(
                &app.users,
                &principal.user_id,
                &UserCommand::RevokeTokens(principal.caller()),
                &ctx.command(&principal.username, &principal.user_id),
            )
            .await
            .map_err(|e| StudioError::command(e, StudioError::not_found))?;
        }
        Ok::<_, StudioError>(super::detail("Successfully logged out."))
    })
    .await
}

/// `POST /rest-auth/password/change/`: old_password, new_password1, new_password2.
pub async fn change_password(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        // DRF authenticates before it looks at the method.
        let principal = call.principal(&app)?;
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        let mut fields = call.fields()?;
        let old = fields.char("old_password", Char::PASSWORD);
        let new1 = fields.char("new_password1", Char::PASSWORD);
        let new2 = fields.char("new_password2", Char::PASSWORD);
        fields.check()?;
        let (old, new1, new2) = (checked(old)?, checked(new1)?, checked(new2)?);
        check(&app, &call, &principal.username, old)
            .await
            .map_err(|e| match e {
                LoginError::NoUser | LoginError::WrongPassword => StudioError::field(
                    "old_password",
                    "Your old password was entered incorrectly. Please enter it again.",
                ),
                LoginError::NotApproved(_) => {
                    StudioError::unauthenticated("User inactive or deleted.")
                }
                other => login_error(other, UNABLE),
            })?;
        new_password_problems(&new1, &new2)?;
        let hash = command::password::hash(new1).await?;
        let caller = principal.caller();
        app.write_password(
            &principal.user_id,
            &hash,
            |credential| {
                UserCommand::ChangePassword(PasswordChange {
                    by: caller,
                    credential,
                })
            },
            &ctx.command(&principal.username, &principal.user_id),
        )
        .await
        .map_err(|e| StudioError::password_write(e, StudioError::not_found))?;
        Ok::<_, StudioError>(super::detail("New password has been saved."))
    })
    .await
}

/// A required field, once the fields' check passed (so it is there).
pub(super) fn checked<T>(field: Option<T>) -> Result<T, StudioError> {
    field.ok_or_else(|| StudioError::unknown("a checked field is missing"))
}

/// Django's `SetPasswordForm`: the two new passwords match and pass the validators; the
/// errors are the second field's.
pub(super) fn new_password_problems(new1: &str, new2: &str) -> Result<(), StudioError> {
    if new1 != new2 {
        return Err(StudioError::field("new_password2", MISMATCH));
    }
    let mut errors = super::errors::FieldErrors::default();
    for problem in password_problems(new2) {
        errors.add("new_password2", problem);
    }
    errors.check()
}

/// `GET`, `PUT`, `PATCH /rest-auth/user/`: the caller's own details.
pub async fn user(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        let principal = call.principal(&app)?;
        call.allow(
            &[Method::GET, Method::HEAD, Method::PUT, Method::PATCH],
            "GET, PUT, PATCH, HEAD, OPTIONS",
        )?;
        if matches!(call.method, Method::PUT | Method::PATCH) {
            update_details(&ctx, &app, &call, &principal).await?;
        }
        let row = projection::users::user_by_name(&app.db, &principal.username)
            .await
            .map_err(StudioError::query)?
            .ok_or_else(|| StudioError::unauthenticated("Invalid token."))?;
        let (first_name, last_name) = split_name(&row.real_name);
        Ok::<_, StudioError>(json(&json!({
            "pk": row.number,
            "username": row.username,
            "email": row.email,
            "first_name": first_name,
            "last_name": last_name,
        })))
    })
    .await
}

/// Django 2's `first_name` and `last_name` lengths, and the domain's real name.
const FIRST_NAME_MAX: usize = 30;
const LAST_NAME_MAX: usize = 150;
const REAL_NAME_MAX: usize = 128;

/// Changes what the request sends of the caller's email and name (the module docs of the
/// door say how).
async fn update_details(
    ctx: &RequestContext,
    app: &App,
    call: &Call,
    principal: &Principal,
) -> Result<(), StudioError> {
    let mut fields = call.fields()?;
    let optional = |max| Char {
        max_length: Some(max),
        ..Char::OPTIONAL
    };
    if let Some(username) = fields.char("username", optional(150))
        && username != principal.username
    {
        fields
            .errors
            .add("username", "The username cannot be changed.");
    }
    let email = fields.email("email", Char::OPTIONAL);
    let first = fields.char("first_name", optional(FIRST_NAME_MAX));
    let last = fields.char("last_name", optional(LAST_NAME_MAX));
    fields.check()?;

    let row = projection::users::user_by_name(&app.db, &principal.username)
        .await
        .map_err(StudioError::query)?
        .ok_or_else(|| StudioError::unauthenticated("Invalid token."))?;
    if let Some(email) = email.as_deref().filter(|e| !e.is_empty()) {
        let holders = projection::studio::users_with_email(&app.db.pool, email)
            .await
            .map_err(StudioError::query)?;
        if holders.iter().any(|h| h.user_id != row.user_id) {
            return Err(StudioError::field("email", EMAIL_TAKEN));
        }
    }
    let real_name = if first.is_some() || last.is_some() {
        let (old_first, old_last) = split_name(&row.real_name);
        let name = join_name(
            first.as_deref().unwrap_or(&old_first),
            last.as_deref().unwrap_or(&old_last),
        );
        if name.chars().count() > REAL_NAME_MAX {
            return Err(StudioError::non_field(format!(
                "The first and last name together must have no more than {REAL_NAME_MAX} characters."
            )));
        }
        Some(name)
    } else {
        None
    };

    let command_ctx = ctx.command(&principal.username, &principal.user_id);
    if let Some(email) = email {
        let email = match email.as_str() {
            "" => None,
            text => Some(
                Email::parse_address(text)
                    .map_err(|_| StudioError::field("email", super::errors::INVALID_EMAIL))?,
            ),
        };
        app.write(
            &app.users,
            &principal.user_id,
            &UserCommand::ChangeEmail(email),
            &command_ctx,
        )
        .await
        .map_err(|e| StudioError::command(e, StudioError::not_found))?;
    }
    if let Some(real_name) = real_name
        && real_name != row.real_name
    {
        let change = details_change(&real_name)?;
        app.write(&app.users, &principal.user_id, &change, &command_ctx)
            .await
            .map_err(|e| StudioError::command(e, StudioError::not_found))?;
    }
    Ok(())
}

/// The command that sets the user's real name (blank clears it).
fn details_change(real_name: &str) -> Result<UserCommand, StudioError> {
    let real_name =
        match real_name {
            "" => None,
            name => Some(RealName::parse(name).map_err(|invalid| {
                StudioError::non_field(format!("The name {}.", invalid.problem))
            })?),
        };
    Ok(UserCommand::ChangeDetails(DetailsChange {
        real_name: Some(real_name),
        ..Default::default()
    }))
}

/// A real name as Django's two fields: split at the last space.
fn split_name(real_name: &str) -> (String, String) {
    match real_name.trim().rsplit_once(' ') {
        Some((first, last)) => (first.trim_end().to_string(), last.to_string()),
        None => (real_name.trim().to_string(), String::new()),
    }
}

/// Django's two name fields as one real name.
fn join_name(first: &str, last: &str) -> String {
    match (first.trim(), last.trim()) {
        ("", last) => last.to_string(),
        (first, "") => first.to_string(),
        (first, last) => format!("{first} {last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_names_are_one_real_name() {
        for (first, last, real) in [
            ("Qihang", "Zhu", "Qihang Zhu"),
            ("Mary Ann", "Smith", "Mary Ann Smith"),
            ("张三", "", "张三"),
            ("", "", ""),
        ] {
            assert_eq!(join_name(first, last), real);
            assert_eq!(split_name(real), (first.to_string(), last.to_string()));
        }
        assert_eq!(join_name("", "Zhu"), "Zhu");
        assert_eq!(split_name("Zhu"), ("Zhu".into(), String::new()));
    }
}
