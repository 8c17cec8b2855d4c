//! The `User` aggregate: who may log in, with which role, and how that changes.
//!
//! Its id is [`events::user::user_id`] of the username, so a second user of the same name
//! meets an existing aggregate and is refused.
//!
//! The rules, the same at every door (each door says a refusal in its own words):
//! - A name is taken while its user exists (registered or created, and not deleted); a
//!   deleted user's name may be taken again.
//! - An admin cannot be deleted ([`DomainError::AdminNotDeletable`]): demote them first.
//! - Only an approved user logs in ([`may_log_in`]); a pending or disabled one cannot, at any
//!   door.
//! - A user changes only their own password, and revokes only their own tokens, unless the
//!   caller is an admin ([`DomainError::Forbidden`]).
//! - The last admin cannot be demoted or disabled. That needs every user's role, which one
//!   user's aggregate does not hold: a change that takes an *effective* admin (admin and
//!   approved) out of the admins is refused here with [`DomainError::ReleaseRequired`] unless
//!   it carries a release of the [`crate::admins`] roster, which counts the admins and is
//!   where the rule is decided (its module docs say why there).
//!
//! Personal data (email, phone, real name, LDAP uid) is decided on in plaintext; the event
//! store seals it in the log (`events::personal`). [`UserCommand::Forget`] erases it:
//! `UserForgotten`, for an existing user only ([`DomainError::NotFound`] otherwise), and
//! nothing at all when the log holds nothing personal of the user that an earlier forget did
//! not already cover ([`Profile::personal_data`]).
//!
//! Passwords: a command that sets one carries the id of its credential, the argon2id hash
//! already stored in the credential store by the caller (hashing is slow on purpose and runs
//! before the command is decided). The event says only that a password was set, under which
//! credential; the actor is the event's `meta.actor`. The credential id is left out of the
//! command's digest, so a repeated request (which hashes again) is still the same request.

use events::user::{
    PasswordChanged, PasswordReset, TokensRevoked, UserAdminChanged, UserAudited, UserCreated,
    UserDeleted, UserDetailsChanged, UserEmailChanged, UserEvent, UserExtensionUpdated,
    UserForgotten, UserGroupsSet, UserRegistered, UserStatus, UserVirtualClustersSet,
};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    Aggregate, DomainError,
    values::{Comment, Email, GroupName, LdapUid, Phone, RealName, Username, VirtualCluster},
};

/// A user as the log leaves it.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct User {
    /// `None` before the user is registered or created, and after they are deleted.
    pub profile: Option<Profile>,
    /// Credentials the log has retired (replaced by a new password, or of a deleted user):
    /// their hashes may be forgotten, no login will ever use them again.
    pub retired_credentials: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub username: String,
    pub status: UserStatus,
    pub admin: bool,
    pub email: String,
    pub phone: String,
    pub real_name: String,
    pub ldap_uid: String,
    pub virtual_clusters: Vec<String>,
    pub groups: Vec<String>,
    pub extension: Map<String, Value>,
    /// The credential of the current password, if the user has one.
    pub credential: Option<Uuid>,
    /// The last roster release an event of this user carried.
    pub release: Option<Uuid>,
    /// Whether the log holds personal data of this user that no `UserForgotten` erased
    /// (maybe none of it is current: a removed email stays in the history).
    pub personal_data: bool,
}

impl Profile {
    /// An admin who can act as one: admin and approved. The roster counts these.
    pub fn effective_admin(&self) -> bool {
        self.admin && self.status == UserStatus::Approved
    }
}

impl User {
    pub fn exists(&self) -> bool {
        self.profile.is_some()
    }
}

/// Whether a user of `status` may log in: only an approved one.
pub fn may_log_in(status: UserStatus) -> Result<(), DomainError> {
    match status {
        UserStatus::Approved => Ok(()),
        other => Err(DomainError::NotApproved(other)),
    }
}

/// Who sends a command, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Caller {
    pub username: Username,
    pub admin: bool,
}

impl Caller {
    /// Whether this caller may act on `profile`'s own things (password, tokens).
    fn may_act_for(&self, profile: &Profile) -> bool {
        self.admin || self.username.as_str() == profile.username
    }

    /// Whether this caller may act on something of `owner`'s (their course, their job): only
    /// the owner, or an admin.
    pub fn may_act_as(&self, owner: &str) -> Result<(), DomainError> {
        if self.admin || self.username.as_str() == owner {
            Ok(())
        } else {
            Err(DomainError::Forbidden)
        }
    }
}

/// What a user tells about themself, at registration or creation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Details {
    #[serde(serialize_with = "undisclosed::given")]
    pub email: Option<Email>,
    #[serde(serialize_with = "undisclosed::given")]
    pub phone: Option<Phone>,
    #[serde(serialize_with = "undisclosed::given")]
    pub real_name: Option<RealName>,
    #[serde(serialize_with = "undisclosed::given")]
    pub ldap_uid: Option<LdapUid>,
    pub extension: Map<String, Value>,
}

/// A user registering themself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registration {
    pub username: Username,
    pub details: Details,
    #[serde(skip)]
    pub credential: Option<Uuid>,
}

/// A user an admin creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewUser {
    pub username: Username,
    pub admin: bool,
    pub virtual_clusters: Vec<VirtualCluster>,
    pub groups: Vec<GroupName>,
    pub details: Details,
    #[serde(skip)]
    pub credential: Option<Uuid>,
}

/// An admin's audit: the new status and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Audit {
    pub status: UserStatus,
    pub comment: Comment,
    /// The roster's release, when the audit takes an admin out (see the module docs).
    #[serde(skip)]
    pub release: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminChange {
    pub admin: bool,
    /// The roster's release, when this demotes an admin (see the module docs).
    #[serde(skip)]
    pub release: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PasswordChange {
    pub by: Caller,
    #[serde(skip)]
    pub credential: Uuid,
}

/// Personal details to change: `None` keeps a detail, `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetailsChange {
    #[serde(serialize_with = "undisclosed::changed")]
    pub phone: Option<Option<Phone>>,
    #[serde(serialize_with = "undisclosed::changed")]
    pub real_name: Option<Option<RealName>>,
    #[serde(serialize_with = "undisclosed::changed")]
    pub ldap_uid: Option<Option<LdapUid>>,
}

/// Personal values enter a command's digest (`meta.request_digest`, in the log) only as
/// "given or not", never as what they are: a digest of the value would let anyone holding
/// the log confirm a guess at data the user had forgotten. So a repeated idempotency key
/// with another email is answered as the first request rather than refused.
mod undisclosed {
    use serde::Serializer;

    pub fn given<T, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(value.is_some())
    }

    pub fn changed<T, S: Serializer>(value: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(value) => s.serialize_some(&value.is_some()),
        }
    }
}

/// An extension change: `merge` sets the given keys and keeps the others; otherwise the
/// extension becomes exactly `extension`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtensionChange {
    pub extension: Map<String, Value>,
    pub merge: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum UserCommand {
    Register(Registration),
    Create(NewUser),
    Audit(Audit),
    ChangePassword(PasswordChange),
    /// A reset after the user proved who they are (the door checked a reset code); carries
    /// the new credential.
    ResetPassword {
        #[serde(skip)]
        credential: Uuid,
    },
    ChangeEmail(#[serde(serialize_with = "undisclosed::given")] Option<Email>),
    ChangeDetails(DetailsChange),
    SetAdmin(AdminChange),
    SetVirtualClusters(Vec<VirtualCluster>),
    SetGroups(Vec<GroupName>),
    /// Adds one group, keeping the others: decided on the user's groups as the log has
    /// them, so two at once both count.
    JoinGroup(GroupName),
    /// Removes one group, keeping the others.
    LeaveGroup(GroupName),
    UpdateExtension(ExtensionChange),
    Delete,
    RevokeTokens(Caller),
    /// Erase the user's personal data (an admin's decision, checked by the door).
    Forget,
}

impl UserCommand {
    /// The same command carrying the roster's `release` (for the commands that take one).
    pub fn with_release(self, release: Uuid) -> Self {
        match self {
            UserCommand::Audit(audit) => UserCommand::Audit(Audit {
                release: Some(release),
                ..audit
            }),
            UserCommand::SetAdmin(change) => UserCommand::SetAdmin(AdminChange {
                release: Some(release),
                ..change
            }),
            other => other,
        }
    }
}

impl Aggregate for User {
    type Command = UserCommand;
    type Event = UserEvent;

    fn evolve(&mut self, event: &UserEvent) {
        if let UserEvent::UserRegistered(r) = event {
            self.profile = Some(Profile {
                username: r.username.clone(),
                status: UserStatus::Pending,
                admin: false,
                email: r.email.clone(),
                phone: r.phone.clone(),
                real_name: r.real_name.clone(),
                ldap_uid: r.ldap_uid.clone(),
                virtual_clusters: vec![],
                groups: vec![],
                extension: r.extension.clone(),
                credential: r.credential,
                release: None,
                personal_data: [&r.email, &r.phone, &r.real_name, &r.ldap_uid]
                    .iter()
                    .any(|v| !v.is_empty()),
            });
            return;
        }
        if let UserEvent::UserCreated(c) = event {
            self.profile = Some(Profile {
                username: c.username.clone(),
                status: UserStatus::Approved,
                admin: c.admin,
                email: c.email.clone(),
                phone: c.phone.clone(),
                real_name: c.real_name.clone(),
                ldap_uid: c.ldap_uid.clone(),
                virtual_clusters: c.virtual_clusters.clone(),
                groups: c.groups.clone(),
                extension: c.extension.clone(),
                credential: c.credential,
                release: None,
                personal_data: [&c.email, &c.phone, &c.real_name, &c.ldap_uid]
                    .iter()
                    .any(|v| !v.is_empty()),
            });
            return;
        }
        let Some(profile) = &mut self.profile else {
            return;
        };
        match event {
            UserEvent::UserRegistered(_) | UserEvent::UserCreated(_) => {}
            UserEvent::UserAudited(a) => {
                profile.status = a.status;
                profile.release = a.release.or(profile.release);
            }
            UserEvent::PasswordChanged(PasswordChanged { credential })
            | UserEvent::PasswordReset(PasswordReset { credential }) => {
                if let Some(old) = profile.credential.replace(*credential) {
                    self.retired_credentials.push(old);
                }
            }
            UserEvent::UserEmailChanged(e) => {
                profile.email.clone_from(&e.email);
                profile.personal_data |= !e.email.is_empty();
            }
            UserEvent::UserDetailsChanged(d) => {
                for (field, value) in [
                    (&mut profile.phone, &d.phone),
                    (&mut profile.real_name, &d.real_name),
                    (&mut profile.ldap_uid, &d.ldap_uid),
                ] {
                    if let Some(value) = value {
                        field.clone_from(value);
                        profile.personal_data |= !value.is_empty();
                    }
                }
            }
            UserEvent::UserForgotten(_) => {
                for field in [
                    &mut profile.email,
                    &mut profile.phone,
                    &mut profile.real_name,
                    &mut profile.ldap_uid,
                ] {
                    field.clear();
                }
                profile.personal_data = false;
            }
            UserEvent::UserAdminChanged(a) => {
                profile.admin = a.admin;
                profile.release = a.release.or(profile.release);
            }
            UserEvent::UserVirtualClustersSet(v) => {
                profile.virtual_clusters.clone_from(&v.virtual_clusters)
            }
            UserEvent::UserGroupsSet(g) => profile.groups.clone_from(&g.groups),
            UserEvent::UserExtensionUpdated(e) => profile.extension.clone_from(&e.extension),
            UserEvent::UserDeleted(_) => {
                if let Some(old) = profile.credential.take() {
                    self.retired_credentials.push(old);
                }
                self.profile = None;
            }
            UserEvent::TokensRevoked(_) => {}
        }
    }

    fn decide(&self, command: &UserCommand) -> Result<Option<UserEvent>, DomainError> {
        use UserCommand as C;
        let profile = match (command, &self.profile) {
            (C::Register(r), None) => return Ok(Some(registered(r))),
            (C::Create(new), None) => return Ok(Some(created(new))),
            (C::Register(_) | C::Create(_), Some(_)) => return Err(DomainError::AlreadyExists),
            (_, None) => return Err(DomainError::NotFound),
            (_, Some(profile)) => profile,
        };
        let event = match command {
            C::Register(_) | C::Create(_) => return Err(DomainError::AlreadyExists),
            C::Audit(audit) => return decide_audit(profile, audit),
            C::SetAdmin(change) => return decide_admin(profile, change),
            C::ChangePassword(change) => {
                if !change.by.may_act_for(profile) {
                    return Err(DomainError::Forbidden);
                }
                UserEvent::PasswordChanged(PasswordChanged {
                    credential: change.credential,
                })
            }
            C::ResetPassword { credential } => UserEvent::PasswordReset(PasswordReset {
                credential: *credential,
            }),
            C::ChangeEmail(email) => {
                let email = text(email);
                if email == profile.email {
                    return Ok(None);
                }
                UserEvent::UserEmailChanged(UserEmailChanged { email })
            }
            C::ChangeDetails(change) => match details_changed(profile, change) {
                Some(changed) => UserEvent::UserDetailsChanged(changed),
                None => return Ok(None),
            },
            C::SetVirtualClusters(names) => {
                let virtual_clusters = names_once(names);
                if virtual_clusters == profile.virtual_clusters {
                    return Ok(None);
                }
                UserEvent::UserVirtualClustersSet(UserVirtualClustersSet { virtual_clusters })
            }
            C::SetGroups(names) => {
                let groups = names_once(names);
                if groups == profile.groups {
                    return Ok(None);
                }
                UserEvent::UserGroupsSet(UserGroupsSet { groups })
            }
            C::JoinGroup(group) => {
                if profile.groups.iter().any(|g| g == group.as_ref()) {
                    return Ok(None);
                }
                let mut groups = profile.groups.clone();
                groups.push(group.to_string());
                UserEvent::UserGroupsSet(UserGroupsSet { groups })
            }
            C::LeaveGroup(group) => {
                if !profile.groups.iter().any(|g| g == group.as_ref()) {
                    return Ok(None);
                }
                let groups = profile
                    .groups
                    .iter()
                    .filter(|g| *g != group.as_ref())
                    .cloned()
                    .collect();
                UserEvent::UserGroupsSet(UserGroupsSet { groups })
            }
            C::UpdateExtension(change) => {
                let extension = if change.merge {
                    let mut merged = profile.extension.clone();
                    merged.extend(change.extension.clone());
                    merged
                } else {
                    change.extension.clone()
                };
                if extension == profile.extension {
                    return Ok(None);
                }
                UserEvent::UserExtensionUpdated(UserExtensionUpdated { extension })
            }
            C::Delete if profile.admin => return Err(DomainError::AdminNotDeletable),
            C::Delete => UserEvent::UserDeleted(UserDeleted {}),
            C::Forget if !profile.personal_data => return Ok(None),
            C::Forget => UserEvent::UserForgotten(UserForgotten {}),
            C::RevokeTokens(by) => {
                if !by.may_act_for(profile) {
                    return Err(DomainError::Forbidden);
                }
                UserEvent::TokensRevoked(TokensRevoked {})
            }
        };
        Ok(Some(event))
    }
}

/// An audit that takes an effective admin out needs the roster's release. A released change
/// is recorded even when the status stays, so that the release is settled (the roster
/// counts the admin again only once an event carrying its release was read).
fn decide_audit(profile: &Profile, audit: &Audit) -> Result<Option<UserEvent>, DomainError> {
    let takes_out = profile.effective_admin() && audit.status != UserStatus::Approved;
    if takes_out && audit.release.is_none() {
        return Err(DomainError::ReleaseRequired);
    }
    let unsettled = audit.release.is_some() && audit.release != profile.release;
    if audit.status == profile.status && !unsettled {
        return Ok(None);
    }
    Ok(Some(UserEvent::UserAudited(UserAudited {
        status: audit.status,
        comment: audit.comment.to_string(),
        release: audit.release,
    })))
}

/// A demotion of an effective admin needs the roster's release (as [`decide_audit`]).
fn decide_admin(profile: &Profile, change: &AdminChange) -> Result<Option<UserEvent>, DomainError> {
    let takes_out = profile.effective_admin() && !change.admin;
    if takes_out && change.release.is_none() {
        return Err(DomainError::ReleaseRequired);
    }
    let unsettled = change.release.is_some() && change.release != profile.release;
    if change.admin == profile.admin && !unsettled {
        return Ok(None);
    }
    Ok(Some(UserEvent::UserAdminChanged(UserAdminChanged {
        admin: change.admin,
        release: change.release,
    })))
}

/// The details of `change` that differ from the profile's; `None` when none does.
fn details_changed(profile: &Profile, change: &DetailsChange) -> Option<UserDetailsChanged> {
    fn differs<T: AsRef<str>>(new: &Option<Option<T>>, old: &str) -> Option<String> {
        let value = text(new.as_ref()?);
        (value != old).then_some(value)
    }
    let changed = UserDetailsChanged {
        phone: differs(&change.phone, &profile.phone),
        real_name: differs(&change.real_name, &profile.real_name),
        ldap_uid: differs(&change.ldap_uid, &profile.ldap_uid),
    };
    (changed != UserDetailsChanged::default()).then_some(changed)
}

fn text<T: AsRef<str>>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map(|v| v.as_ref().to_string())
        .unwrap_or_default()
}

/// Names in their order, each once.
fn names_once<T: AsRef<str>>(names: &[T]) -> Vec<String> {
    let mut once: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !once.iter().any(|n| n == name.as_ref()) {
            once.push(name.as_ref().to_string());
        }
    }
    once
}

fn registered(r: &Registration) -> UserEvent {
    UserEvent::UserRegistered(UserRegistered {
        username: r.username.to_string(),
        email: text(&r.details.email),
        phone: text(&r.details.phone),
        real_name: text(&r.details.real_name),
        ldap_uid: text(&r.details.ldap_uid),
        extension: r.details.extension.clone(),
        credential: r.credential,
    })
}

fn created(new: &NewUser) -> UserEvent {
    UserEvent::UserCreated(UserCreated {
        username: new.username.to_string(),
        admin: new.admin,
        email: text(&new.details.email),
        virtual_clusters: names_once(&new.virtual_clusters),
        groups: names_once(&new.groups),
        extension: new.details.extension.clone(),
        phone: text(&new.details.phone),
        real_name: text(&new.details.real_name),
        ldap_uid: text(&new.details.ldap_uid),
        credential: new.credential,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CREDENTIAL: Uuid = Uuid::from_u128(1);
    const NEW_CREDENTIAL: Uuid = Uuid::from_u128(2);
    const RELEASE: Uuid = Uuid::from_u128(9);

    fn name(n: &str) -> Username {
        Username::parse(n).unwrap()
    }

    fn caller(n: &str, admin: bool) -> Caller {
        Caller {
            username: name(n),
            admin,
        }
    }

    fn new_user(n: &str, admin: bool) -> NewUser {
        NewUser {
            username: name(n),
            admin,
            virtual_clusters: vec![VirtualCluster::parse("default").unwrap()],
            groups: vec![],
            details: Details::default(),
            credential: Some(CREDENTIAL),
        }
    }

    fn created_event(n: &str, admin: bool) -> UserEvent {
        UserEvent::UserCreated(UserCreated {
            username: n.into(),
            admin,
            email: String::new(),
            virtual_clusters: vec!["default".into()],
            groups: vec![],
            extension: Map::new(),
            phone: String::new(),
            real_name: String::new(),
            ldap_uid: String::new(),
            credential: Some(CREDENTIAL),
        })
    }

    fn registered_event(n: &str) -> UserEvent {
        UserEvent::UserRegistered(UserRegistered {
            username: n.into(),
            email: "j@x".into(),
            phone: "123".into(),
            real_name: "Jimmy".into(),
            ldap_uid: String::new(),
            extension: Map::new(),
            credential: Some(CREDENTIAL),
        })
    }

    fn audited(status: UserStatus, release: Option<Uuid>) -> UserEvent {
        UserEvent::UserAudited(UserAudited {
            status,
            comment: "because".into(),
            release,
        })
    }

    fn audit(status: UserStatus, release: Option<Uuid>) -> UserCommand {
        UserCommand::Audit(Audit {
            status,
            comment: Comment::parse("because").unwrap(),
            release,
        })
    }

    fn set_admin(admin: bool, release: Option<Uuid>) -> UserCommand {
        UserCommand::SetAdmin(AdminChange { admin, release })
    }

    fn admin_changed(admin: bool, release: Option<Uuid>) -> UserEvent {
        UserEvent::UserAdminChanged(UserAdminChanged { admin, release })
    }

    fn state(history: &[UserEvent]) -> User {
        let mut state = User::default();
        for event in history {
            state.evolve(event);
        }
        state
    }

    /// Given `history`, when `command`, then `expected`: each row of a table.
    fn check(
        history: &[UserEvent],
        command: UserCommand,
        expected: Result<Option<UserEvent>, DomainError>,
    ) {
        assert_eq!(
            state(history).decide(&command),
            expected,
            "given {history:?} when {command:?}"
        );
    }

    #[test]
    fn a_name_is_taken_while_its_user_exists() {
        let jimmy = created_event("jimmy", false);
        let deleted = UserEvent::UserDeleted(UserDeleted {});
        let register = || {
            UserCommand::Register(Registration {
                username: name("jimmy"),
                details: Details {
                    email: Some(Email::parse_address("j@x").unwrap()),
                    phone: Some(Phone::parse("123").unwrap()),
                    real_name: Some(RealName::parse("Jimmy").unwrap()),
                    ..Default::default()
                },
                credential: Some(CREDENTIAL),
            })
        };
        let table = [
            (
                vec![],
                UserCommand::Create(new_user("jimmy", false)),
                Ok(Some(jimmy.clone())),
            ),
            (vec![], register(), Ok(Some(registered_event("jimmy")))),
            (
                vec![jimmy.clone()],
                UserCommand::Create(new_user("jimmy", false)),
                Err(DomainError::AlreadyExists),
            ),
            (
                vec![registered_event("jimmy")],
                UserCommand::Create(new_user("jimmy", false)),
                Err(DomainError::AlreadyExists),
            ),
            (
                vec![jimmy.clone()],
                register(),
                Err(DomainError::AlreadyExists),
            ),
            (
                vec![jimmy.clone(), deleted.clone()],
                UserCommand::Create(new_user("jimmy", false)),
                Ok(Some(jimmy.clone())),
            ),
        ];
        for (history, command, expected) in table {
            check(&history, command, expected);
        }
    }

    #[test]
    fn nothing_but_creation_happens_to_a_user_who_does_not_exist() {
        let gone = [
            created_event("jimmy", false),
            UserEvent::UserDeleted(UserDeleted {}),
        ];
        for history in [&[][..], &gone[..]] {
            for command in [
                UserCommand::Delete,
                UserCommand::ChangeEmail(None),
                UserCommand::ResetPassword {
                    credential: NEW_CREDENTIAL,
                },
                audit(UserStatus::Approved, None),
                set_admin(true, None),
                UserCommand::RevokeTokens(caller("admin", true)),
            ] {
                check(history, command, Err(DomainError::NotFound));
            }
        }
    }

    #[test]
    fn an_admin_cannot_be_deleted() {
        let table = [
            (
                vec![created_event("boss", true)],
                Err(DomainError::AdminNotDeletable),
            ),
            // Not even a disabled one: the flag is what counts.
            (
                vec![
                    created_event("boss", true),
                    audited(UserStatus::Disabled, Some(RELEASE)),
                ],
                Err(DomainError::AdminNotDeletable),
            ),
            (
                vec![
                    created_event("boss", true),
                    admin_changed(false, Some(RELEASE)),
                ],
                Ok(Some(UserEvent::UserDeleted(UserDeleted {}))),
            ),
            (
                vec![created_event("jimmy", false)],
                Ok(Some(UserEvent::UserDeleted(UserDeleted {}))),
            ),
        ];
        for (history, expected) in table {
            check(&history, UserCommand::Delete, expected);
        }
    }

    #[test]
    fn only_an_approved_user_logs_in() {
        assert_eq!(may_log_in(UserStatus::Approved), Ok(()));
        for status in [UserStatus::Pending, UserStatus::Disabled] {
            assert_eq!(may_log_in(status), Err(DomainError::NotApproved(status)));
        }
        // And the statuses the events leave.
        let status = |history: &[UserEvent]| state(history).profile.map(|p| p.status);
        assert_eq!(status(&[registered_event("j")]), Some(UserStatus::Pending));
        assert_eq!(
            status(&[created_event("j", false)]),
            Some(UserStatus::Approved)
        );
        assert_eq!(
            status(&[
                registered_event("j"),
                audited(UserStatus::Approved, None),
                audited(UserStatus::Disabled, None)
            ]),
            Some(UserStatus::Disabled)
        );
    }

    #[test]
    fn a_user_changes_only_their_own_password_unless_admin() {
        let jimmy = [created_event("jimmy", false)];
        let changed = Ok(Some(UserEvent::PasswordChanged(PasswordChanged {
            credential: NEW_CREDENTIAL,
        })));
        let change = |by| {
            UserCommand::ChangePassword(PasswordChange {
                by,
                credential: NEW_CREDENTIAL,
            })
        };
        let table = [
            (caller("jimmy", false), changed.clone()),
            (caller("admin", true), changed.clone()),
            (caller("mallory", false), Err(DomainError::Forbidden)),
        ];
        for (by, expected) in table {
            check(&jimmy, change(by), expected);
        }
        // Tokens follow the same rule.
        check(
            &jimmy,
            UserCommand::RevokeTokens(caller("mallory", false)),
            Err(DomainError::Forbidden),
        );
        check(
            &jimmy,
            UserCommand::RevokeTokens(caller("jimmy", false)),
            Ok(Some(UserEvent::TokensRevoked(TokensRevoked {}))),
        );
        check(
            &jimmy,
            UserCommand::ResetPassword {
                credential: NEW_CREDENTIAL,
            },
            Ok(Some(UserEvent::PasswordReset(PasswordReset {
                credential: NEW_CREDENTIAL,
            }))),
        );
    }

    #[test]
    fn replaced_and_deleted_credentials_are_retired() {
        let mut user = state(&[
            created_event("jimmy", false),
            UserEvent::PasswordChanged(PasswordChanged {
                credential: NEW_CREDENTIAL,
            }),
        ]);
        assert_eq!(
            user.profile.as_ref().and_then(|p| p.credential),
            Some(NEW_CREDENTIAL)
        );
        assert_eq!(user.retired_credentials, vec![CREDENTIAL]);
        user.evolve(&UserEvent::UserDeleted(UserDeleted {}));
        assert_eq!(user.retired_credentials, vec![CREDENTIAL, NEW_CREDENTIAL]);
    }

    #[test]
    fn taking_an_effective_admin_out_needs_the_rosters_release() {
        let boss = created_event("boss", true);
        let disabled_boss = [boss.clone(), audited(UserStatus::Disabled, Some(RELEASE))];
        let table = [
            // An approved admin: demotion, disabling, or back to pending need a release.
            (
                vec![boss.clone()],
                set_admin(false, None),
                Err(DomainError::ReleaseRequired),
            ),
            (
                vec![boss.clone()],
                audit(UserStatus::Disabled, None),
                Err(DomainError::ReleaseRequired),
            ),
            (
                vec![boss.clone()],
                audit(UserStatus::Pending, None),
                Err(DomainError::ReleaseRequired),
            ),
            (
                vec![boss.clone()],
                set_admin(false, Some(RELEASE)),
                Ok(Some(admin_changed(false, Some(RELEASE)))),
            ),
            (
                vec![boss.clone()],
                audit(UserStatus::Disabled, Some(RELEASE)),
                Ok(Some(audited(UserStatus::Disabled, Some(RELEASE)))),
            ),
            // Changes that take no admin out need none.
            (
                disabled_boss.to_vec(),
                set_admin(false, None),
                Ok(Some(admin_changed(false, None))),
            ),
            (
                vec![created_event("jimmy", false)],
                audit(UserStatus::Disabled, None),
                Ok(Some(audited(UserStatus::Disabled, None))),
            ),
            (
                vec![created_event("jimmy", false)],
                set_admin(true, None),
                Ok(Some(admin_changed(true, None))),
            ),
            (
                vec![boss.clone()],
                audit(UserStatus::Approved, None),
                Ok(None),
            ),
            // A released change is recorded even when it changes nothing else, once.
            (
                vec![boss.clone(), admin_changed(false, None)],
                set_admin(false, Some(RELEASE)),
                Ok(Some(admin_changed(false, Some(RELEASE)))),
            ),
            (
                vec![boss.clone(), admin_changed(false, Some(RELEASE))],
                set_admin(false, Some(RELEASE)),
                Ok(None),
            ),
        ];
        for (history, command, expected) in table {
            check(&history, command, expected);
        }
    }

    #[test]
    fn a_commands_digest_never_holds_personal_data() {
        let new = NewUser {
            details: Details {
                email: Some(Email::parse_address("jimmy@example.org").unwrap()),
                real_name: Some(RealName::parse("Jimmy Lin").unwrap()),
                ..Details::default()
            },
            ..new_user("jimmy", false)
        };
        let commands = [
            UserCommand::Create(new),
            UserCommand::ChangeEmail(Some(Email::parse_address("jimmy@example.org").unwrap())),
            UserCommand::ChangeDetails(DetailsChange {
                real_name: Some(Some(RealName::parse("Jimmy Lin").unwrap())),
                ..Default::default()
            }),
        ];
        for command in commands {
            let text = serde_json::to_string(&command).unwrap();
            assert!(
                !text.contains("example.org") && !text.contains("Lin"),
                "{text}"
            );
        }
    }

    #[test]
    fn changes_that_change_nothing_record_nothing() {
        let jimmy = created_event("jimmy", false);
        let vc = |n: &str| VirtualCluster::parse(n).unwrap();
        let table = [
            (UserCommand::ChangeEmail(None), Ok(None)),
            (
                UserCommand::ChangeEmail(Some(Email::parse_address("j@x").unwrap())),
                Ok(Some(UserEvent::UserEmailChanged(UserEmailChanged {
                    email: "j@x".into(),
                }))),
            ),
            (
                UserCommand::SetVirtualClusters(vec![vc("default"), vc("default")]),
                Ok(None),
            ),
            (
                UserCommand::SetVirtualClusters(vec![vc("vc1"), vc("default"), vc("vc1")]),
                Ok(Some(UserEvent::UserVirtualClustersSet(
                    UserVirtualClustersSet {
                        virtual_clusters: vec!["vc1".into(), "default".into()],
                    },
                ))),
            ),
            (UserCommand::SetGroups(vec![]), Ok(None)),
            (
                UserCommand::SetGroups(vec![GroupName::parse("g1").unwrap()]),
                Ok(Some(UserEvent::UserGroupsSet(UserGroupsSet {
                    groups: vec!["g1".into()],
                }))),
            ),
            (audit(UserStatus::Approved, None), Ok(None)),
            (set_admin(false, None), Ok(None)),
            (
                UserCommand::LeaveGroup(GroupName::parse("g1").unwrap()),
                Ok(None),
            ),
            (
                UserCommand::JoinGroup(GroupName::parse("g1").unwrap()),
                Ok(Some(UserEvent::UserGroupsSet(UserGroupsSet {
                    groups: vec!["g1".into()],
                }))),
            ),
            (
                UserCommand::ChangeDetails(DetailsChange {
                    phone: Some(None),
                    ..Default::default()
                }),
                Ok(None),
            ),
            (
                UserCommand::ChangeDetails(DetailsChange {
                    phone: Some(None),
                    real_name: Some(Some(RealName::parse("Jimmy Lin").unwrap())),
                    ldap_uid: None,
                }),
                Ok(Some(UserEvent::UserDetailsChanged(UserDetailsChanged {
                    phone: None,
                    real_name: Some("Jimmy Lin".into()),
                    ldap_uid: None,
                }))),
            ),
        ];
        for (command, expected) in table {
            check(std::slice::from_ref(&jimmy), command, expected);
        }
    }

    #[test]
    fn forgetting_erases_personal_data_once() {
        let forgotten = || UserEvent::UserForgotten(UserForgotten {});
        let email = |e: &str| UserEvent::UserEmailChanged(UserEmailChanged { email: e.into() });
        let details = UserEvent::UserDetailsChanged(UserDetailsChanged {
            ldap_uid: Some("jim".into()),
            ..Default::default()
        });
        let jimmy = registered_event("jimmy");
        let table = [
            (vec![], Err(DomainError::NotFound)),
            (vec![jimmy.clone()], Ok(Some(forgotten()))),
            (vec![jimmy.clone(), forgotten()], Ok(None)),
            // Nothing personal ever written: nothing to forget.
            (vec![created_event("jimmy", false)], Ok(None)),
            // A removed email is still in the history.
            (
                vec![created_event("jimmy", false), email("j@x"), email("")],
                Ok(Some(forgotten())),
            ),
            // New data after a forget is forgotten again.
            (
                vec![jimmy.clone(), forgotten(), details],
                Ok(Some(forgotten())),
            ),
            (
                vec![jimmy.clone(), UserEvent::UserDeleted(UserDeleted {})],
                Err(DomainError::NotFound),
            ),
        ];
        for (history, expected) in table {
            check(&history, UserCommand::Forget, expected);
        }
        let profile = state(&[jimmy, forgotten()]).profile.unwrap();
        assert_eq!(
            [
                profile.email,
                profile.phone,
                profile.real_name,
                profile.ldap_uid
            ],
            [String::new(), String::new(), String::new(), String::new()]
        );
        assert_eq!(profile.username, "jimmy", "the account stays");
    }

    #[test]
    fn an_extension_is_replaced_or_merged_and_recorded_whole() {
        let map = |v: Value| v.as_object().unwrap().clone();
        let history = [
            created_event("jimmy", false),
            UserEvent::UserExtensionUpdated(UserExtensionUpdated {
                extension: map(json!({"a": 1, "b": 2})),
            }),
        ];
        let update = |v: Value, merge| {
            UserCommand::UpdateExtension(ExtensionChange {
                extension: map(v),
                merge,
            })
        };
        let recorded = |v: Value| {
            Ok(Some(UserEvent::UserExtensionUpdated(
                UserExtensionUpdated { extension: map(v) },
            )))
        };
        check(
            &history,
            update(json!({"b": 3}), true),
            recorded(json!({"a": 1, "b": 3})),
        );
        check(
            &history,
            update(json!({"b": 3}), false),
            recorded(json!({"b": 3})),
        );
        check(&history, update(json!({"a": 1}), true), Ok(None));
    }

    #[test]
    fn the_digest_of_a_command_leaves_out_credentials_and_releases() {
        let a = serde_json::to_value(UserCommand::Create(new_user("jimmy", false))).unwrap();
        let b = serde_json::to_value(UserCommand::Create(NewUser {
            credential: Some(NEW_CREDENTIAL),
            ..new_user("jimmy", false)
        }))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_value(set_admin(false, None)).unwrap(),
            serde_json::to_value(set_admin(false, Some(RELEASE))).unwrap()
        );
        assert_eq!(
            serde_json::to_value(UserCommand::ResetPassword {
                credential: CREDENTIAL
            })
            .unwrap(),
            serde_json::to_value(UserCommand::ResetPassword {
                credential: NEW_CREDENTIAL
            })
            .unwrap()
        );
    }
}
