//! Writing a password, the same way at every door: its hash into the credential store, its
//! event (naming the credential, never the hash) into the log.
//!
//! The order keeps a write all-or-nothing (`projection::credentials` says why): store the
//! hash under a fresh credential id, execute the command that names it, then tidy up. A
//! command that appended nothing (refused, or answered from an earlier request) forgets its
//! hash; one that appended forgets the hashes its user's log has retired since, once the
//! read models hold the event (a login never reads a credential the directory no longer
//! names). Tidying up is best effort: a hash left behind is never used to log in.

use command::{CommandError, Outcome, user::UserCommand};
use projection::credentials;
use tracing::warn;
use uuid::Uuid;

use crate::{App, WriteError};

/// Why a password write failed: the command path, or the credential store.
pub type PasswordWriteError = WriteError;

impl App {
    /// Stores `password_hash` for user `id`, then executes the command `build` makes with
    /// the new credential's id (see the module docs).
    pub async fn write_password(
        &self,
        id: &str,
        password_hash: &str,
        build: impl FnOnce(Uuid) -> UserCommand,
        ctx: &command::Context,
    ) -> Result<Outcome, PasswordWriteError> {
        let credential = credentials::store(&self.db.pool, id, password_hash).await?;
        let result = self.write(&self.users, id, &build(credential), ctx).await;
        let unused = match &result {
            Ok(outcome) => !outcome.appended,
            // The append may have happened; the hash stays, unused if it did not.
            Err(CommandError::Store(_)) => false,
            Err(_) => true,
        };
        if unused {
            self.forget(id, &[credential]).await;
        } else if result.is_ok() {
            match self.users.load(id).await {
                Ok(user) => self.forget(id, &user.retired_credentials).await,
                Err(e) => warn!(error = %e, "retired credentials not forgotten"),
            }
        }
        Ok(result?)
    }

    async fn forget(&self, id: &str, unused: &[Uuid]) {
        if let Err(e) = credentials::forget(&self.db.pool, id, unused).await {
            warn!(error = %e, "unused credentials not forgotten");
        }
    }
}
