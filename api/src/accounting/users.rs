//! `/accounting/users/`: the people who charge accounts, named as in Slurm.

use command::{
    slurm_user::{NewSlurmUser, SlurmUserChanges, SlurmUserCommand},
    values::{AccountingEmail, SlurmUsername, UserMetadata},
};
use projection::accounting::UserRow;
use serde_json::{Value, json};
use warp::reply::{Json, WithStatus};

use super::{
    Call, Caller, Resource,
    errors::{AccountingError, FieldErrors, add},
    fields::{self, Read, render_time},
    may_write, not_found, success,
};
use crate::{App, context::RequestContext};

const INVALID: &str = "Invalid user information.";
const NOT_FOUND: &str = "Invalid user/User not found.";

type Answer = Result<WithStatus<Json>, AccountingError>;

fn body(user: &UserRow) -> Value {
    json!({
        "userid": user.number,
        "accounts": user.accounts,
        "username": user.username,
        "usermetadata": user.metadata,
        "email": user.email,
        "ldapuid": user.ldap_uid.parse::<i64>().ok(),
        "created": render_time(user.created_at),
        "updated": render_time(user.updated_at),
    })
}

/// A domain value of a text field, or its error recorded under the field.
pub fn value<T, E: std::fmt::Display>(
    read: &mut Read,
    field: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Option<T> {
    let text = read.text(field)?.to_string();
    match parse(text) {
        Ok(v) => Some(v),
        Err(e) => {
            read.error(field, format!("{e}."));
            None
        }
    }
}

fn problem(e: command::values::InvalidValue) -> String {
    format!("This field {}", e.problem)
}

pub async fn create(ctx: &RequestContext, app: &App, call: &Call, caller: &Caller) -> Answer {
    may_write(caller, Resource::Users)?;
    let mut read = fields::read(fields::USER, call.fields()?, false);
    let username = value(&mut read, "username", |t| {
        SlurmUsername::parse(t).map_err(problem)
    });
    let metadata = value(&mut read, "usermetadata", |t| {
        UserMetadata::parse(t).map_err(problem)
    });
    let email = value(&mut read, "email", |t| {
        AccountingEmail::parse(t.clone())
            .ok()
            .filter(|_| {
                t.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
            })
            .ok_or("Enter a valid email address")
    });
    let ldap_uid = read.int("ldapuid");
    let (Some(username), Some(metadata), Some(email), Some(ldap_uid)) =
        (username, metadata, email, ldap_uid)
    else {
        return Err(AccountingError::fields(INVALID, read.errors));
    };
    if !read.errors.is_empty() {
        return Err(AccountingError::fields(INVALID, read.errors));
    }
    let id = events::accounting::slurm_user_id(username.as_str());
    let new = NewSlurmUser {
        username,
        metadata,
        email,
        ldap_uid,
    };
    let written = app
        .write(
            &app.accounting.users,
            &id,
            &SlurmUserCommand::Add(new),
            &caller.command(ctx, &id),
        )
        .await;
    match written {
        Err(command::CommandError::Domain(command::DomainError::AlreadyExists)) => {
            let mut errors = FieldErrors::new();
            add(
                &mut errors,
                "username",
                "user with this username already exists.",
            );
            return Err(AccountingError::fields(INVALID, errors));
        }
        other => {
            other.map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
        }
    }
    one(app, &id).await
}

async fn one(app: &App, id: &str) -> Answer {
    let client_row = projection::accounting::users_by_id(&app.db.pool, id).await?;
    let user = client_row.ok_or_else(|| not_found(Resource::Users))?;
    Ok(success(body(&user)))
}

pub async fn update(
    ctx: &RequestContext,
    app: &App,
    call: &Call,
    caller: &Caller,
    number: i64,
) -> Answer {
    may_write(caller, Resource::Users)?;
    let user = projection::accounting::user_by_number(&app.db.pool, number)
        .await?
        .ok_or_else(|| not_found(Resource::Users))?;
    let mut read = fields::read(fields::USER, call.fields()?, true);
    if read.text("username").is_some_and(|u| u != user.username) {
        read.error("username", "The username cannot be changed.");
    }
    let changes = SlurmUserChanges {
        metadata: value(&mut read, "usermetadata", |t| {
            UserMetadata::parse(t).map_err(problem)
        }),
        email: value(&mut read, "email", |t| {
            AccountingEmail::parse(t.clone())
                .ok()
                .filter(|_| t.contains('@'))
                .ok_or("Enter a valid email address")
        }),
        ldap_uid: read.int("ldapuid"),
    };
    if !read.errors.is_empty() {
        return Err(AccountingError::fields(INVALID, read.errors));
    }
    app.write(
        &app.accounting.users,
        &user.user_id,
        &SlurmUserCommand::Update(changes),
        &caller.command(ctx, &user.user_id),
    )
    .await
    .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    one(app, &user.user_id).await
}

pub async fn get(app: &App, caller: &Caller, number: i64) -> Answer {
    let user = projection::accounting::user_by_number(&app.db.pool, number)
        .await?
        .ok_or_else(|| not_found(Resource::Users))?;
    if let Caller::Member { user_id, .. } = caller
        && *user_id != user.user_id
    {
        let (count, _) = projection::accounting::list(
            &app.db.pool,
            projection::accounting::Listing::Users,
            &[
                projection::accounting::Condition::VisibleTo(user_id.clone()),
                projection::accounting::Condition::Int("number", number),
            ],
            0,
            1,
        )
        .await?;
        if count == 0 {
            return Err(not_found(Resource::Users));
        }
    }
    Ok(success(body(&user)))
}
