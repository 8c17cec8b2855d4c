//! The `users` read model: who exists, with which role, status and attributes, and which
//! credential is their current password (never the hash: that is in
//! [`crate::credentials`]).
//!
//! Personal columns (email, phone, real name, LDAP uid) hold what the projector opened: the
//! plaintext, or an empty string where the user's key was destroyed. `UserForgotten` blanks
//! them and destroys the user's keys in the same transaction ([`crate::personal`]), so the
//! destruction is certain once the event is in the log, and every rebuild blanks them again.

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
const UPSERT: &str = "
    INSERT INTO users (user_id, number, username, admin, status, email, phone, real_name,
                       ldap_uid, virtual_clusters, groups, extension, credential, admin_release,
                       tokens_revoked_at, created_at, updated_at, last_seq)
    VALUES ($1, $14, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, $13, $13, $14)
    ON CONFLICT (user_id) DO UPDATE SET
        number = EXCLUDED.number, username = EXCLUDED.username, admin = EXCLUDED.admin, status = EXCLUDED.status,
        email = EXCLUDED.email, phone = EXCLUDED.phone, real_name = EXCLUDED.real_name,
        ldap_uid = EXCLUDED.ldap_uid, virtual_clusters = EXCLUDED.virtual_clusters,
        groups = EXCLUDED.groups, extension = EXCLUDED.extension,
        credential = EXCLUDED.credential, admin_release = NULL, tokens_revoked_at = NULL,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
        last_seq = EXCLUDED.last_seq";

/// `UPDATE users SET <assignments>, updated_at = $2, last_seq = $3 WHERE user_id = $1`:
/// the change of one event; its own values are `$4` on.
macro_rules! update_user {
    ($set:literal) => {
        concat!(
            "UPDATE users SET ",
            $set,
            ", updated_at = $2, last_seq = $3 WHERE user_id = $1"
        )
    };
}

const AUDITED: &str = update_user!("status = $4, admin_release = COALESCE($5, admin_release)");
const ADMIN_CHANGED: &str = update_user!("admin = $4, admin_release = COALESCE($5, admin_release)");
/// A new password voids every earlier token.
const PASSWORD: &str = update_user!("credential = $4, tokens_revoked_at = $2");
const EMAIL: &str = update_user!("email = $4");
const DETAILS: &str = update_user!(
    "phone = COALESCE($4, phone), real_name = COALESCE($5, real_name), \
     ldap_uid = COALESCE($6, ldap_uid)"
);
const VIRTUAL_CLUSTERS: &str = update_user!("virtual_clusters = $4");
const GROUPS: &str = update_user!("groups = $4");
const EXTENSION: &str = update_user!("extension = $4");
const TOKENS_REVOKED: &str = update_user!("tokens_revoked_at = $2");
const FORGOTTEN: &str = update_user!("email = '', phone = '', real_name = '', ldap_uid = ''");
const DELETE: &str = "DELETE FROM users WHERE user_id = $1";

/// The access rows of the users a batch touched (`$1`, each with the sequence of their
/// last event in it, `$2`), as their directory rows are at the batch's end; a user without
/// one is marked deleted, so every process drops them from memory ([`crate::access`]).
/// One statement per batch, sent after the batch's others; `= ANY($1)` makes both tables
/// read by key (a join with the `UNNEST` alone would be planned as a scan of the table).
const SYNC_ACCESS: &str = "
    WITH touched AS (
        SELECT * FROM UNNEST($1::text[], $2::int8[]) AS t(user_id, last_seq)
    ), synced AS (
        INSERT INTO user_access (user_id, username, number, admin, status, tokens_revoked_at,
                                 deleted, last_seq)
        SELECT u.user_id, u.username, u.number, u.admin, u.status, u.tokens_revoked_at, false,
               t.last_seq
        FROM users u JOIN touched t ON t.user_id = u.user_id
        WHERE u.user_id = ANY($1::text[])
        ON CONFLICT (user_id) DO UPDATE SET
            username = EXCLUDED.username, number = EXCLUDED.number, admin = EXCLUDED.admin,
            status = EXCLUDED.status, tokens_revoked_at = EXCLUDED.tokens_revoked_at,
            deleted = false, last_seq = EXCLUDED.last_seq
        RETURNING user_id)
    UPDATE user_access a SET deleted = true, last_seq = t.last_seq
    FROM touched t
    WHERE a.user_id = ANY($1::text[]) AND a.user_id = t.user_id
      AND t.user_id NOT IN (SELECT user_id FROM synced)";

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
        Box::pin(async move {
            let mut pipeline = Pipeline::new(tx);
            // Each touched user and the sequence of their last event in the batch.
            let mut touched: HashMap<&str, i64> = HashMap::new();
            for applied in events {
                if matches!(applied.event, Event::User(_)) {
                    touched.insert(&applied.envelope.aggregate_id, applied.seq as i64);
                    apply_one(&mut pipeline, applied).await?;
                }
            }
            if !touched.is_empty() {
                let (ids, seqs): (Vec<&str>, Vec<i64>) = touched.into_iter().unzip();
                pipeline.push(SYNC_ACCESS, params![ids, seqs]).await?;
            }
            pipeline.run().await
        })
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

/// Each event is a statement (two for a forget), decided by the event alone: the batch's
/// statements are sent together, in log order.
async fn apply_one(
    pipeline: &mut Pipeline<'_>,
    applied: &Applied,
) -> Result<(), tokio_postgres::Error> {
    let Event::User(event) = &applied.event else {
        return Ok(());
    };
    let id = applied.envelope.aggregate_id.clone();
    let at = applied.envelope.meta.occurred_at;
    let seq = applied.seq as i64;
    // `update_user!` statements: the row's id, the time and the sequence, then the event's own.
    let update = |values: Vec<Param<'static>>| -> Vec<Param<'static>> {
        let mut params: Vec<Param> = vec![Box::new(id.clone()), Box::new(at), Box::new(seq)];
        params.extend(values);
        params
    };
    match event {
        UserEvent::UserCreated(created) => {
            pipeline
                .push(UPSERT, insert(applied, created.into()))
                .await?;
            adopt_legacy_hash(pipeline, applied).await?;
        }
        UserEvent::UserRegistered(registered) => {
            pipeline
                .push(UPSERT, insert(applied, registered.into()))
                .await?
        }
        UserEvent::UserAudited(a) => {
            let values: Vec<Param> = vec![Box::new(a.status.as_str()), Box::new(a.release)];
            pipeline.push(AUDITED, update(values)).await?
        }
        UserEvent::PasswordChanged(p) => {
            pipeline
                .push(PASSWORD, update(vec![Box::new(p.credential)]))
                .await?
        }
        UserEvent::PasswordReset(p) => {
            pipeline
                .push(PASSWORD, update(vec![Box::new(p.credential)]))
                .await?
        }
        UserEvent::UserEmailChanged(e) => {
            pipeline
                .push(EMAIL, update(vec![Box::new(e.email.clone())]))
                .await?
        }
        UserEvent::UserDetailsChanged(d) => {
            let values: Vec<Param> = vec![
                Box::new(d.phone.clone()),
                Box::new(d.real_name.clone()),
                Box::new(d.ldap_uid.clone()),
            ];
            pipeline.push(DETAILS, update(values)).await?
        }
        UserEvent::UserAdminChanged(a) => {
            let values: Vec<Param> = vec![Box::new(a.admin), Box::new(a.release)];
            pipeline.push(ADMIN_CHANGED, update(values)).await?
        }
        UserEvent::UserVirtualClustersSet(v) => {
            let values: Vec<Param> = vec![Box::new(v.virtual_clusters.clone())];
            pipeline.push(VIRTUAL_CLUSTERS, update(values)).await?
        }
        UserEvent::UserGroupsSet(g) => {
            pipeline
                .push(GROUPS, update(vec![Box::new(g.groups.clone())]))
                .await?
        }
        UserEvent::UserExtensionUpdated(e) => {
            let extension = Value::Object(e.extension.clone());
            pipeline
                .push(EXTENSION, update(vec![Box::new(extension)]))
                .await?
        }
        UserEvent::TokensRevoked(_) => pipeline.push(TOKENS_REVOKED, update(vec![])).await?,
        UserEvent::UserForgotten(_) => {
            pipeline.push(FORGOTTEN, update(vec![])).await?;
            // The keys made up to the forget; data written after it has a fresh one.
            pipeline
                .push(personal::DESTROY, vec![Box::new(id.clone()), Box::new(at)])
                .await?;
        }
        UserEvent::UserDeleted(_) => {
            // The access row as the user was, first: a user created and deleted in one
            // batch still leaves the row marked deleted, as event by event it would.
            pipeline
                .push(SYNC_ACCESS, params![vec![id.clone()], vec![seq]])
                .await?;
            pipeline.push(DELETE, vec![Box::new(id)]).await?
        }
    }
    Ok(())
}

/// The parameters of [`UPSERT`] for a new row.
fn insert(applied: &Applied, row: NewRow<'_>) -> Vec<Param<'static>> {
    vec![
        Box::new(applied.envelope.aggregate_id.clone()),
        Box::new(row.username.to_string()),
        Box::new(row.admin),
        Box::new(row.status.as_str()),
        Box::new(row.email.to_string()),
        Box::new(row.phone.to_string()),
        Box::new(row.real_name.to_string()),
        Box::new(row.ldap_uid.to_string()),
        Box::new(row.virtual_clusters.to_vec()),
        Box::new(row.groups.to_vec()),
        Box::new(row.extension),
        Box::new(row.credential),
        Box::new(applied.envelope.meta.occurred_at),
        Box::new(applied.seq as i64),
    ]
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
