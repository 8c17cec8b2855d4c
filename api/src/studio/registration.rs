//! Self-registration and e-mail verification (`/rest-auth/registration/`,
//! `/rest-auth/registration/verify-email/`). A registered user is pending until an admin
//! approves them (`UserAudited`), at any door.

use std::sync::Arc;

use command::{
    user::{Details, Registration, UserCommand},
    values::{Email, Problem, Username},
};
use events::user::user_id;
use projection::studio::{CodePurpose, Mail};
use serde_json::json;
use tracing::info;
use warp::{
    Reply,
    http::{Method, StatusCode},
    reply::{Response, json, with_status},
};

use super::{
    Call,
    accounts::{EMAIL_TAKEN, MISMATCH, checked},
    errors::StudioError,
    fields::{Char, Fields, password_problems},
};
use crate::{App, RequestContext};

const USERNAME_TAKEN: &str = "A user with that username already exists.";

/// How long an e-mail confirmation key works (allauth's `EMAIL_CONFIRMATION_EXPIRE_DAYS`).
const CONFIRMATION_LIFETIME_DAYS: i64 = 3;

/// `POST /rest-auth/registration/`: username, email, password1, password2 → a pending user.
pub async fn register(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        let mut fields = call.fields()?;
        let username = fields.char("username", Char::REQUIRED);
        let username = match username {
            Some(name) => checked_username(&app, &mut fields, &name).await?,
            None => None,
        };
        let email = fields.email("email", Char::OPTIONAL);
        let email = email.filter(|e| !e.is_empty());
        if let Some(address) = &email {
            let holders = projection::studio::users_with_email(&app.db.pool, address)
                .await
                .map_err(StudioError::query)?;
            if !holders.is_empty() {
                fields.errors.add("email", EMAIL_TAKEN);
            }
        }
        let password1 = fields.char("password1", Char::PASSWORD);
        if let Some(password) = &password1 {
            for problem in password_problems(password) {
                fields.errors.add("password1", problem);
            }
        }
        let password2 = fields.char("password2", Char::PASSWORD);
        fields.check()?;
        let (username, password1, password2) =
            (checked(username)?, checked(password1)?, checked(password2)?);
        if password1 != password2 {
            return Err(Fields::non_field(MISMATCH));
        }
        let email = email
            .map(Email::parse_address)
            .transpose()
            .map_err(|_| StudioError::field("email", super::errors::INVALID_EMAIL))?;

        let hash = command::password::hash(password1).await?;
        let id = user_id(username.as_str());
        let registration = |credential| {
            UserCommand::Register(Registration {
                username: username.clone(),
                details: Details {
                    email: email.clone(),
                    ..Default::default()
                },
                credential: Some(credential),
            })
        };
        let outcome = app
            .write_password(
                &id,
                &hash,
                registration,
                &ctx.command(username.as_str(), &id),
            )
            .await
            .map_err(|e| {
                StudioError::password_write(e, || StudioError::field("username", USERNAME_TAKEN))
            })?;
        if let Some(address) = &email
            && outcome.appended
        {
            send_confirmation(&app, &id, username.as_str(), address.as_str()).await?;
        }
        let detail = if email.is_some() {
            "Verification e-mail sent. The account can log in once an administrator approves it."
        } else {
            "The account can log in once an administrator approves it."
        };
        Ok::<_, StudioError>(
            with_status(json(&json!({ "detail": detail })), StatusCode::CREATED).into_response(),
        )
    })
    .await
}

/// The username as the domain takes it, free: else its error is recorded, in Django's
/// words.
async fn checked_username(
    app: &App,
    fields: &mut Fields,
    name: &str,
) -> Result<Option<Username>, StudioError> {
    let username = match Username::parse(name) {
        Ok(username) => username,
        Err(invalid) => {
            let message = match invalid.problem {
                Problem::TooLong { max } => {
                    format!("Ensure this field has no more than {max} characters.")
                }
                _ => "Enter a valid username. This value may contain only letters, numbers, \
                      and @/./-/_ characters."
                    .to_string(),
            };
            fields.errors.add("username", message);
            return Ok(None);
        }
    };
    let taken = projection::users::user_by_name(&app.db, username.as_str())
        .await
        .map_err(StudioError::query)?
        .is_some();
    if taken {
        fields.errors.add("username", USERNAME_TAKEN);
        return Ok(None);
    }
    Ok(Some(username))
}

/// Mails a confirmation key for `email` (to the outbox: no mail server is configured).
async fn send_confirmation(
    app: &App,
    id: &str,
    username: &str,
    email: &str,
) -> Result<(), StudioError> {
    const SUBJECT: &str = "[Gantry] Please Confirm Your E-mail Address";
    projection::studio::issue(
        &app.db.pool,
        CodePurpose::EmailConfirmation,
        id,
        email,
        chrono::Duration::days(CONFIRMATION_LIFETIME_DAYS),
        |key| Mail {
            recipient: email.to_string(),
            subject: SUBJECT.to_string(),
            body: format!(
                "Hello from Gantry!\n\n\
                 You're receiving this e-mail because user {username} has given yours as an \
                 e-mail address to connect their account.\n\n\
                 To confirm this is correct, send this key to \
                 /rest-auth/registration/verify-email/:\n\
                 key: {key}\n\n\
                 The key works once, for {CONFIRMATION_LIFETIME_DAYS} days.\n"
            ),
        },
    )
    .await
    .map_err(StudioError::query)?;
    info!(recipient = %email, subject = SUBJECT, "mail put in the outbox");
    Ok(())
}

/// `POST /rest-auth/registration/verify-email/`: key → the address is confirmed.
pub async fn verify_email(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        let mut fields = call.fields()?;
        let key = fields.char("key", Char::REQUIRED);
        fields.check()?;
        let key = checked(key)?;
        projection::studio::consume(&app.db.pool, CodePurpose::EmailConfirmation, &key, None)
            .await
            .map_err(StudioError::query)?
            .ok_or_else(StudioError::not_found)?;
        Ok::<_, StudioError>(super::detail("ok"))
    })
    .await
}
