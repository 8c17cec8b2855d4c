//! Password reset by mail (`/rest-auth/password/reset/`, `/rest-auth/password/reset/confirm/`):
//! a one-time code to the user's address, then the new password with that code
//! (`PasswordReset`).

use std::sync::Arc;

use command::user::UserCommand;
use events::user::UserStatus;
use projection::studio::{CodePurpose, Mail};
use tracing::info;
use warp::{http::Method, reply::Response};

use super::{
    Call,
    accounts::{checked, new_password_problems},
    decode_uid, encode_uid,
    errors::StudioError,
    fields::Char,
};
use crate::{App, RequestContext};

/// How long a reset code works.
const RESET_LIFETIME_HOURS: i64 = 24;
const SUBJECT: &str = "Password reset on Gantry";
const INVALID: &str = "Invalid value";

/// `POST /rest-auth/password/reset/`: email → a reset mail to each approved user holding
/// it; the same answer whether or not one does.
pub async fn request(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        let mut fields = call.fields()?;
        let email = fields.email("email", Char::REQUIRED);
        fields.check()?;
        let email = checked(email)?;
        let holders = projection::studio::users_with_email(&app.db.pool, &email)
            .await
            .map_err(StudioError::query)?;
        for holder in holders.iter().filter(|h| h.status == UserStatus::Approved) {
            let Some(row) = projection::users::user_by_name(&app.db, &holder.username)
                .await
                .map_err(StudioError::query)?
            else {
                continue;
            };
            let uid = encode_uid(row.number);
            let recipient = row.email.clone();
            projection::studio::issue(
                &app.db.pool,
                CodePurpose::PasswordReset,
                &row.user_id,
                &row.email,
                chrono::Duration::hours(RESET_LIFETIME_HOURS),
                |token| Mail {
                    recipient: recipient.clone(),
                    subject: SUBJECT.to_string(),
                    body: format!(
                        "You're receiving this email because you requested a password reset \
                         for your user account at Gantry.\n\n\
                         To choose a new password, send these with new_password1 and \
                         new_password2 to /rest-auth/password/reset/confirm/:\n\
                         uid: {uid}\n\
                         token: {token}\n\n\
                         Your username, in case you've forgotten: {username}\n\n\
                         The code works once, for {RESET_LIFETIME_HOURS} hours. If you did not \
                         ask for it, ignore this mail: your password stays as it is.\n",
                        username = row.username,
                    ),
                },
            )
            .await
            .map_err(StudioError::query)?;
            info!(recipient = %recipient, subject = SUBJECT, "mail put in the outbox");
        }
        Ok::<_, StudioError>(super::detail("Password reset e-mail has been sent."))
    })
    .await
}

/// `POST /rest-auth/password/reset/confirm/`: uid, token, new_password1, new_password2.
pub async fn confirm(ctx: RequestContext, app: Arc<App>, call: Call) -> Response {
    ctx.answer(async {
        call.allow(&[Method::POST], "POST, OPTIONS")?;
        let mut fields = call.fields()?;
        let new1 = fields.char("new_password1", Char::PASSWORD);
        let new2 = fields.char("new_password2", Char::PASSWORD);
        let uid = fields.char("uid", Char::REQUIRED);
        let token = fields.char("token", Char::REQUIRED);
        fields.check()?;
        let (new1, new2, uid, token) = (
            checked(new1)?,
            checked(new2)?,
            checked(uid)?,
            checked(token)?,
        );

        let user = match decode_uid(&uid) {
            Some(number) => projection::studio::user_by_number(&app.db.pool, number)
                .await
                .map_err(StudioError::query)?,
            None => None,
        }
        .ok_or_else(|| StudioError::field("uid", INVALID))?;
        new_password_problems(&new1, &new2)?;
        projection::studio::consume(
            &app.db.pool,
            CodePurpose::PasswordReset,
            &token,
            Some(&user.user_id),
        )
        .await
        .map_err(StudioError::query)?
        .ok_or_else(|| StudioError::field("token", INVALID))?;

        let hash = command::password::hash(new1).await?;
        app.write_password(
            &user.user_id,
            &hash,
            |credential| UserCommand::ResetPassword { credential },
            &ctx.command(&user.username, &user.user_id),
        )
        .await
        .map_err(|e| StudioError::password_write(e, StudioError::not_found))?;
        Ok::<_, StudioError>(super::detail(
            "Password has been reset with the new password.",
        ))
    })
    .await
}
