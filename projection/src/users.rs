//! The `users` read model: who exists, with which role, status and attributes, and which
//! credential is their current password (never the hash: that is in
//! [`crate::credentials`]).
//!
//! Personal columns (email, phone, real name, LDAP uid) hold what the projector opened: the
//! plaintext, or an empty string where the user's key was destroyed. `UserForgotten` blanks
//! them and destroys the user's keys in the same transaction ([`crate::personal`]), so the
//! destruction is certain once the event is in the log, and every rebuild blanks them again.
//!
//! A batch folds each user's events into their row in memory and writes every row it
//! touched once, with the access rows beside them ([`crate::access`]): the effect of each
//! event on a row is `Row::change`, in one place, whatever the batch's size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{
    DomainEvent, Event, UserEvent,
    user::{UserCreated, UserRegistered, UserStatus, legacy_credential},
};
use futures::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    Database, DbError, Pool, credentials, personal,
    pipeline::{Param, Pipeline, params},
    registry::{Applied, Projection, Tx},
};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    /// The user's number: the stream sequence of the event that registered or created them,
    /// so it is the same after every rebuild and at every door.
    pub number: i64,
    pub username: String,
    pub admin: bool,
    pub status: UserStatus,
    pub email: String,
    pub phone: String,
    pub real_name: String,
    pub ldap_uid: String,
    pub virtual_clusters: Vec<String>,
    pub groups: Vec<String>,
    pub extension: serde_json::Map<String, Value>,
    /// The credential of the current password, if any.
    pub credential: Option<Uuid>,
    /// The last roster release the user's events carried (`command::admins`).
    pub admin_release: Option<Uuid>,
    /// Tokens issued before this are void.
    pub tokens_revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// An effective admin (admin and approved), with the last release their events carried: what
/// the admins roster counts.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminRow {
    pub username: String,
    pub admin_release: Option<Uuid>,
}

/// The `users` table: one row per existing user.
pub struct UserDirectory;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS users (
        user_id           text PRIMARY KEY,
        number            bigint NOT NULL UNIQUE,
        username          text NOT NULL UNIQUE,
        admin             boolean NOT NULL,
        status            text NOT NULL,
        email             text NOT NULL,
        phone             text NOT NULL,
        real_name         text NOT NULL,
        ldap_uid          text NOT NULL,
        virtual_clusters  text[] NOT NULL,
        groups            text[] NOT NULL,
        extension         jsonb NOT NULL,
        credential        uuid,
        admin_release     uuid,
        tokens_revoked_at timestamptz,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL,
        last_seq          bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS users_admins ON users (username) WHERE admin AND status = 'approved';
    CREATE TABLE IF NOT EXISTS user_access (
        user_id           text PRIMARY KEY,
        username          text NOT NULL,
        number            bigint NOT NULL,
        admin             boolean NOT NULL,
        status            text NOT NULL,
        tokens_revoked_at timestamptz,
        deleted           boolean NOT NULL,
        last_seq          bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS user_access_seq ON user_access (last_seq);";

/// A registration or a creation: the row as new (a name taken again after a deletion
/// starts afresh).
/// Whole rows, written once per batch: the rows the batch left, each with every column.
/// List columns travel as JSON arrays, since `UNNEST` flattens an array of arrays.
const WRITE_ROWS: &str = "
    INSERT INTO users (user_id, number, username, admin, status, email, phone, real_name,
                       ldap_uid, virtual_clusters, groups, extension, credential, admin_release,
                       tokens_revoked_at, created_at, updated_at, last_seq)
    SELECT t.user_id, t.number, t.username, t.admin, t.status, t.email, t.phone, t.real_name,
           t.ldap_uid, ARRAY(SELECT jsonb_array_elements_text(t.virtual_clusters)),
           ARRAY(SELECT jsonb_array_elements_text(t.groups)), t.extension, t.credential,
           t.admin_release, t.tokens_revoked_at, t.created_at, t.updated_at, t.last_seq
    FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::bool[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::jsonb[], $12::jsonb[],
                $13::uuid[], $14::uuid[], $15::timestamptz[], $16::timestamptz[],
                $17::timestamptz[], $18::int8[])
        AS t(user_id, number, username, admin, status, email, phone, real_name, ldap_uid,
             virtual_clusters, groups, extension, credential, admin_release, tokens_revoked_at,
             created_at, updated_at, last_seq)
    ON CONFLICT (user_id) DO UPDATE SET
        number = EXCLUDED.number, username = EXCLUDED.username, admin = EXCLUDED.admin,
        status = EXCLUDED.status, email = EXCLUDED.email, phone = EXCLUDED.phone,
        real_name = EXCLUDED.real_name, ldap_uid = EXCLUDED.ldap_uid,
        virtual_clusters = EXCLUDED.virtual_clusters, groups = EXCLUDED.groups,
        extension = EXCLUDED.extension, credential = EXCLUDED.credential,
        admin_release = EXCLUDED.admin_release, tokens_revoked_at = EXCLUDED.tokens_revoked_at,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
        last_seq = EXCLUDED.last_seq";

/// The access rows of the users a batch touched, as the batch left them (`deleted` for a
/// user it deleted, with what they were just before), so that every process follows them
/// ([`crate::access`]).
const WRITE_ACCESS: &str = "
    INSERT INTO user_access (user_id, username, number, admin, status, tokens_revoked_at,
                             deleted, last_seq)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::bool[], $5::text[],
                         $6::timestamptz[], $7::bool[], $8::int8[])
    ON CONFLICT (user_id) DO UPDATE SET
        username = EXCLUDED.username, number = EXCLUDED.number, admin = EXCLUDED.admin,
        status = EXCLUDED.status, tokens_revoked_at = EXCLUDED.tokens_revoked_at,
        deleted = EXCLUDED.deleted, last_seq = EXCLUDED.last_seq";

/// Users the batch touched of whom it knows no row (events after a deletion in an earlier
/// batch): whatever access row they have is marked deleted.
const MARK_DELETED: &str = "
    UPDATE user_access a SET deleted = true, last_seq = t.last_seq
    FROM UNNEST($1::text[], $2::int8[]) AS t(user_id, last_seq)
    WHERE a.user_id = ANY($1::text[]) AND a.user_id = t.user_id";

impl Projection for UserDirectory {
    fn name(&self) -> &'static str {
        "user_directory"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[UserEvent::AGGREGATE]
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

/// A batch reads the rows of the users it touches (those it does not create), folds its
/// events into them in memory (`Row::change`, the one place of each event's effect on a
/// row), and writes each row back once: a thousand users created and changed cost three
/// statements, not a thousand.
async fn apply_batch(tx: &Tx<'_>, events: &[Applied]) -> Result<(), tokio_postgres::Error> {
    let mut pipeline = Pipeline::new(tx);
    let mut users: HashMap<&str, Touched> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut to_read: Vec<&str> = Vec::new();
    for applied in events {
        let Event::User(event) = &applied.event else {
            continue;
        };
        let id = applied.envelope.aggregate_id.as_str();
        if !users.contains_key(id) {
            let creates = matches!(
                event,
                UserEvent::UserCreated(_) | UserEvent::UserRegistered(_)
            );
            if !creates {
                to_read.push(id);
            }
            users.insert(id, Touched::default());
            order.push(id);
        }
    }
    if users.is_empty() {
        return Ok(());
    }
    if !to_read.is_empty() {
        let statement = tx.prepare_cached(READ_ROWS).await?;
        for row in tx.query(&statement, &[&to_read]).await? {
            let id: String = row.get(0);
            if let Some(touched) = users.get_mut(id.as_str()) {
                touched.row = Some(Row::read(&row));
            }
        }
    }
    for applied in events {
        let Event::User(event) = &applied.event else {
            continue;
        };
        let id = applied.envelope.aggregate_id.as_str();
        let at = applied.envelope.meta.occurred_at;
        let seq = applied.seq as i64;
        let Some(touched) = users.get_mut(id) else {
            continue;
        };
        touched.last_seq = seq;
        match event {
            UserEvent::UserCreated(created) => {
                adopt_legacy_hash(&mut pipeline, applied).await?;
                touched.row = Some(Row::new(created.into(), seq, at));
            }
            UserEvent::UserRegistered(registered) => {
                touched.row = Some(Row::new(registered.into(), seq, at));
            }
            UserEvent::UserDeleted(_) => {
                if let Some(row) = touched.row.take() {
                    touched.deleted = Some(row);
                }
            }
            other => {
                if let UserEvent::UserForgotten(_) = other {
                    // The keys made up to the forget; data written after it has a fresh one.
                    pipeline
                        .push(personal::DESTROY, params![id.to_string(), at])
                        .await?;
                }
                if let Some(row) = touched.row.as_mut() {
                    row.change(other, at);
                    row.updated_at = at;
                    row.last_seq = seq;
                }
            }
        }
    }
    write_back(&mut pipeline, &order, &users).await?;
    pipeline.run().await
}

/// Writes what the batch left: deletions first (a name a deleted user held may be taken
/// again in the same batch), then the live rows, then every access row.
async fn write_back(
    pipeline: &mut Pipeline<'_>,
    order: &[&str],
    users: &HashMap<&str, Touched>,
) -> Result<(), tokio_postgres::Error> {
    let mut gone: Vec<String> = Vec::new();
    let mut rows = Columns::default();
    let mut access = AccessColumns::default();
    let mut unknown: (Vec<String>, Vec<i64>) = (Vec::new(), Vec::new());
    for &id in order {
        let Some(touched) = users.get(id) else {
            continue;
        };
        match &touched.row {
            Some(row) => rows.push(id, row),
            None if touched.deleted.is_some() => gone.push(id.to_string()),
            None => {}
        }
        match touched.row.as_ref().or(touched.deleted.as_ref()) {
            Some(row) => access.push(id, row, touched.row.is_none(), touched.last_seq),
            None => {
                unknown.0.push(id.to_string());
                unknown.1.push(touched.last_seq);
            }
        }
    }
    if !gone.is_empty() {
        pipeline
            .push(
                "DELETE FROM users WHERE user_id = ANY($1::text[])",
                params![gone],
            )
            .await?;
    }
    if !rows.user_id.is_empty() {
        pipeline.push(WRITE_ROWS, rows.params()).await?;
    }
    if !access.user_id.is_empty() {
        pipeline.push(WRITE_ACCESS, access.params()).await?;
    }
    if !unknown.0.is_empty() {
        pipeline
            .push(MARK_DELETED, params![unknown.0, unknown.1])
            .await?;
    }
    Ok(())
}

/// What a batch knows of one user.
#[derive(Default)]
struct Touched {
    /// The row as the events so far leave it; `None`: there is none.
    row: Option<Row>,
    /// The row just before the batch deleted it, for its access entry.
    deleted: Option<Row>,
    /// The sequence of the user's last event in the batch.
    last_seq: i64,
}

/// One user's directory row.
#[derive(Clone)]
struct Row {
    number: i64,
    username: String,
    admin: bool,
    status: String,
    email: String,
    phone: String,
    real_name: String,
    ldap_uid: String,
    virtual_clusters: Vec<String>,
    groups: Vec<String>,
    extension: Value,
    credential: Option<Uuid>,
    admin_release: Option<Uuid>,
    tokens_revoked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_seq: i64,
}

impl Row {
    /// The row a creation or a registration makes.
    fn new(new: NewRow<'_>, seq: i64, at: DateTime<Utc>) -> Self {
        Self {
            number: seq,
            username: new.username.to_string(),
            admin: new.admin,
            status: new.status.as_str().to_string(),
            email: new.email.to_string(),
            phone: new.phone.to_string(),
            real_name: new.real_name.to_string(),
            ldap_uid: new.ldap_uid.to_string(),
            virtual_clusters: new.virtual_clusters.to_vec(),
            groups: new.groups.to_vec(),
            extension: new.extension,
            credential: new.credential,
            admin_release: None,
            tokens_revoked_at: None,
            created_at: at,
            updated_at: at,
            last_seq: seq,
        }
    }

    /// A row as [`READ_ROWS`] reads it.
    fn read(row: &tokio_postgres::Row) -> Self {
        let user = user_row(row);
        Self {
            number: user.number,
            username: user.username,
            admin: user.admin,
            status: user.status.as_str().to_string(),
            email: user.email,
            phone: user.phone,
            real_name: user.real_name,
            ldap_uid: user.ldap_uid,
            virtual_clusters: user.virtual_clusters,
            groups: user.groups,
            extension: Value::Object(user.extension),
            credential: user.credential,
            admin_release: user.admin_release,
            tokens_revoked_at: user.tokens_revoked_at,
            created_at: user.created_at,
            updated_at: row.get(16),
            last_seq: row.get(17),
        }
    }

    /// What an event other than a creation or a deletion does to the row.
    fn change(&mut self, event: &UserEvent, at: DateTime<Utc>) {
        match event {
            UserEvent::UserAudited(a) => {
                self.status = a.status.as_str().to_string();
                self.admin_release = a.release.or(self.admin_release);
            }
            UserEvent::UserAdminChanged(a) => {
                self.admin = a.admin;
                self.admin_release = a.release.or(self.admin_release);
            }
            UserEvent::PasswordChanged(p) => self.new_password(p.credential, at),
            UserEvent::PasswordReset(p) => self.new_password(p.credential, at),
            UserEvent::UserEmailChanged(e) => self.email = e.email.clone(),
            UserEvent::UserDetailsChanged(d) => {
                if let Some(phone) = &d.phone {
                    self.phone = phone.clone();
                }
                if let Some(real_name) = &d.real_name {
                    self.real_name = real_name.clone();
                }
                if let Some(ldap_uid) = &d.ldap_uid {
                    self.ldap_uid = ldap_uid.clone();
                }
            }
            UserEvent::UserVirtualClustersSet(v) => {
                self.virtual_clusters = v.virtual_clusters.clone()
            }
            UserEvent::UserGroupsSet(g) => self.groups = g.groups.clone(),
            UserEvent::UserExtensionUpdated(e) => {
                self.extension = Value::Object(e.extension.clone())
            }
            UserEvent::TokensRevoked(_) => self.tokens_revoked_at = Some(at),
            UserEvent::UserForgotten(_) => {
                for personal in [
                    &mut self.email,
                    &mut self.phone,
                    &mut self.real_name,
                    &mut self.ldap_uid,
                ] {
                    personal.clear();
                }
            }
            UserEvent::UserCreated(_)
            | UserEvent::UserRegistered(_)
            | UserEvent::UserDeleted(_) => {}
        }
    }

    /// A new password also ends every token issued before it.
    fn new_password(&mut self, credential: Uuid, at: DateTime<Utc>) {
        self.credential = Some(credential);
        self.tokens_revoked_at = Some(at);
    }
}

/// Rows for [`WRITE_ROWS`], column by column.
#[derive(Default)]
struct Columns {
    user_id: Vec<String>,
    number: Vec<i64>,
    username: Vec<String>,
    admin: Vec<bool>,
    status: Vec<String>,
    email: Vec<String>,
    phone: Vec<String>,
    real_name: Vec<String>,
    ldap_uid: Vec<String>,
    virtual_clusters: Vec<Value>,
    groups: Vec<Value>,
    extension: Vec<Value>,
    credential: Vec<Option<Uuid>>,
    admin_release: Vec<Option<Uuid>>,
    tokens_revoked_at: Vec<Option<DateTime<Utc>>>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    last_seq: Vec<i64>,
}

impl Columns {
    fn push(&mut self, id: &str, row: &Row) {
        self.user_id.push(id.to_string());
        self.number.push(row.number);
        self.username.push(row.username.clone());
        self.admin.push(row.admin);
        self.status.push(row.status.clone());
        self.email.push(row.email.clone());
        self.phone.push(row.phone.clone());
        self.real_name.push(row.real_name.clone());
        self.ldap_uid.push(row.ldap_uid.clone());
        self.virtual_clusters
            .push(Value::from(row.virtual_clusters.clone()));
        self.groups.push(Value::from(row.groups.clone()));
        self.extension.push(row.extension.clone());
        self.credential.push(row.credential);
        self.admin_release.push(row.admin_release);
        self.tokens_revoked_at.push(row.tokens_revoked_at);
        self.created_at.push(row.created_at);
        self.updated_at.push(row.updated_at);
        self.last_seq.push(row.last_seq);
    }

    fn params(self) -> Vec<Param<'static>> {
        params![
            self.user_id,
            self.number,
            self.username,
            self.admin,
            self.status,
            self.email,
            self.phone,
            self.real_name,
            self.ldap_uid,
            self.virtual_clusters,
            self.groups,
            self.extension,
            self.credential,
            self.admin_release,
            self.tokens_revoked_at,
            self.created_at,
            self.updated_at,
            self.last_seq,
        ]
    }
}

/// Access rows for [`WRITE_ACCESS`], column by column.
#[derive(Default)]
struct AccessColumns {
    user_id: Vec<String>,
    username: Vec<String>,
    number: Vec<i64>,
    admin: Vec<bool>,
    status: Vec<String>,
    tokens_revoked_at: Vec<Option<DateTime<Utc>>>,
    deleted: Vec<bool>,
    last_seq: Vec<i64>,
}

impl AccessColumns {
    fn push(&mut self, id: &str, row: &Row, deleted: bool, last_seq: i64) {
        self.user_id.push(id.to_string());
        self.username.push(row.username.clone());
        self.number.push(row.number);
        self.admin.push(row.admin);
        self.status.push(row.status.clone());
        self.tokens_revoked_at.push(row.tokens_revoked_at);
        self.deleted.push(deleted);
        self.last_seq.push(last_seq);
    }

    fn params(self) -> Vec<Param<'static>> {
        params![
            self.user_id,
            self.username,
            self.number,
            self.admin,
            self.status,
            self.tokens_revoked_at,
            self.deleted,
            self.last_seq,
        ]
    }
}

/// The columns of a new row from a registration or a creation.
struct NewRow<'a> {
    username: &'a str,
    admin: bool,
    status: UserStatus,
    email: &'a str,
    phone: &'a str,
    real_name: &'a str,
    ldap_uid: &'a str,
    virtual_clusters: &'a [String],
    groups: &'a [String],
    extension: Value,
    credential: Option<Uuid>,
}

impl<'a> From<&'a UserCreated> for NewRow<'a> {
    fn from(c: &'a UserCreated) -> Self {
        Self {
            username: &c.username,
            admin: c.admin,
            status: UserStatus::Approved,
            email: &c.email,
            phone: &c.phone,
            real_name: &c.real_name,
            ldap_uid: &c.ldap_uid,
            virtual_clusters: &c.virtual_clusters,
            groups: &c.groups,
            extension: Value::Object(c.extension.clone()),
            credential: c.credential,
        }
    }
}

impl<'a> From<&'a UserRegistered> for NewRow<'a> {
    fn from(r: &'a UserRegistered) -> Self {
        Self {
            username: &r.username,
            admin: false,
            status: UserStatus::Pending,
            email: &r.email,
            phone: &r.phone,
            real_name: &r.real_name,
            ldap_uid: &r.ldap_uid,
            virtual_clusters: &[],
            groups: &[],
            extension: Value::Object(r.extension.clone()),
            credential: r.credential,
        }
    }
}

/// A version 1 `UserCreated` still holds the hash in the log: it moves into the credential
/// store under the id its upcast names, in this same transaction, the first time the
/// directory meets it. It is read from the envelope's raw data, since the upcast event no
/// longer has it.
async fn adopt_legacy_hash(
    pipeline: &mut Pipeline<'_>,
    applied: &Applied,
) -> Result<(), tokio_postgres::Error> {
    let envelope = &applied.envelope;
    if envelope.version != 1 {
        return Ok(());
    }
    let (Some(Value::String(username)), Some(Value::String(hash))) = (
        envelope.data.get("username"),
        envelope.data.get("password_hash"),
    ) else {
        return Ok(());
    };
    let credential = legacy_credential(username, hash);
    // Rare: what the batch holds so far is sent first, then the hash on its own.
    pipeline.flush().await?;
    credentials::adopt_legacy(pipeline.tx(), credential, &envelope.aggregate_id, hash).await
}

/// The columns of a whole user row, in the order [`user_row`] reads them.
macro_rules! user_columns {
    () => {
        "user_id, number, username, admin, status, email, phone, real_name, ldap_uid, \
         virtual_clusters, groups, extension, credential, admin_release, tokens_revoked_at, \
         created_at"
    };
}

/// The columns of a whole user row, for queries that read rows with [`user_row`]:
/// `format!("SELECT {USER_COLUMNS} FROM users ...")`.
pub const USER_COLUMNS: &str = user_columns!();

/// The rows a batch changes but did not create: [`USER_COLUMNS`], then the two a batch
/// carries on.
const READ_ROWS: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", updated_at, last_seq FROM users WHERE user_id = ANY($1::text[])"
);

/// A user row as a query of [`USER_COLUMNS`] reads it.
pub fn user_row(row: &tokio_postgres::Row) -> UserRow {
    UserRow {
        user_id: row.get(0),
        number: row.get(1),
        username: row.get(2),
        admin: row.get(3),
        status: UserStatus::parse(row.get(4)).unwrap_or(UserStatus::Disabled),
        email: row.get(5),
        phone: row.get(6),
        real_name: row.get(7),
        ldap_uid: row.get(8),
        virtual_clusters: row.get(9),
        groups: row.get(10),
        extension: match row.get::<_, Value>(11) {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        },
        credential: row.get(12),
        admin_release: row.get(13),
        tokens_revoked_at: row.get(14),
        created_at: row.get(15),
    }
}

/// One user by name, read on a shared connection ([`crate::Readers`]): the user reads of
/// every door are point reads.
pub async fn user_by_name(db: &Database, username: &str) -> Result<Option<UserRow>, DbError> {
    let client = db.readers.client().await?;
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = $1"
        ))
        .await?;
    Ok(client
        .query_opt(&statement, &[&username])
        .await?
        .as_ref()
        .map(user_row))
}

/// The effective admins (admin and approved), for the admins roster.
pub async fn effective_admins(pool: &Pool) -> Result<Vec<AdminRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "SELECT username, admin_release FROM users
             WHERE admin AND status = 'approved' ORDER BY username",
        )
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| AdminRow {
            username: row.get(0),
            admin_release: row.get(1),
        })
        .collect())
}

// Queries of the OpenPAI door's user reads.

/// Every user, by username.
pub async fn all(pool: &Pool) -> Result<Vec<UserRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY username"
        ))
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(user_row)
        .collect())
}

// The edge door's queries: users by their number, and a page of them in number order.

/// A user row with the time of its last change, as a list of users shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedUser {
    pub user: UserRow,
    pub updated_at: DateTime<Utc>,
}

/// The user whose number is `number`, if they exist.
pub async fn by_number(pool: &Pool, number: i64) -> Result<Option<UserRow>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE number = $1"
        ))
        .await?;
    Ok(client
        .query_opt(&statement, &[&number])
        .await?
        .as_ref()
        .map(user_row))
}

/// The users from the `offset`-th on in number order, at most `limit` of them (`None`: all),
/// and how many users there are.
pub async fn page(
    pool: &Pool,
    offset: i64,
    limit: Option<i64>,
) -> Result<(Vec<ListedUser>, i64), DbError> {
    let client = pool.get().await?;
    let rows = client
        .prepare_cached(concat!(
            "SELECT ",
            user_columns!(),
            ", updated_at FROM users ORDER BY number OFFSET $1 LIMIT $2"
        ))
        .await?;
    let count = client.prepare_cached("SELECT count(*) FROM users").await?;
    let users = client
        .query(&rows, &[&offset, &limit])
        .await?
        .iter()
        .map(|row| ListedUser {
            user: user_row(row),
            updated_at: row.get(16),
        })
        .collect();
    let total: i64 = client.query_one(&count, &[]).await?.get(0);
    Ok((users, total))
}
