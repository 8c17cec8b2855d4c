//! The `SlurmUser` aggregate: a person who charges accounts, named as in Slurm.
//!
//! Decisions recorded here:
//! - The aggregate id is derived from the username (`events::accounting::slurm_user_id`),
//!   so a username is unique by construction and the username cannot change: it is how
//!   Slurm names the person in every charge, and how the Gantry user of the same username
//!   is linked to them.
//! - The LDAP uid is kept as its decimal text, so that it can be sealed as personal data.

use events::accounting::{SlurmUserAdded, SlurmUserEvent, SlurmUserUpdated};
use serde::Serialize;

use crate::{
    Aggregate, DomainError,
    account::differs,
    values::{AccountingEmail, SlurmUsername, UserMetadata},
};

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct SlurmUser {
    pub added: Option<SlurmUserAdded>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewSlurmUser {
    pub username: SlurmUsername,
    pub metadata: UserMetadata,
    pub email: AccountingEmail,
    pub ldap_uid: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlurmUserChanges {
    pub metadata: Option<UserMetadata>,
    pub email: Option<AccountingEmail>,
    pub ldap_uid: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SlurmUserCommand {
    Add(NewSlurmUser),
    Update(SlurmUserChanges),
}

impl Aggregate for SlurmUser {
    type Command = SlurmUserCommand;
    type Event = SlurmUserEvent;

    fn evolve(&mut self, event: &SlurmUserEvent) {
        match event {
            SlurmUserEvent::SlurmUserAdded(added) => self.added = Some(added.clone()),
            SlurmUserEvent::SlurmUserUpdated(changes) => {
                if let Some(added) = &mut self.added {
                    changes.apply_to(added);
                }
            }
        }
    }

    fn decide(&self, command: &SlurmUserCommand) -> Result<Option<SlurmUserEvent>, DomainError> {
        match (command, &self.added) {
            (SlurmUserCommand::Add(new), None) => {
                Ok(Some(SlurmUserEvent::SlurmUserAdded(SlurmUserAdded {
                    username: new.username.to_string(),
                    metadata: new.metadata.to_string(),
                    email: new.email.to_string(),
                    ldap_uid: new.ldap_uid.to_string(),
                })))
            }
            (SlurmUserCommand::Add(_), Some(_)) => Err(DomainError::AlreadyExists),
            (SlurmUserCommand::Update(_), None) => Err(DomainError::NotFound),
            (SlurmUserCommand::Update(changes), Some(user)) => {
                let changed = SlurmUserUpdated {
                    metadata: differs(&changes.metadata, &user.metadata),
                    email: differs(&changes.email, &user.email),
                    ldap_uid: differs(&changes.ldap_uid.map(|u| u.to_string()), &user.ldap_uid),
                };
                Ok((changed != SlurmUserUpdated::default())
                    .then_some(SlurmUserEvent::SlurmUserUpdated(changed)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_added_once_and_updates_record_what_changed() {
        let new = NewSlurmUser {
            username: SlurmUsername::parse("shasan").unwrap(),
            metadata: UserMetadata::parse("despacito").unwrap(),
            email: AccountingEmail::parse("shasan@ocf.berkeley.edu").unwrap(),
            ldap_uid: 1_092_385,
        };
        let mut state = SlurmUser::default();
        let added = state
            .decide(&SlurmUserCommand::Add(new.clone()))
            .unwrap()
            .unwrap();
        state.evolve(&added);
        assert_eq!(
            state.decide(&SlurmUserCommand::Add(new)),
            Err(DomainError::AlreadyExists)
        );
        let changes = SlurmUserChanges {
            metadata: Some(UserMetadata::parse("despacito").unwrap()),
            ldap_uid: Some(7),
            email: None,
        };
        assert_eq!(
            state.decide(&SlurmUserCommand::Update(changes)),
            Ok(Some(SlurmUserEvent::SlurmUserUpdated(SlurmUserUpdated {
                ldap_uid: Some("7".into()),
                ..Default::default()
            })))
        );
    }
}
