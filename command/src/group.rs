//! The `Group` aggregate: a group of users, with OpenPAI's attributes. Its id is
//! [`events::group::group_id`] of the name, so a second group of the same name meets an
//! existing aggregate and is refused. A deleted group's name may be taken again.

use events::group::{GroupCreated, GroupDeleted, GroupEvent, GroupUpdated};
use serde::Serialize;

use crate::{
    Aggregate, DomainError,
    values::{ExternalName, GroupDescription, GroupExtension, GroupName},
};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Group {
    /// `None` before the group is created and after it is deleted.
    pub details: Option<GroupCreated>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewGroup {
    pub name: GroupName,
    pub description: GroupDescription,
    pub external_name: Option<ExternalName>,
    pub extension: GroupExtension,
}

/// Changes to a group: the fields that are `Some` take the new value.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupChanges {
    pub description: Option<GroupDescription>,
    /// `Some(None)` removes the external name.
    pub external_name: Option<Option<ExternalName>>,
    pub extension: Option<GroupExtension>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum GroupCommand {
    Create(NewGroup),
    Update(GroupChanges),
    Delete,
}

impl Aggregate for Group {
    type Command = GroupCommand;
    type Event = GroupEvent;

    fn evolve(&mut self, event: &GroupEvent) {
        match event {
            GroupEvent::GroupCreated(created) => self.details = Some(created.clone()),
            GroupEvent::GroupUpdated(changes) => {
                if let Some(details) = &mut self.details {
                    changes.apply_to(details);
                }
            }
            GroupEvent::GroupDeleted(_) => self.details = None,
        }
    }

    fn decide(&self, command: &GroupCommand) -> Result<Option<GroupEvent>, DomainError> {
        match (command, &self.details) {
            (GroupCommand::Create(new), None) => Ok(Some(GroupEvent::GroupCreated(GroupCreated {
                name: new.name.to_string(),
                description: new.description.to_string(),
                external_name: new
                    .external_name
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                extension: new.extension.as_map().clone(),
            }))),
            (GroupCommand::Create(_), Some(_)) => Err(DomainError::AlreadyExists),
            (GroupCommand::Update(changes), Some(details)) => {
                let changed = only_changed(details, changes);
                Ok((changed != GroupUpdated::default())
                    .then_some(GroupEvent::GroupUpdated(changed)))
            }
            (GroupCommand::Delete, Some(_)) => Ok(Some(GroupEvent::GroupDeleted(GroupDeleted {}))),
            (GroupCommand::Update(_) | GroupCommand::Delete, None) => Err(DomainError::NotFound),
        }
    }
}

/// The part of `changes` that differs from `details`.
fn only_changed(details: &GroupCreated, changes: &GroupChanges) -> GroupUpdated {
    let external_name = changes
        .external_name
        .as_ref()
        .map(|name| name.as_ref().map(ToString::to_string).unwrap_or_default());
    GroupUpdated {
        description: changes
            .description
            .as_ref()
            .map(ToString::to_string)
            .filter(|d| *d != details.description),
        external_name: external_name.filter(|e| *e != details.external_name),
        extension: changes
            .extension
            .as_ref()
            .map(|e| e.as_map().clone())
            .filter(|e| *e != details.extension),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn extension(v: Value) -> GroupExtension {
        GroupExtension::parse(v.as_object().unwrap().clone()).unwrap()
    }

    fn new_group() -> NewGroup {
        NewGroup {
            name: GroupName::parse("vision").unwrap(),
            description: GroupDescription::parse("the vision lab").unwrap(),
            external_name: None,
            extension: extension(json!({"acls": {"admin": false, "virtualClusters": ["vc1"]}})),
        }
    }

    fn created() -> GroupEvent {
        GroupEvent::GroupCreated(GroupCreated {
            name: "vision".into(),
            description: "the vision lab".into(),
            external_name: String::new(),
            extension: json!({"acls": {"admin": false, "virtualClusters": ["vc1"]}})
                .as_object()
                .unwrap()
                .clone(),
        })
    }

    fn check(
        history: &[GroupEvent],
        command: GroupCommand,
        expected: Result<Option<GroupEvent>, DomainError>,
    ) {
        let mut state = Group::default();
        for event in history {
            state.evolve(event);
        }
        assert_eq!(state.decide(&command), expected, "given {history:?}");
    }

    #[test]
    fn a_group_lives_from_creation_to_deletion() {
        let deleted = GroupEvent::GroupDeleted(GroupDeleted {});
        let admin_acl = extension(json!({"acls": {"admin": true}}));
        let table = [
            (
                vec![],
                GroupCommand::Create(new_group()),
                Ok(Some(created())),
            ),
            (
                vec![created()],
                GroupCommand::Create(new_group()),
                Err(DomainError::AlreadyExists),
            ),
            (
                vec![created(), deleted.clone()],
                GroupCommand::Create(new_group()),
                Ok(Some(created())),
            ),
            (
                vec![created()],
                GroupCommand::Update(GroupChanges {
                    description: Some(GroupDescription::parse("the vision lab").unwrap()),
                    external_name: Some(Some(ExternalName::parse("CN=vision").unwrap())),
                    extension: Some(admin_acl.clone()),
                }),
                Ok(Some(GroupEvent::GroupUpdated(GroupUpdated {
                    description: None,
                    external_name: Some("CN=vision".into()),
                    extension: Some(admin_acl.as_map().clone()),
                }))),
            ),
            (
                vec![created()],
                GroupCommand::Update(GroupChanges {
                    external_name: Some(None),
                    ..Default::default()
                }),
                Ok(None),
            ),
            (
                vec![created()],
                GroupCommand::Delete,
                Ok(Some(deleted.clone())),
            ),
            (vec![], GroupCommand::Delete, Err(DomainError::NotFound)),
            (
                vec![created(), deleted.clone()],
                GroupCommand::Update(GroupChanges::default()),
                Err(DomainError::NotFound),
            ),
        ];
        for (history, command, expected) in table {
            check(&history, command, expected);
        }
    }
}
