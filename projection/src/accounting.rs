//! The accounting ledger read model: accounts with their balance, accounting users, Slurm
//! jobs with their amount, memberships, and the integer ids of partition and QOS names; and
//! the queries of the accounting door.
//!
//! Decisions recorded here:
//! - Integer ids (`accountid`, `userid`, `jobnumber`) are the stream sequence of the event
//!   that made the row, so a rebuild gives every row the id it had.
//! - Partition and QOS names get ids 1, 2, 3 … per kind in the order the log first names
//!   them: stable under a rebuild, and small enough for the door's `qos` range.
//! - The balance is folded here: `charged_hundredths` is Σ `SUCharged` of the account, and
//!   balance = allocation × 100 − charged. A batch adds each account's charges with one
//!   statement, so a thousand charges against one account cost one row update per batch.
//! - A batch folds what it creates: the accounts, users and jobs it opens, adds and
//!   records take every later event of theirs in the batch in memory (through the events'
//!   own `apply_to`, the rules the aggregates use) and are written with one statement per
//!   table at its end, charges and totals included; memberships are written as the batch
//!   leaves each pair. Only rows of earlier batches get a statement per event, by key, all
//!   sent at once.
//! - A user becomes a member of an account when a job of theirs is recorded under it.
//! - A job row carries its user's and account's numbers and the username, copied when it
//!   is recorded (none of them ever changes), so that `GET /jobs/{id}/` reads one row.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{
    AccountEvent, DomainEvent, Event, SlurmJobEvent, SlurmUserEvent,
    accounting::{AccountOpened, SlurmJobRecorded, SlurmUserAdded},
};
use futures::future::BoxFuture;
use tokio_postgres::types::ToSql;

use crate::{
    DbError, Pool,
    pipeline::{Pipeline, params},
    registry::{Applied, Projection, Tx},
};

pub struct AccountingLedger;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS acct_account (
        account_id         text PRIMARY KEY,
        number             bigint NOT NULL UNIQUE,
        name               text NOT NULL,
        allocation         bigint NOT NULL,
        charged_hundredths bigint NOT NULL DEFAULT 0,
        account_type       text NOT NULL,
        description        text NOT NULL,
        created_at         timestamptz NOT NULL,
        updated_at         timestamptz NOT NULL
    );
    CREATE INDEX IF NOT EXISTS acct_account_name ON acct_account (name);
    CREATE TABLE IF NOT EXISTS acct_user (
        user_id    text PRIMARY KEY,
        number     bigint NOT NULL UNIQUE,
        username   text NOT NULL UNIQUE,
        metadata   text NOT NULL,
        email      text NOT NULL,
        ldap_uid   text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS acct_member (
        account_id text NOT NULL,
        user_id    text NOT NULL,
        PRIMARY KEY (account_id, user_id)
    );
    CREATE INDEX IF NOT EXISTS acct_member_user ON acct_member (user_id);
    CREATE TABLE IF NOT EXISTS acct_job (
        job_id            text PRIMARY KEY,
        number            bigint NOT NULL UNIQUE,
        cluster           text NOT NULL,
        slurm_job_id      bigint NOT NULL,
        user_id           text NOT NULL,
        account_id        text NOT NULL,
        submit            timestamptz NOT NULL,
        start_at          timestamptz,
        end_at            timestamptz,
        status            integer NOT NULL,
        partition         integer NOT NULL,
        qos               integer NOT NULL,
        amount_hundredths bigint NOT NULL DEFAULT 0,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL,
        user_number       bigint,
        account_number    bigint,
        username          text
    );
    -- Tables of builds before the job's user and account were copied into it.
    ALTER TABLE acct_job ADD COLUMN IF NOT EXISTS user_number bigint;
    ALTER TABLE acct_job ADD COLUMN IF NOT EXISTS account_number bigint;
    ALTER TABLE acct_job ADD COLUMN IF NOT EXISTS username text;
    UPDATE acct_job j SET user_number = u.number, account_number = a.number,
        username = u.username
    FROM acct_user u, acct_account a
    WHERE j.user_number IS NULL AND u.user_id = j.user_id AND a.account_id = j.account_id;
    CREATE INDEX IF NOT EXISTS acct_job_slurm ON acct_job (slurm_job_id);
    CREATE INDEX IF NOT EXISTS acct_job_account ON acct_job (account_id);
    CREATE INDEX IF NOT EXISTS acct_job_user ON acct_job (user_id);
    CREATE TABLE IF NOT EXISTS acct_name (
        kind text NOT NULL,
        name text NOT NULL,
        id   integer NOT NULL,
        PRIMARY KEY (kind, name),
        UNIQUE (kind, id)
    );";

impl Projection for AccountingLedger {
    fn name(&self) -> &'static str {
        "accounting_ledger"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[
            AccountEvent::AGGREGATE,
            SlurmUserEvent::AGGREGATE,
            SlurmJobEvent::AGGREGATE,
        ]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// The kinds of named things that get integer ids.
pub const PARTITION: &str = "partition";
pub const QOS: &str = "qos";

const NAME_ID: &str = "
    WITH new AS (
        INSERT INTO acct_name (kind, name, id)
        SELECT $1, $2, coalesce(max(id), 0) + 1 FROM acct_name WHERE kind = $1
        ON CONFLICT (kind, name) DO NOTHING
        RETURNING id)
    SELECT id FROM new UNION ALL SELECT id FROM acct_name WHERE kind = $1 AND name = $2";

/// The integer ids of partition and QOS names, read once per batch each.
#[derive(Default)]
struct Names(HashMap<(&'static str, String), i32>);

impl Names {
    /// The id of `name`, given it first if the log never named it before. It needs the
    /// answer: what the batch sent so far goes first.
    async fn id(
        &mut self,
        pipeline: &mut Pipeline<'_>,
        kind: &'static str,
        name: &str,
    ) -> Result<i32, tokio_postgres::Error> {
        if let Some(id) = self.0.get(&(kind, name.to_string())) {
            return Ok(*id);
        }
        pipeline.flush().await?;
        let tx = pipeline.tx();
        let statement = tx.prepare_cached(NAME_ID).await?;
        let id = tx.query_one(&statement, &[&kind, &name]).await?.get(0);
        self.0.insert((kind, name.to_string()), id);
        Ok(id)
    }
}

async fn apply_batch(tx: &Tx<'_>, events: &[Applied]) -> Result<(), tokio_postgres::Error> {
    // Statements for rows an earlier batch wrote are sent in log order without waiting for
    // the one before; only a name never seen before waits for its id.
    let mut pipeline = Pipeline::new(tx);
    let mut names = Names::default();
    let mut batch = Batch::default();
    for applied in events {
        let place = Place {
            id: applied.envelope.aggregate_id.as_str(),
            seq: applied.seq as i64,
            at: applied.envelope.meta.occurred_at,
        };
        match &applied.event {
            Event::Account(event) => batch.account(&mut pipeline, place, event).await?,
            Event::SlurmUser(event) => batch.slurm_user(&mut pipeline, place, event).await?,
            Event::SlurmJob(event) => {
                batch
                    .slurm_job(&mut pipeline, &mut names, place, event)
                    .await?
            }
            _ => {}
        }
    }
    batch.write(&mut pipeline, &mut names).await?;
    pipeline.run().await
}

/// Which aggregate an event is of, its stream sequence, and when it happened.
#[derive(Clone, Copy)]
struct Place<'a> {
    id: &'a str,
    seq: i64,
    at: DateTime<Utc>,
}

/// A row the batch creates, folded in memory until the batch's end.
struct New<'a, T> {
    id: &'a str,
    /// The sequence of the event that made it: its number.
    number: i64,
    value: T,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

/// The rows a batch creates, in log order, and where each is.
struct Created<'a, T> {
    rows: Vec<New<'a, T>>,
    index: HashMap<&'a str, usize>,
}

impl<T> Default for Created<'_, T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<'a, T> Created<'a, T> {
    fn add(&mut self, id: &'a str, number: i64, at: DateTime<Utc>, value: T) {
        self.index.insert(id, self.rows.len());
        self.rows.push(New {
            id,
            number,
            value,
            created: at,
            updated: at,
        });
    }

    /// The row `id` if this batch creates it, marked updated at `at`.
    fn touch(&mut self, id: &str, at: DateTime<Utc>) -> Option<&mut New<'a, T>> {
        let row = self.rows.get_mut(*self.index.get(id)?)?;
        row.updated = at;
        Some(row)
    }
}

/// What a batch writes at its end, one statement per table: the accounts, users and jobs
/// it creates with every later event of theirs folded in (through the events' own
/// `apply_to`, the rules the aggregates use), each membership as the batch leaves it, and
/// the charges of rows an earlier batch wrote, summed per account and per job.
#[derive(Default)]
struct Batch<'a> {
    accounts: Created<'a, (AccountOpened, i64)>,
    users: Created<'a, SlurmUserAdded>,
    jobs: Created<'a, (SlurmJobRecorded, i64)>,
    /// (account, user) → member or not, the last word of the batch on the pair.
    members: HashMap<(&'a str, &'a str), bool>,
    charged: HashMap<&'a str, i64>,
    totals: HashMap<&'a str, (i64, DateTime<Utc>)>,
}

impl<'a> Batch<'a> {
    async fn account(
        &mut self,
        pipeline: &mut Pipeline<'a>,
        place: Place<'a>,
        event: &'a AccountEvent,
    ) -> Result<(), tokio_postgres::Error> {
        let Place { id, seq, at } = place;
        match event {
            AccountEvent::AccountOpened(o) => self.accounts.add(id, seq, at, (o.clone(), 0)),
            AccountEvent::AccountUpdated(u) => match self.accounts.touch(id, at) {
                Some(new) => u.apply_to(&mut new.value.0),
                None => {
                    pipeline
                        .push(
                            "UPDATE acct_account SET name = coalesce($2, name),
                                 account_type = coalesce($3, account_type),
                                 description = coalesce($4, description), updated_at = $5
                             WHERE account_id = $1",
                            params![id, &u.name, &u.account_type, &u.description, at],
                        )
                        .await?
                }
            },
            AccountEvent::AllocationChanged(c) => match self.accounts.touch(id, at) {
                Some(new) => new.value.0.allocation = c.allocation,
                None => {
                    pipeline
                        .push(
                            "UPDATE acct_account SET allocation = $2, updated_at = $3
                             WHERE account_id = $1",
                            params![id, &c.allocation, at],
                        )
                        .await?
                }
            },
            AccountEvent::UserJoinedAccount(j) => {
                self.membership(pipeline, id, at, &j.users, true).await?
            }
            AccountEvent::UserLeftAccount(l) => {
                self.membership(pipeline, id, at, &l.users, false).await?
            }
        }
        Ok(())
    }

    async fn membership(
        &mut self,
        pipeline: &mut Pipeline<'a>,
        id: &'a str,
        at: DateTime<Utc>,
        users: &'a [String],
        member: bool,
    ) -> Result<(), tokio_postgres::Error> {
        for user in users {
            self.members.insert((id, user.as_str()), member);
        }
        if self.accounts.touch(id, at).is_none() {
            pipeline
                .push(
                    "UPDATE acct_account SET updated_at = $2 WHERE account_id = $1",
                    params![id, at],
                )
                .await?;
        }
        Ok(())
    }

    async fn slurm_user(
        &mut self,
        pipeline: &mut Pipeline<'a>,
        place: Place<'a>,
        event: &'a SlurmUserEvent,
    ) -> Result<(), tokio_postgres::Error> {
        let Place { id, seq, at } = place;
        match event {
            SlurmUserEvent::SlurmUserAdded(a) => self.users.add(id, seq, at, a.clone()),
            SlurmUserEvent::SlurmUserUpdated(u) => match self.users.touch(id, at) {
                Some(new) => u.apply_to(&mut new.value),
                None => {
                    pipeline
                        .push(
                            "UPDATE acct_user SET metadata = coalesce($2, metadata),
                                 email = coalesce($3, email), ldap_uid = coalesce($4, ldap_uid),
                                 updated_at = $5
                             WHERE user_id = $1",
                            params![id, &u.metadata, &u.email, &u.ldap_uid, at],
                        )
                        .await?
                }
            },
        }
        Ok(())
    }

    async fn slurm_job(
        &mut self,
        pipeline: &mut Pipeline<'a>,
        names: &mut Names,
        place: Place<'a>,
        event: &'a SlurmJobEvent,
    ) -> Result<(), tokio_postgres::Error> {
        let Place { id, seq, at } = place;
        match event {
            SlurmJobEvent::SlurmJobRecorded(job) => {
                // Names get their ids in the order the log first names them.
                names.id(pipeline, PARTITION, &job.partition).await?;
                names.id(pipeline, QOS, &job.qos).await?;
                self.members
                    .insert((job.account_id.as_str(), job.user_id.as_str()), true);
                self.jobs.add(id, seq, at, (job.clone(), 0));
            }
            SlurmJobEvent::SlurmJobUpdated(changes) => {
                let partition = match &changes.partition {
                    Some(name) => Some(names.id(pipeline, PARTITION, name).await?),
                    None => None,
                };
                let qos = match &changes.qos {
                    Some(name) => Some(names.id(pipeline, QOS, name).await?),
                    None => None,
                };
                match self.jobs.touch(id, at) {
                    Some(new) => changes.apply_to(&mut new.value.0),
                    None => {
                        // A total written at the batch's end carries this time, the job's
                        // latest, as the update's own statement does.
                        if let Some(total) = self.totals.get_mut(id) {
                            total.1 = at;
                        }
                        pipeline
                            .push(
                                "UPDATE acct_job SET submit = coalesce($2, submit),
                                     start_at = coalesce($3, start_at), end_at = coalesce($4, end_at),
                                     status = coalesce($5, status),
                                     partition = coalesce($6, partition), qos = coalesce($7, qos),
                                     updated_at = $8
                                 WHERE job_id = $1",
                                params![
                                    id,
                                    &changes.submit,
                                    &changes.start,
                                    &changes.end,
                                    &changes.status,
                                    partition,
                                    qos,
                                    at
                                ],
                            )
                            .await?
                    }
                }
            }
            SlurmJobEvent::SUCharged(charge) => {
                let account = charge.account_id.as_str();
                // The account's row is not touched: a charge moves its balance only.
                match self.accounts.index.get(account) {
                    Some(&i) => self.accounts.rows[i].value.1 += charge.su_hundredths,
                    None => *self.charged.entry(account).or_default() += charge.su_hundredths,
                }
                match self.jobs.touch(id, at) {
                    Some(new) => new.value.1 = charge.total_hundredths,
                    None => {
                        self.totals.insert(id, (charge.total_hundredths, at));
                    }
                }
            }
        }
        Ok(())
    }

    /// The batch's own rows first (jobs after the accounts and users they copy numbers
    /// from), then memberships, then the charges of older rows, one statement per row by
    /// its key: a join with an `UNNEST` of the batch would be planned as a scan of the
    /// whole table.
    async fn write(
        self,
        pipeline: &mut Pipeline<'a>,
        names: &mut Names,
    ) -> Result<(), tokio_postgres::Error> {
        write_accounts(pipeline, &self.accounts.rows).await?;
        write_users(pipeline, &self.users.rows).await?;
        write_jobs(pipeline, names, &self.jobs.rows).await?;
        write_members(pipeline, &self.members).await?;
        for (account, sum) in self.charged {
            pipeline
                .push(
                    "UPDATE acct_account SET charged_hundredths = charged_hundredths + $2
                     WHERE account_id = $1",
                    params![account, sum],
                )
                .await?;
        }
        for (job, (total, at)) in self.totals {
            pipeline
                .push(
                    "UPDATE acct_job SET amount_hundredths = $2, updated_at = $3 WHERE job_id = $1",
                    params![job, total, at],
                )
                .await?;
        }
        Ok(())
    }
}

async fn write_accounts<'a>(
    pipeline: &mut Pipeline<'a>,
    rows: &[New<'a, (AccountOpened, i64)>],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&New<'a, (AccountOpened, i64)>) -> String| -> Vec<String> {
        rows.iter().map(f).collect()
    };
    let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
    let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
    let allocations: Vec<i64> = rows.iter().map(|r| r.value.0.allocation).collect();
    let charged: Vec<i64> = rows.iter().map(|r| r.value.1).collect();
    let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated).collect();
    pipeline
        .push(
            "INSERT INTO acct_account (account_id, number, name, allocation, charged_hundredths,
                 account_type, description, created_at, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[],
                 $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])
             ON CONFLICT (account_id) DO NOTHING",
            params![
                ids,
                numbers,
                column(|r| r.value.0.name.clone()),
                allocations,
                charged,
                column(|r| r.value.0.account_type.clone()),
                column(|r| r.value.0.description.clone()),
                created,
                updated
            ],
        )
        .await
}

async fn write_users<'a>(
    pipeline: &mut Pipeline<'a>,
    rows: &[New<'a, SlurmUserAdded>],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&SlurmUserAdded) -> &String| -> Vec<String> {
        rows.iter().map(|r| f(&r.value).clone()).collect()
    };
    let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
    let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
    let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated).collect();
    pipeline
        .push(
            "INSERT INTO acct_user (user_id, number, username, metadata, email, ldap_uid,
                 created_at, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::timestamptz[], $8::timestamptz[])
             ON CONFLICT (user_id) DO NOTHING",
            params![
                ids,
                numbers,
                column(|u| &u.username),
                column(|u| &u.metadata),
                column(|u| &u.email),
                column(|u| &u.ldap_uid),
                created,
                updated
            ],
        )
        .await
}

/// Memberships as the batch leaves them: the pairs it ended first, then the ones it made.
/// `= ANY` on the accounts makes the delete read `acct_member` by key.
async fn write_members<'a>(
    pipeline: &mut Pipeline<'a>,
    members: &HashMap<(&'a str, &'a str), bool>,
) -> Result<(), tokio_postgres::Error> {
    for member in [false, true] {
        let (accounts, users): (Vec<&str>, Vec<&str>) = members
            .iter()
            .filter(|(_, m)| **m == member)
            .map(|(pair, _)| *pair)
            .unzip();
        if accounts.is_empty() {
            continue;
        }
        let sql = if member {
            "INSERT INTO acct_member (account_id, user_id)
             SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM acct_member m USING UNNEST($1::text[], $2::text[]) AS t(a, u)
             WHERE m.account_id = ANY($1::text[]) AND m.account_id = t.a AND m.user_id = t.u"
        };
        pipeline.push(sql, params![accounts, users]).await?;
    }
    Ok(())
}

/// Writes the jobs the batch recorded, with their state at its end, in one statement.
async fn write_jobs<'a>(
    pipeline: &mut Pipeline<'a>,
    names: &mut Names,
    rows: &[New<'a, (SlurmJobRecorded, i64)>],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut r = JobRows::default();
    for new in rows {
        let (job, amount) = (&new.value.0, new.value.1);
        r.partition
            .push(names.id(pipeline, PARTITION, &job.partition).await?);
        r.qos.push(names.id(pipeline, QOS, &job.qos).await?);
        r.id.push(new.id);
        r.number.push(new.number);
        r.cluster.push(job.cluster.clone());
        r.slurm_job_id.push(job.slurm_job_id);
        r.user_id.push(job.user_id.clone());
        r.account_id.push(job.account_id.clone());
        r.submit.push(job.submit);
        r.start.push(job.start);
        r.end.push(job.end);
        r.status.push(job.status);
        r.at.push(new.created);
        r.amount.push(amount);
        r.updated.push(new.updated);
    }
    // The user's and account's columns are looked up row by row (by key): a join would be
    // planned as a hash of the whole user and account tables for every batch.
    pipeline
        .push(
            "INSERT INTO acct_job (job_id, number, cluster, slurm_job_id, user_id, account_id, submit,
                 start_at, end_at, status, partition, qos, created_at, updated_at, user_number,
                 account_number, username, amount_hundredths)
             SELECT t.id, t.number, t.cluster, t.slurm_job_id, t.user_id, t.account_id, t.submit,
                 t.start_at, t.end_at, t.status, t.partition, t.qos, t.at, t.updated,
                 (SELECT u.number FROM acct_user u WHERE u.user_id = t.user_id),
                 (SELECT a.number FROM acct_account a WHERE a.account_id = t.account_id),
                 (SELECT u.username FROM acct_user u WHERE u.user_id = t.user_id),
                 t.amount
             FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[],
                 $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::int4[], $11::int4[],
                 $12::int4[], $13::timestamptz[], $14::int8[], $15::timestamptz[])
                 AS t(id, number, cluster, slurm_job_id, user_id, account_id, submit, start_at,
                      end_at, status, partition, qos, at, amount, updated)
             ON CONFLICT (job_id) DO NOTHING",
            params![
                r.id,
                r.number,
                r.cluster,
                r.slurm_job_id,
                r.user_id,
                r.account_id,
                r.submit,
                r.start,
                r.end,
                r.status,
                r.partition,
                r.qos,
                r.at,
                r.amount,
                r.updated,
            ],
        )
        .await
}

/// Job rows to write, column by column, for `UNNEST`.
#[derive(Default)]
struct JobRows<'a> {
    id: Vec<&'a str>,
    number: Vec<i64>,
    cluster: Vec<String>,
    slurm_job_id: Vec<i64>,
    user_id: Vec<String>,
    account_id: Vec<String>,
    submit: Vec<DateTime<Utc>>,
    start: Vec<Option<DateTime<Utc>>>,
    end: Vec<Option<DateTime<Utc>>>,
    status: Vec<i32>,
    partition: Vec<i32>,
    qos: Vec<i32>,
    at: Vec<DateTime<Utc>>,
    amount: Vec<i64>,
    updated: Vec<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------
// Queries of the accounting door.

/// An account as the door shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub account_id: String,
    pub number: i64,
    pub name: String,
    pub allocation: i64,
    pub balance_hundredths: i64,
    pub account_type: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Member user numbers, ascending.
    pub users: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    pub number: i64,
    pub username: String,
    pub metadata: String,
    pub email: String,
    pub ldap_uid: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Account numbers, ascending.
    pub accounts: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: String,
    pub number: i64,
    pub cluster: String,
    pub slurm_job_id: i64,
    pub user_number: i64,
    pub account_number: i64,
    pub account_id: String,
    pub submit: DateTime<Utc>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub status: i32,
    pub partition: i32,
    pub qos: i32,
    pub amount_hundredths: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The username of the job's user (for authorization).
    pub username: String,
}

/// One condition of a list: a column compared with a value, or a membership.
#[derive(Debug, Clone)]
pub enum Condition {
    Int(&'static str, i64),
    Text(&'static str, String),
    /// A timestamp column inside `[from, to)`.
    Between(&'static str, DateTime<Utc>, DateTime<Utc>),
    /// Accounts a user (by number) is a member of.
    AccountHasUser(i64),
    /// Users that are members of an account (by number).
    UserInAccount(i64),
    /// Jobs of the user with this number.
    JobOfUser(i64),
    /// Jobs under the account with this number.
    JobOfAccount(i64),
    /// Only rows a user (accounting user id) may read: accounts they are a member of,
    /// themselves, their accounts' jobs.
    VisibleTo(String),
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Accounts,
    Users,
    Jobs,
}

impl Listing {
    fn table(self) -> &'static str {
        match self {
            Listing::Accounts => "acct_account t",
            Listing::Users => "acct_user t",
            Listing::Jobs => "acct_job t",
        }
    }
}

/// One page of a list: the total count and the numbers of the page, in number order.
pub async fn list(
    pool: &Pool,
    listing: Listing,
    conditions: &[Condition],
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<i64>), DbError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    for condition in conditions {
        let n = params.len() + 1;
        let clause = match condition {
            Condition::Int(column, v) => {
                params.push(Box::new(*v));
                // Some columns are `integer`: compare as `bigint`.
                format!("t.{column} = ${n}::int8")
            }
            Condition::Text(column, v) => {
                params.push(Box::new(v.clone()));
                format!("t.{column} = ${n}::text")
            }
            Condition::Between(column, from, to) => {
                params.push(Box::new(*from));
                params.push(Box::new(*to));
                format!("t.{column} >= ${n} AND t.{column} < ${}", n + 1)
            }
            Condition::AccountHasUser(user) => {
                params.push(Box::new(*user));
                format!(
                    "t.account_id IN (SELECT m.account_id FROM acct_member m \
                     JOIN acct_user u ON u.user_id = m.user_id WHERE u.number = ${n})"
                )
            }
            Condition::UserInAccount(account) => {
                params.push(Box::new(*account));
                format!(
                    "t.user_id IN (SELECT m.user_id FROM acct_member m \
                     JOIN acct_account a ON a.account_id = m.account_id WHERE a.number = ${n})"
                )
            }
            Condition::JobOfUser(user) => {
                params.push(Box::new(*user));
                format!("t.user_id IN (SELECT user_id FROM acct_user WHERE number = ${n})")
            }
            Condition::JobOfAccount(account) => {
                params.push(Box::new(*account));
                format!("t.account_id IN (SELECT account_id FROM acct_account WHERE number = ${n})")
            }
            Condition::VisibleTo(user) => {
                params.push(Box::new(user.clone()));
                match listing {
                    Listing::Users => format!(
                        "(t.user_id = ${n} OR t.user_id IN (SELECT m2.user_id FROM acct_member m2 \
                         WHERE m2.account_id IN (SELECT account_id FROM acct_member WHERE user_id = ${n})))"
                    ),
                    Listing::Accounts | Listing::Jobs => format!(
                        "t.account_id IN (SELECT account_id FROM acct_member WHERE user_id = ${n})"
                    ),
                }
            }
        };
        clauses.push(clause);
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let n = params.len();
    let sql = format!(
        "SELECT count(*) OVER (), t.number FROM {}{filter} ORDER BY t.number OFFSET ${} LIMIT ${}",
        listing.table(),
        n + 1,
        n + 2
    );
    params.push(Box::new(offset));
    params.push(Box::new(limit));
    let client = pool.get().await?;
    let statement = client.prepare_cached(&sql).await?;
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = client.query(&statement, &refs).await?;
    let numbers: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    let count = match rows.first() {
        Some(row) => row.get(0),
        // An empty page: count the whole list (an out-of-range page needs the count too).
        None => {
            let sql = format!("SELECT count(*) FROM {}{filter}", listing.table());
            let statement = client.prepare_cached(&sql).await?;
            client
                .query_one(&statement, &refs[..n])
                .await?
                .get::<_, i64>(0)
        }
    };
    Ok((count, numbers))
}

const ACCOUNT_COLUMNS: &str = "a.account_id, a.number, a.name, a.allocation,
    a.allocation * 100 - a.charged_hundredths, a.account_type, a.description, a.created_at,
    a.updated_at,
    ARRAY(SELECT u.number FROM acct_member m JOIN acct_user u ON u.user_id = m.user_id
          WHERE m.account_id = a.account_id ORDER BY u.number)";

fn account_row(row: &tokio_postgres::Row) -> AccountRow {
    AccountRow {
        account_id: row.get(0),
        number: row.get(1),
        name: row.get(2),
        allocation: row.get(3),
        balance_hundredths: row.get(4),
        account_type: row.get(5),
        description: row.get(6),
        created_at: row.get(7),
        updated_at: row.get(8),
        users: row.get(9),
    }
}

async fn one_account(
    pool: &Pool,
    filter: &str,
    param: &(dyn ToSql + Sync),
) -> Result<Option<AccountRow>, DbError> {
    let client = pool.get().await?;
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM acct_account a WHERE {filter}");
    let statement = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&statement, &[param])
        .await?
        .as_ref()
        .map(account_row))
}

pub async fn account_by_number(pool: &Pool, number: i64) -> Result<Option<AccountRow>, DbError> {
    one_account(pool, "a.number = $1", &number).await
}

pub async fn account_by_name(pool: &Pool, name: &str) -> Result<Option<AccountRow>, DbError> {
    one_account(pool, "a.name = $1", &name).await
}

pub async fn account_by_id(pool: &Pool, id: &str) -> Result<Option<AccountRow>, DbError> {
    one_account(pool, "a.account_id = $1", &id).await
}

/// The accounts with these numbers that exist, by number.
pub async fn accounts_by_numbers(
    pool: &Pool,
    numbers: &[i64],
) -> Result<HashMap<i64, String>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT number, account_id FROM acct_account WHERE number = ANY($1)")
        .await?;
    Ok(client
        .query(&statement, &[&numbers])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The users with these numbers that exist: number → user id.
pub async fn users_by_numbers(
    pool: &Pool,
    numbers: &[i64],
) -> Result<HashMap<i64, String>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT number, user_id FROM acct_user WHERE number = ANY($1)")
        .await?;
    Ok(client
        .query(&statement, &[&numbers])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

const USER_COLUMNS: &str = "u.user_id, u.number, u.username, u.metadata, u.email, u.ldap_uid,
    u.created_at, u.updated_at,
    ARRAY(SELECT a.number FROM acct_member m JOIN acct_account a ON a.account_id = m.account_id
          WHERE m.user_id = u.user_id ORDER BY a.number)";

async fn one_user(
    pool: &Pool,
    filter: &str,
    param: &(dyn ToSql + Sync),
) -> Result<Option<UserRow>, DbError> {
    let client = pool.get().await?;
    let sql = format!("SELECT {USER_COLUMNS} FROM acct_user u WHERE {filter}");
    let statement = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&statement, &[param])
        .await?
        .map(|row| UserRow {
            user_id: row.get(0),
            number: row.get(1),
            username: row.get(2),
            metadata: row.get(3),
            email: row.get(4),
            ldap_uid: row.get(5),
            created_at: row.get(6),
            updated_at: row.get(7),
            accounts: row.get(8),
        }))
}

pub async fn user_by_number(pool: &Pool, number: i64) -> Result<Option<UserRow>, DbError> {
    one_user(pool, "u.number = $1", &number).await
}

pub async fn users_by_id(pool: &Pool, id: &str) -> Result<Option<UserRow>, DbError> {
    one_user(pool, "u.user_id = $1", &id).await
}

pub async fn user_by_username(pool: &Pool, username: &str) -> Result<Option<UserRow>, DbError> {
    one_user(pool, "u.username = $1", &username).await
}

/// The ids a charge names, in one round trip on a shared connection ([`crate::Readers`]):
/// the account named `account` (the oldest, should two share the name) and the user named
/// `username`; `None` for one that does not exist.
pub async fn charge_parties(
    db: &crate::Database,
    account: &str,
    username: &str,
) -> Result<(Option<String>, Option<String>), DbError> {
    let client = db.readers.client().await?;
    let statement = client
        .prepare_cached(
            "SELECT (SELECT account_id FROM acct_account WHERE name = $1 ORDER BY number LIMIT 1),
                    (SELECT user_id FROM acct_user WHERE username = $2)",
        )
        .await?;
    let row = client.query_one(&statement, &[&account, &username]).await?;
    Ok((row.get(0), row.get(1)))
}

/// An account's balance in hundredths of an SU, on a shared connection.
pub async fn balance_of(db: &crate::Database, account_id: &str) -> Result<Option<i64>, DbError> {
    let client = db.readers.client().await?;
    let statement = client
        .prepare_cached(
            "SELECT allocation * 100 - charged_hundredths FROM acct_account WHERE account_id = $1",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&account_id])
        .await?
        .map(|r| r.get(0)))
}

/// One job by its number, read on a shared connection ([`crate::Readers`]): the door's
/// hottest read.
pub async fn job_by_number(db: &crate::Database, number: i64) -> Result<Option<JobRow>, DbError> {
    one_job(db, "j.number = $1", &number).await
}

/// One job by its aggregate id.
pub async fn job_by_id(db: &crate::Database, id: &str) -> Result<Option<JobRow>, DbError> {
    one_job(db, "j.job_id = $1", &id).await
}

async fn one_job(
    db: &crate::Database,
    filter: &str,
    param: &(dyn ToSql + Sync),
) -> Result<Option<JobRow>, DbError> {
    let sql = format!(
        "SELECT j.job_id, j.number, j.cluster, j.slurm_job_id, j.user_number, j.account_number,
            j.account_id, j.submit, j.start_at, j.end_at, j.status, j.partition, j.qos,
            j.amount_hundredths, j.created_at, j.updated_at, j.username
        FROM acct_job j
        WHERE {filter} AND j.user_number IS NOT NULL AND j.account_number IS NOT NULL"
    );
    let client = db.readers.client().await?;
    let statement = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&statement, &[param])
        .await?
        .map(|row| JobRow {
            job_id: row.get(0),
            number: row.get(1),
            cluster: row.get(2),
            slurm_job_id: row.get(3),
            user_number: row.get(4),
            account_number: row.get(5),
            account_id: row.get(6),
            submit: row.get(7),
            start: row.get(8),
            end: row.get(9),
            status: row.get(10),
            partition: row.get(11),
            qos: row.get(12),
            amount_hundredths: row.get(13),
            created_at: row.get(14),
            updated_at: row.get(15),
            username: row.get(16),
        }))
}

/// The name of partition or QOS id `id` (`kind`: [`PARTITION`], [`QOS`]).
pub async fn name_of(pool: &Pool, kind: &str, id: i32) -> Result<Option<String>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT name FROM acct_name WHERE kind = $1 AND id = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&kind, &id])
        .await?
        .map(|r| r.get(0)))
}

/// Whether the user with id `user_id` is a member of account `account_id`.
pub async fn is_member(pool: &Pool, account_id: &str, user_id: &str) -> Result<bool, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT 1 FROM acct_member WHERE account_id = $1 AND user_id = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&account_id, &user_id])
        .await?
        .is_some())
}

/// The user ids of an account's members.
pub async fn members(pool: &Pool, account_id: &str) -> Result<Vec<String>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT user_id FROM acct_member WHERE account_id = $1")
        .await?;
    Ok(client
        .query(&statement, &[&account_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
