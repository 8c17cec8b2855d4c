//! The `Account` aggregate: an allocation of service units and the users who may see it.
//!
//! Decisions recorded here:
//! - The account does not hold its balance: charges are decided on the jobs that used the
//!   units (`crate::slurm_job`), so that many charges against one account never queue on
//!   one aggregate; the read model folds balance = allocation − Σ `SUCharged`.
//! - An account's id is a UUID the door makes; its name is unique, checked by the door
//!   against the read model (two accounts opened under one name at the same instant could
//!   both pass: the read model then shows the later one under its id only).
//! - Membership is a set of accounting user ids. A user also becomes a member when a job of
//!   theirs is recorded under the account, which the read model folds from
//!   `SlurmJobRecorded` without an event here (so charges never queue on the account). So a
//!   join records only the users this aggregate does not hold yet, while a leave records
//!   every user named: the door names those the read model shows as members.

use std::collections::BTreeSet;

use events::accounting::{
    AccountEvent, AccountOpened, AccountUpdated, AllocationChanged, UserJoinedAccount,
    UserLeftAccount,
};
use serde::Serialize;

use crate::{
    Aggregate, DomainError,
    values::{AccountDescription, AccountName, AccountType},
};

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Account {
    pub opened: Option<AccountOpened>,
    pub members: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAccount {
    pub name: AccountName,
    /// Whole SUs.
    pub allocation: i64,
    pub account_type: AccountType,
    pub description: AccountDescription,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountChanges {
    pub name: Option<AccountName>,
    pub account_type: Option<AccountType>,
    pub description: Option<AccountDescription>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AccountCommand {
    Open(NewAccount),
    Update(AccountChanges),
    ChangeAllocation(i64),
    /// `via`: `admin` or `job` (see [`UserJoinedAccount::via`]).
    Join(Vec<String>, &'static str),
    Leave(Vec<String>),
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountOpened(opened) => self.opened = Some(opened.clone()),
            AccountEvent::AccountUpdated(changes) => {
                if let Some(opened) = &mut self.opened {
                    changes.apply_to(opened);
                }
            }
            AccountEvent::AllocationChanged(changed) => {
                if let Some(opened) = &mut self.opened {
                    opened.allocation = changed.allocation;
                }
            }
            AccountEvent::UserJoinedAccount(joined) => {
                self.members.extend(joined.users.iter().cloned());
            }
            AccountEvent::UserLeftAccount(left) => {
                for user in &left.users {
                    self.members.remove(user);
                }
            }
        }
    }

    fn decide(&self, command: &AccountCommand) -> Result<Option<AccountEvent>, DomainError> {
        use AccountCommand as C;
        let Some(opened) = &self.opened else {
            return match command {
                C::Open(new) => Ok(Some(AccountEvent::AccountOpened(AccountOpened {
                    name: new.name.to_string(),
                    allocation: new.allocation,
                    account_type: new.account_type.to_string(),
                    description: new.description.to_string(),
                }))),
                _ => Err(DomainError::NotFound),
            };
        };
        Ok(match command {
            C::Open(_) => return Err(DomainError::AlreadyExists),
            C::Update(changes) => {
                let changed = AccountUpdated {
                    name: differs(&changes.name, &opened.name),
                    account_type: differs(&changes.account_type, &opened.account_type),
                    description: differs(&changes.description, &opened.description),
                };
                (changed != AccountUpdated::default())
                    .then_some(AccountEvent::AccountUpdated(changed))
            }
            C::ChangeAllocation(allocation) => (*allocation != opened.allocation).then_some(
                AccountEvent::AllocationChanged(AllocationChanged {
                    allocation: *allocation,
                }),
            ),
            C::Join(users, via) => {
                let users: Vec<String> = users
                    .iter()
                    .filter(|u| !self.members.contains(*u))
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                (!users.is_empty()).then(|| {
                    AccountEvent::UserJoinedAccount(UserJoinedAccount {
                        users,
                        via: (*via).to_string(),
                    })
                })
            }
            C::Leave(users) => {
                let users: Vec<String> = users
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                (!users.is_empty())
                    .then_some(AccountEvent::UserLeftAccount(UserLeftAccount { users }))
            }
        })
    }
}

/// The new value if there is one and it is not the old one.
pub(crate) fn differs<T: AsRef<str>>(new: &Option<T>, old: &str) -> Option<String> {
    new.as_ref()
        .map(AsRef::as_ref)
        .filter(|n| *n != old)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> AccountEvent {
        AccountEvent::AccountOpened(AccountOpened {
            name: "fc_hasan".into(),
            allocation: 1000,
            account_type: "FCA".into(),
            description: "Research of potatoes".into(),
        })
    }

    fn given(history: &[AccountEvent]) -> Account {
        let mut state = Account::default();
        for e in history {
            state.evolve(e);
        }
        state
    }

    #[test]
    fn an_account_opens_once_and_changes_only_what_differs() {
        let new = NewAccount {
            name: AccountName::parse("fc_hasan").unwrap(),
            allocation: 1000,
            account_type: AccountType::parse("FCA").unwrap(),
            description: AccountDescription::parse("Research of potatoes").unwrap(),
        };
        assert_eq!(
            given(&[]).decide(&AccountCommand::Open(new.clone())),
            Ok(Some(opened()))
        );
        assert_eq!(
            given(&[opened()]).decide(&AccountCommand::Open(new)),
            Err(DomainError::AlreadyExists)
        );
        let rename = AccountCommand::Update(AccountChanges {
            name: Some(AccountName::parse("fc_zhang").unwrap()),
            account_type: Some(AccountType::parse("FCA").unwrap()),
            description: None,
        });
        assert_eq!(
            given(&[opened()]).decide(&rename),
            Ok(Some(AccountEvent::AccountUpdated(AccountUpdated {
                name: Some("fc_zhang".into()),
                ..Default::default()
            })))
        );
        assert_eq!(
            given(&[opened()]).decide(&AccountCommand::ChangeAllocation(1000)),
            Ok(None)
        );
        assert_eq!(
            given(&[]).decide(&AccountCommand::ChangeAllocation(5)),
            Err(DomainError::NotFound)
        );
    }

    #[test]
    fn membership_records_only_changes() {
        let joined = AccountEvent::UserJoinedAccount(UserJoinedAccount {
            users: vec!["a".into()],
            via: "admin".into(),
        });
        let state = given(&[opened(), joined]);
        assert_eq!(
            state.decide(&AccountCommand::Join(
                vec!["a".into(), "b".into(), "b".into()],
                "job"
            )),
            Ok(Some(AccountEvent::UserJoinedAccount(UserJoinedAccount {
                users: vec!["b".into()],
                via: "job".into(),
            })))
        );
        assert_eq!(
            state.decide(&AccountCommand::Join(vec!["a".into()], "admin")),
            Ok(None)
        );
        assert_eq!(
            state.decide(&AccountCommand::Leave(vec![
                "c".into(),
                "a".into(),
                "c".into()
            ])),
            Ok(Some(AccountEvent::UserLeftAccount(UserLeftAccount {
                users: vec!["a".into(), "c".into()]
            })))
        );
    }
}
