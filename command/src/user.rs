//! The `User` aggregate, with the minimum the first doors need: an admin creates users.
//! Its id is [`events::user::user_id`] of the username, so a second user of the same name
//! meets an existing aggregate and is refused.

use events::user::{UserCreated, UserEvent};

use crate::{Aggregate, DomainError};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct User {
    pub created: Option<UserCreated>,
}

#[derive(Debug, Clone)]
pub enum UserCommand {
    Create(UserCreated),
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
            UserCommand::Create(new) => Ok(Some(UserEvent::UserCreated(new.clone()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(name: &str) -> UserCreated {
        UserCreated {
            username: name.into(),
            password_hash: "$argon2id$...".into(),
            admin: false,
            email: String::new(),
            virtual_clusters: vec![],
            extension: Default::default(),
        }
    }

    #[test]
    fn create_records_a_new_user() {
        let state = User::default();
        assert_eq!(
            state.decide(&UserCommand::Create(new_user("jimmy"))),
            Ok(Some(UserEvent::UserCreated(new_user("jimmy"))))
        );
    }

    #[test]
    fn create_of_an_existing_name_is_refused() {
        let mut state = User::default();
        state.evolve(&UserEvent::UserCreated(new_user("jimmy")));
        assert_eq!(
            state.decide(&UserCommand::Create(new_user("jimmy"))),
            Err(DomainError::AlreadyExists)
        );
    }
}
