//! The `Admins` aggregate: the roster that keeps the last admin from being demoted or
//! disabled, even by two requests at once.
//!
//! **Why an aggregate.** "At least one admin remains" is a rule over every user, but each
//! user is an aggregate of its own, and JetStream checks the expected sequence of the one
//! subject an event is appended to. A count read from the read model and carried in the
//! command (`other_admins`) would be checked by nobody: two admins demoting each other at
//! once would each count the other, each append on their own subject, and leave none. So a
//! change that takes an admin out is first a release on this one roster ([`events::admins::ROSTER`]),
//! whose sequence check puts every release in one order: of two concurrent releases, the
//! second is decided again on a roster that holds the first, and no longer counts that admin.
//!
//! **What it counts.** The roster does not copy every user's role: that would take a second
//! event for every creation, promotion and approval, with no atomic append to tie it to the
//! user's own. It counts what the caller reads from the user directory: the effective admins
//! (admin and approved), each with the last release its events carried ([`SeenAdmin`]). The
//! directory may be behind, and that is safe both ways:
//! - an admin it does not show yet (a promotion not projected) is not counted: the roster may
//!   refuse a demotion it could have allowed, never the reverse;
//! - an admin the roster released is not counted until the directory shows an event carrying
//!   that very release (after which the directory's role and status of that user are newer
//!   than the release).
//!
//! So whoever is counted is an admin in the log, and stays one until the roster releases
//! them; a release is granted only while another admin is counted
//! ([`DomainError::LastAdmin`]). The user directory's checkpoint never has to be waited for.
//!
//! **The two steps.** [`execute_guarded`] runs a user command; when the user aggregate
//! answers [`DomainError::ReleaseRequired`] (the change takes an effective admin out), it asks
//! the roster for a release and runs the command again carrying it; the user's event records
//! the release, which settles it. A process that stops between the two steps leaves an admin
//! released but still an admin: the roster then counts one admin fewer than there are
//! (stricter, never fewer admins than counted) until that user's next released change. A
//! release's id is derived from the request's idempotency key when it has one, so a repeated
//! request finds its own release and writes nothing new.

use std::collections::HashMap;

use events::admins::{AdminReleased, AdminsEvent, ROSTER};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    Aggregate, CommandError, Context, DomainError, EventStore, Outcome, Repository,
    user::{User, UserCommand},
    values::Username,
};

/// Namespace of release ids derived from idempotency keys.
const RELEASE_NAMESPACE: Uuid = Uuid::from_u128(0x7c41_9e2d_3b6a_4f08_a5d1_2e9c_8b70_64f3);

/// The roster: the last release of each user it released.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Admins {
    pub released: HashMap<String, Uuid>,
}

/// An effective admin as the user directory shows them, with the last release their events
/// carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenAdmin {
    pub username: String,
    pub release: Option<Uuid>,
}

/// Release `username` so that a change may take them out of the admins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub username: Username,
    pub release: Uuid,
    /// The effective admins of the user directory, read by the caller.
    #[serde(skip)]
    pub seen: Vec<SeenAdmin>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AdminsCommand {
    Release(Release),
}

impl Admins {
    /// Whether `admin` counts: not released, or released and the directory already shows
    /// the event that carried the release.
    fn counts(&self, admin: &SeenAdmin) -> bool {
        match self.released.get(&admin.username) {
            None => true,
            Some(release) => admin.release == Some(*release),
        }
    }
}

impl Aggregate for Admins {
    type Command = AdminsCommand;
    type Event = AdminsEvent;

    fn evolve(&mut self, event: &AdminsEvent) {
        match event {
            AdminsEvent::AdminReleased(r) => {
                self.released.insert(r.username.clone(), r.release);
            }
        }
    }

    fn decide(&self, command: &AdminsCommand) -> Result<Option<AdminsEvent>, DomainError> {
        let AdminsCommand::Release(release) = command;
        let username = release.username.as_str();
        if self.released.get(username) == Some(&release.release) {
            return Ok(None);
        }
        let another = release
            .seen
            .iter()
            .any(|admin| admin.username != username && self.counts(admin));
        if !another {
            return Err(DomainError::LastAdmin);
        }
        Ok(Some(AdminsEvent::AdminReleased(AdminReleased {
            username: username.to_string(),
            release: release.release,
        })))
    }
}

/// Executes `command` on user `user_id` (named `username`); when it would take an effective
/// admin out of the admins, has the roster release them first (see the module docs).
/// `seen` are the effective admins of the user directory.
pub async fn execute_guarded<S: EventStore>(
    users: &Repository<User, S>,
    admins: &Repository<Admins, S>,
    user_id: &str,
    username: &Username,
    command: &UserCommand,
    seen: &[SeenAdmin],
    ctx: &Context,
) -> Result<Outcome, CommandError> {
    match users.execute(user_id, command, ctx).await {
        Err(CommandError::Domain(DomainError::ReleaseRequired)) => {}
        other => return other,
    }
    let release = ctx
        .idempotency_key
        .as_deref()
        .map_or_else(Uuid::new_v4, |key| {
            Uuid::new_v5(&RELEASE_NAMESPACE, key.as_bytes())
        });
    let roster = Context {
        idempotency_key: None,
        ..ctx.clone()
    };
    let ask = AdminsCommand::Release(Release {
        username: username.clone(),
        release,
        seen: seen.to_vec(),
    });
    admins.execute(ROSTER, &ask, &roster).await?;
    users
        .execute(user_id, &command.clone().with_release(release), ctx)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: Uuid = Uuid::from_u128(1);
    const R2: Uuid = Uuid::from_u128(2);

    fn seen(username: &str, release: Option<Uuid>) -> SeenAdmin {
        SeenAdmin {
            username: username.into(),
            release,
        }
    }

    fn release(username: &str, id: Uuid, seen: Vec<SeenAdmin>) -> AdminsCommand {
        AdminsCommand::Release(Release {
            username: Username::parse(username).unwrap(),
            release: id,
            seen,
        })
    }

    fn released(username: &str, id: Uuid) -> AdminsEvent {
        AdminsEvent::AdminReleased(AdminReleased {
            username: username.into(),
            release: id,
        })
    }

    /// Given the roster's `history`, when `command`, then `expected`.
    fn check(
        history: &[AdminsEvent],
        command: AdminsCommand,
        expected: Result<Option<AdminsEvent>, DomainError>,
    ) {
        let mut roster = Admins::default();
        for event in history {
            roster.evolve(event);
        }
        assert_eq!(
            roster.decide(&command),
            expected,
            "given {history:?} when {command:?}"
        );
    }

    #[test]
    fn the_last_admin_cannot_be_released() {
        let table = [
            // Two admins: either may go.
            (
                vec![],
                release("a", R1, vec![seen("a", None), seen("b", None)]),
                Ok(Some(released("a", R1))),
            ),
            // One admin: not them.
            (
                vec![],
                release("a", R1, vec![seen("a", None)]),
                Err(DomainError::LastAdmin),
            ),
            // Nobody counted (the directory is behind): nobody goes, not even a user the
            // directory does not show as an admin yet.
            (
                vec![],
                release("a", R1, vec![]),
                Err(DomainError::LastAdmin),
            ),
            // The race: `a` was released a moment ago; the directory does not show it yet,
            // so `a` no longer counts and `b` is the last.
            (
                vec![released("a", R1)],
                release("b", R2, vec![seen("a", None), seen("b", None)]),
                Err(DomainError::LastAdmin),
            ),
            // Once the directory shows the event that carried `a`'s release and `a` still
            // an effective admin (promoted again), `a` counts again.
            (
                vec![released("a", R1)],
                release("b", R2, vec![seen("a", Some(R1)), seen("b", None)]),
                Ok(Some(released("b", R2))),
            ),
            // A repeated release is nothing new.
            (
                vec![released("a", R1)],
                release("a", R1, vec![seen("a", None)]),
                Ok(None),
            ),
            // A later release of the same user replaces the earlier one.
            (
                vec![released("a", R1), released("a", R2)],
                release("b", R2, vec![seen("a", Some(R1)), seen("b", None)]),
                Err(DomainError::LastAdmin),
            ),
        ];
        for (history, command, expected) in table {
            check(&history, command, expected);
        }
    }
}
