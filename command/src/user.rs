//! The `User` aggregate, with the minimum the first doors need: an admin creates users.
//! Its id is [`events::user::user_id`] of the username, so a second user of the same name
//! meets an existing aggregate and is refused.

use events::user::{UserCreated, UserEvent};
use serde::Serialize;

use crate::{
    Aggregate, DomainError,
    values::{Email, Username, VirtualCluster},
};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct User {
    pub created: Option<UserCreated>,
}

/// A user to create. The password arrives hashed: hashing is slow on purpose and runs
/// before the command is decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewUser {
    pub username: Username,
    #[serde(skip)]
    pub password_hash: String,
    pub admin: bool,
    pub email: Option<Email>,
    pub virtual_clusters: Vec<VirtualCluster>,
    pub extension: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum UserCommand {
    Create(NewUser),
}

impl Aggregate for User {
    type Command = UserCommand;
    type Event = UserEvent;

    fn evolve(&mut self, event: &UserEvent) {
        match event {
            UserEvent::UserCreated(created) => self.created = Some(created.clone()),
        }
    }

    fn decide(&self, command: &UserCommand) -> Result<Option<UserEvent>, DomainError> {
        match command {
            UserCommand::Create(_) if self.created.is_some() => Err(DomainError::AlreadyExists),
            UserCommand::Create(new) => Ok(Some(UserEvent::UserCreated(UserCreated {
                username: new.username.to_string(),
                password_hash: new.password_hash.clone(),
                admin: new.admin,
                email: new
                    .email
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                virtual_clusters: new
                    .virtual_clusters
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                extension: new.extension.clone(),
            }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(name: &str) -> NewUser {
        NewUser {
            username: Username::parse(name).unwrap(),
            password_hash: "$argon2id$...".into(),
            admin: false,
            email: None,
            virtual_clusters: vec![VirtualCluster::parse("default").unwrap()],
            extension: Default::default(),
        }
    }

    fn created(name: &str) -> UserCreated {
        UserCreated {
            username: name.into(),
            password_hash: "$argon2id$...".into(),
            admin: false,
            email: String::new(),
            virtual_clusters: vec!["default".into()],
            extension: Default::default(),
        }
    }

    #[test]
    fn create_records_a_new_user() {
        let state = User::default();
        assert_eq!(
            state.decide(&UserCommand::Create(new_user("jimmy"))),
            Ok(Some(UserEvent::UserCreated(created("jimmy"))))
        );
    }

    #[test]
    fn create_of_an_existing_name_is_refused() {
        let mut state = User::default();
        state.evolve(&UserEvent::UserCreated(created("jimmy")));
        assert_eq!(
            state.decide(&UserCommand::Create(new_user("jimmy"))),
            Err(DomainError::AlreadyExists)
        );
    }
}
