//! `/accounting/accounts/`: allocations of service units, their balance and their members.

use command::{
    account::{AccountChanges, AccountCommand, NewAccount},
    values::{AccountDescription, AccountName, AccountType, su_rounded},
};
use projection::accounting::AccountRow;
use serde_json::{Value, json};
use warp::reply::{Json, WithStatus};

use super::{
    Call, Caller, Resource,
    errors::AccountingError,
    fields::{self, Read, render_time},
    may_write, not_found, success,
    users::value,
};
use crate::{App, context::RequestContext};

const INVALID: &str = "Invalid account information.";
const NOT_FOUND: &str = "Invalid account/Account not found.";
const BALANCE_IS_DERIVED: &str =
    "The balance is the allocation minus the charges; it cannot be set.";

type Answer = Result<WithStatus<Json>, AccountingError>;

fn body(account: &AccountRow) -> Value {
    json!({
        "accountid": account.number,
        "users": account.users,
        "accountname": account.name,
        "accountallocation": account.allocation,
        "accountbalance": su_rounded(account.balance_hundredths),
        "type": account.account_type,
        "description": account.description,
        "created": render_time(account.created_at),
        "updated": render_time(account.updated_at),
        "overdrawn": account.balance_hundredths < 0,
    })
}

fn problem(e: command::values::InvalidValue) -> String {
    format!("This field {}", e.problem)
}

/// The balance a body may send: the one the account has (or will have) anyway.
fn check_balance(read: &mut Read, expected_hundredths: i64) {
    let Some(sent) = read.values.get("accountbalance").cloned() else {
        return;
    };
    let sent = match &sent {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if sent != Some(su_rounded(expected_hundredths)) {
        read.error("accountbalance", BALANCE_IS_DERIVED);
    }
}

/// The account ids of the user numbers in `users`, or field errors.
async fn members(app: &App, read: &mut Read) -> Result<Option<Vec<String>>, AccountingError> {
    let Some(numbers) = read.list("users").map(<[i64]>::to_vec) else {
        return Ok(None);
    };
    let found = projection::accounting::users_by_numbers(&app.db.pool, &numbers).await?;
    let mut ids = Vec::new();
    for n in numbers {
        match found.get(&n) {
            Some(id) => ids.push(id.clone()),
            None => read.error(
                "users",
                format!("Invalid pk \"{n}\" - object does not exist."),
            ),
        }
    }
    Ok(Some(ids))
}

/// Refuses a name another account holds.
async fn unique_name(
    app: &App,
    read: &mut Read,
    name: &AccountName,
    own: Option<&str>,
) -> Result<(), AccountingError> {
    if let Some(other) =
        projection::accounting::account_by_name(&app.db.pool, name.as_str()).await?
        && Some(other.account_id.as_str()) != own
    {
        read.error(
            "accountname",
            "account with this accountname already exists.",
        );
    }
    Ok(())
}

pub async fn create(ctx: &RequestContext, app: &App, call: &Call, caller: &Caller) -> Answer {
    may_write(caller, Resource::Accounts)?;
    let rules = fields::fields_for(fields::ACCOUNT, caller.is_admin());
    let mut read = fields::read(&rules, call.fields()?, false);
    let name = value(&mut read, "accountname", |t| {
        AccountName::parse(t).map_err(problem)
    });
    let account_type = value(&mut read, "type", |t| {
        AccountType::parse(t).map_err(problem)
    });
    let description = value(&mut read, "description", |t| {
        AccountDescription::parse(t).map_err(problem)
    });
    let allocation = read.int("accountallocation");
    if let Some(allocation) = allocation {
        check_balance(&mut read, allocation * 100);
    }
    let users = members(app, &mut read).await?;
    if let Some(name) = &name {
        unique_name(app, &mut read, name, None).await?;
    }
    let (Some(name), Some(account_type), Some(description), Some(allocation)) =
        (name, account_type, description, allocation)
    else {
        return Err(AccountingError::fields(INVALID, read.errors));
    };
    if !read.errors.is_empty() {
        return Err(AccountingError::fields(INVALID, read.errors));
    }
    let id = uuid::Uuid::new_v4().to_string();
    app.accounting.accounts.assume_new(&id).await;
    let open = AccountCommand::Open(NewAccount {
        name,
        allocation,
        account_type,
        description,
    });
    let command_ctx = caller.command(ctx, &id);
    app.write(&app.accounting.accounts, &id, &open, &command_ctx)
        .await
        .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    if let Some(users) = users.filter(|u| !u.is_empty()) {
        app.write(
            &app.accounting.accounts,
            &id,
            &AccountCommand::Join(users, "admin"),
            &command_ctx,
        )
        .await
        .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    }
    one(app, &id).await
}

async fn one(app: &App, id: &str) -> Answer {
    let account = projection::accounting::account_by_id(&app.db.pool, id)
        .await?
        .ok_or_else(|| not_found(Resource::Accounts))?;
    Ok(success(body(&account)))
}

/// A PATCH: its field changes, its allocation, then its membership, each its own event,
/// after the whole body was checked (so only an outage can stop it half way).
pub async fn update(
    ctx: &RequestContext,
    app: &App,
    call: &Call,
    caller: &Caller,
    number: i64,
) -> Answer {
    may_write(caller, Resource::Accounts)?;
    let account = projection::accounting::account_by_number(&app.db.pool, number)
        .await?
        .ok_or_else(|| not_found(Resource::Accounts))?;
    let rules = fields::fields_for(fields::ACCOUNT, caller.is_admin());
    let mut read = fields::read(&rules, call.fields()?, true);
    let changes = AccountChanges {
        name: value(&mut read, "accountname", |t| {
            AccountName::parse(t).map_err(problem)
        }),
        account_type: value(&mut read, "type", |t| {
            AccountType::parse(t).map_err(problem)
        }),
        description: value(&mut read, "description", |t| {
            AccountDescription::parse(t).map_err(problem)
        }),
    };
    if let Some(name) = &changes.name {
        unique_name(app, &mut read, name, Some(&account.account_id)).await?;
    }
    let allocation = read.int("accountallocation");
    let new_allocation = allocation.unwrap_or(account.allocation);
    check_balance(
        &mut read,
        account.balance_hundredths + (new_allocation - account.allocation) * 100,
    );
    let users = members(app, &mut read).await?;
    if !read.errors.is_empty() {
        return Err(AccountingError::fields(INVALID, read.errors));
    }
    let id = account.account_id.as_str();
    let command_ctx = caller.command(ctx, id);
    let mut commands = Vec::new();
    if changes != AccountChanges::default() {
        commands.push(AccountCommand::Update(changes));
    }
    if let Some(allocation) = allocation {
        commands.push(AccountCommand::ChangeAllocation(allocation));
    }
    if let Some(users) = users {
        let current = projection::accounting::members(&app.db.pool, id).await?;
        let joined: Vec<String> = users
            .iter()
            .filter(|u| !current.contains(u))
            .cloned()
            .collect();
        let left: Vec<String> = current.into_iter().filter(|u| !users.contains(u)).collect();
        if !joined.is_empty() {
            commands.push(AccountCommand::Join(joined, "admin"));
        }
        if !left.is_empty() {
            commands.push(AccountCommand::Leave(left));
        }
    }
    for command in &commands {
        app.write(&app.accounting.accounts, id, command, &command_ctx)
            .await
            .map_err(|e| AccountingError::command(e, INVALID, NOT_FOUND))?;
    }
    one(app, id).await
}

pub async fn get(app: &App, caller: &Caller, number: i64) -> Answer {
    let account = projection::accounting::account_by_number(&app.db.pool, number)
        .await?
        .ok_or_else(|| not_found(Resource::Accounts))?;
    if let Caller::Member { user_id, .. } = caller
        && !projection::accounting::is_member(&app.db.pool, &account.account_id, user_id).await?
    {
        return Err(not_found(Resource::Accounts));
    }
    Ok(success(body(&account)))
}
