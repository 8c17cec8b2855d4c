//! The `Group` aggregate: a group of users, with OpenPAI's attributes. Its id is
//! [`events::group::group_id`] of the name, so a second group of the same name meets an
//! existing aggregate and is refused. A deleted group's name may be taken again.
//!
//! An extension changes whole ([`GroupChanges::extension`]), by its top-level keys
//! ([`GroupCommand::MergeExtension`]) or by one nested attribute
//! ([`GroupCommand::SetExtensionAttribute`]); the last two are decided on the group's current
//! extension, so two concurrent changes of different keys both stay. Whichever way, the
//! extension that results must still be a [`GroupExtension`] (its `acls` typed), and the
//! event carries it whole.

use events::group::{GroupCreated, GroupDeleted, GroupEvent, GroupUpdated};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    Aggregate, DomainError,
    values::{
        ExternalName, GroupDescription, GroupExtension, GroupName, InvalidValue, Problem,
        check_text,
    },
};

/// How deep an extension attribute may be named (`acls/virtualClusters` is 2).
pub const MAX_ATTRIBUTE_DEPTH: usize = 16;
/// The longest name of one step of an attribute's path.
const MAX_ATTRIBUTE_KEY: usize = 256;

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
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

/// One attribute of an extension, named by its path from the top (`["acls", "admin"]`),
/// and its new value. The objects on the way are made when missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtensionAttribute {
    path: Vec<String>,
    value: Value,
}

impl ExtensionAttribute {
    /// A path of 1 to [`MAX_ATTRIBUTE_DEPTH`] non-empty keys, each a text of the domain.
    pub fn parse(path: Vec<String>, value: Value) -> Result<Self, InvalidValue> {
        if path.is_empty() {
            return Err(Problem::Empty.of("path"));
        }
        if path.len() > MAX_ATTRIBUTE_DEPTH {
            return Err(Problem::TooMany {
                max: MAX_ATTRIBUTE_DEPTH,
            }
            .of("path"));
        }
        for key in &path {
            if key.is_empty() {
                return Err(Problem::Empty.of("path"));
            }
            check_text("path", key, MAX_ATTRIBUTE_KEY)?;
        }
        Ok(Self { path, value })
    }

    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// `extension` with this attribute set; an object on the way that is not one is
    /// refused rather than replaced.
    fn set_in(&self, extension: &Map<String, Value>) -> Result<Map<String, Value>, InvalidValue> {
        let mut result = extension.clone();
        let (last, way) = match self.path.split_last() {
            Some(split) => split,
            None => return Err(Problem::Empty.of("path")),
        };
        let mut here = &mut result;
        for key in way {
            let next = here
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            here = match next {
                Value::Object(map) => map,
                _ => return Err(Problem::WrongType { expected: "object" }.of("path")),
            };
        }
        here.insert(last.clone(), self.value.clone());
        Ok(result)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum GroupCommand {
    Create(NewGroup),
    Update(GroupChanges),
    /// Sets the given top-level keys of the extension and keeps the others (OpenPAI's
    /// `PUT /api/v2/group/:groupname/extension`).
    MergeExtension(Map<String, Value>),
    SetExtensionAttribute(ExtensionAttribute),
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
            (GroupCommand::MergeExtension(keys), Some(details)) => {
                let mut merged = details.extension.clone();
                merged.extend(keys.clone());
                extension_changed(details, merged)
            }
            (GroupCommand::SetExtensionAttribute(attribute), Some(details)) => {
                extension_changed(details, attribute.set_in(&details.extension)?)
            }
            (GroupCommand::Delete, Some(_)) => Ok(Some(GroupEvent::GroupDeleted(GroupDeleted {}))),
            (
                GroupCommand::Update(_)
                | GroupCommand::MergeExtension(_)
                | GroupCommand::SetExtensionAttribute(_)
                | GroupCommand::Delete,
                None,
            ) => Err(DomainError::NotFound),
        }
    }
}

/// The update to `extension`, once it is known to be a valid one; nothing if it is the
/// group's already.
fn extension_changed(
    details: &GroupCreated,
    extension: Map<String, Value>,
) -> Result<Option<GroupEvent>, DomainError> {
    let extension = GroupExtension::parse(extension)?.into_map();
    if extension == details.extension {
        return Ok(None);
    }
    Ok(Some(GroupEvent::GroupUpdated(GroupUpdated {
        extension: Some(extension),
        ..Default::default()
    })))
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

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn extension_updated(v: Value) -> Result<Option<GroupEvent>, DomainError> {
        Ok(Some(GroupEvent::GroupUpdated(GroupUpdated {
            extension: Some(map(v)),
            ..Default::default()
        })))
    }

    fn attribute(path: &[&str], value: Value) -> GroupCommand {
        GroupCommand::SetExtensionAttribute(
            ExtensionAttribute::parse(path.iter().map(|p| p.to_string()).collect(), value).unwrap(),
        )
    }

    #[test]
    fn an_extension_is_merged_by_key_or_set_by_path_and_stays_valid() {
        let table = [
            (
                GroupCommand::MergeExtension(map(json!({"team": "cv"}))),
                extension_updated(
                    json!({"acls": {"admin": false, "virtualClusters": ["vc1"]}, "team": "cv"}),
                ),
            ),
            (
                GroupCommand::MergeExtension(map(json!({"acls": {"admin": true}}))),
                extension_updated(json!({"acls": {"admin": true}})),
            ),
            (
                GroupCommand::MergeExtension(map(json!({"acls": {"admin": "yes"}}))),
                Err(DomainError::Invalid(
                    Problem::WrongType {
                        expected: "boolean",
                    }
                    .of("acls.admin"),
                )),
            ),
            (
                attribute(&["acls", "virtualClusters"], json!(["default", "vc2"])),
                extension_updated(
                    json!({"acls": {"admin": false, "virtualClusters": ["default", "vc2"]}}),
                ),
            ),
            (
                attribute(&["storage", "nfs", "path"], json!("/data")),
                extension_updated(json!({
                    "acls": {"admin": false, "virtualClusters": ["vc1"]},
                    "storage": {"nfs": {"path": "/data"}}
                })),
            ),
            (
                attribute(&["acls", "admin", "deeper"], json!(1)),
                Err(DomainError::Invalid(
                    Problem::WrongType { expected: "object" }.of("path"),
                )),
            ),
            (
                attribute(&["acls", "virtualClusters"], json!(["no-dash"])),
                Err(DomainError::Invalid(
                    Problem::Pattern {
                        pattern: "/^[A-Za-z0-9_]+$/",
                    }
                    .of("virtualCluster"),
                )),
            ),
            (attribute(&["acls", "admin"], json!(false)), Ok(None)),
        ];
        for (command, expected) in table {
            check(&[created()], command.clone(), expected);
            check(&[], command, Err(DomainError::NotFound));
        }
    }

    #[test]
    fn an_attribute_path_has_one_to_sixteen_keys() {
        let parse = |keys: Vec<&str>| {
            ExtensionAttribute::parse(keys.into_iter().map(String::from).collect(), json!(1))
                .map_err(|e| e.problem)
        };
        assert!(parse(vec!["acls", "admin"]).is_ok());
        assert_eq!(parse(vec![]).unwrap_err(), Problem::Empty);
        assert_eq!(parse(vec!["a", ""]).unwrap_err(), Problem::Empty);
        assert_eq!(
            parse(vec!["a"; 17]).unwrap_err(),
            Problem::TooMany { max: 16 }
        );
        assert_eq!(
            parse(vec!["a\u{0}"]).unwrap_err(),
            Problem::ControlCharacter
        );
    }
}
