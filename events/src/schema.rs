//! JSON Schemas of every event type and version, generated from the Rust types.
//!
//! The files in `schemas/` are checked against these by a test, so a type that changes
//! without its schema being regenerated fails the build's tests. Regenerate with
//! `GANTRY_WRITE_SCHEMAS=1 cargo test -p events schemas`.

use schemars::{JsonSchema, schema_for};
use serde_json::Value;

use crate::{admins, cluster, course, group, images, job, user};

/// `(event type, version, schema of its data)` for every event.
pub fn all() -> Vec<(&'static str, u32, Value)> {
    fn of<T: JsonSchema>() -> Value {
        serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null)
    }
    vec![
        ("CourseCreated", 1, of::<course::CourseCreated>()),
        ("CourseUpdated", 1, of::<course::CourseUpdated>()),
        ("CourseDeleted", 1, of::<course::CourseDeleted>()),
        ("UserRegistered", 1, of::<user::UserRegistered>()),
        ("UserCreated", 1, of::<user::UserCreatedV1>()),
        ("UserCreated", 2, of::<user::UserCreated>()),
        ("UserAudited", 1, of::<user::UserAudited>()),
        ("PasswordChanged", 1, of::<user::PasswordChanged>()),
        ("PasswordReset", 1, of::<user::PasswordReset>()),
        ("UserEmailChanged", 1, of::<user::UserEmailChanged>()),
        ("UserDetailsChanged", 1, of::<user::UserDetailsChanged>()),
        ("UserAdminChanged", 1, of::<user::UserAdminChanged>()),
        (
            "UserVirtualClustersSet",
            1,
            of::<user::UserVirtualClustersSet>(),
        ),
        ("UserGroupsSet", 1, of::<user::UserGroupsSet>()),
        (
            "UserExtensionUpdated",
            1,
            of::<user::UserExtensionUpdated>(),
        ),
        ("UserDeleted", 1, of::<user::UserDeleted>()),
        ("TokensRevoked", 1, of::<user::TokensRevoked>()),
        ("UserForgotten", 1, of::<user::UserForgotten>()),
        ("GroupCreated", 1, of::<group::GroupCreated>()),
        ("GroupUpdated", 1, of::<group::GroupUpdated>()),
        ("GroupDeleted", 1, of::<group::GroupDeleted>()),
        ("AdminReleased", 1, of::<admins::AdminReleased>()),
        ("JobLaunched", 1, of::<job::JobLaunched>()),
        ("JobScheduled", 1, of::<job::JobScheduled>()),
        ("JobPending", 1, of::<job::JobPending>()),
        ("JobReady", 1, of::<job::JobReady>()),
        ("JobFailed", 1, of::<job::JobFailed>()),
        ("JobRetrying", 1, of::<job::JobRetrying>()),
        ("JobDeleted", 1, of::<job::JobDeleted>()),
        ("ImageAdded", 1, of::<images::ImageAdded>()),
        ("ImageRemoved", 1, of::<images::ImageRemoved>()),
        ("NodeObserved", 1, of::<cluster::NodeObserved>()),
        ("NodeRemoved", 1, of::<cluster::NodeRemoved>()),
        ("DatasetObserved", 1, of::<cluster::DatasetObserved>()),
        ("DatasetRemoved", 1, of::<cluster::DatasetRemoved>()),
    ]
}

/// The file that holds one event type's schema: `<Type>.v<version>.json`.
pub fn file_name(event_type: &str, version: u32) -> String {
    format!("{event_type}.v{version}.json")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn schemas_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn schemas_in_the_repository_match_the_types() -> TestResult {
        let write = std::env::var_os("GANTRY_WRITE_SCHEMAS").is_some();
        for (event_type, version, schema) in all() {
            let path = schemas_dir().join(file_name(event_type, version));
            let text = serde_json::to_string_pretty(&schema)? + "\n";
            if write {
                std::fs::write(&path, &text)?;
            }
            let stored = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                stored,
                text,
                "{} is stale: regenerate with GANTRY_WRITE_SCHEMAS=1 cargo test -p events schemas",
                path.display()
            );
        }
        Ok(())
    }

    /// The current version of `event_type`, whichever aggregate it belongs to.
    fn current_version(event_type: &str) -> u32 {
        use crate::DomainEvent;
        if crate::UserEvent::TYPES.contains(&event_type) {
            crate::UserEvent::current_version(event_type)
        } else if crate::GroupEvent::TYPES.contains(&event_type) {
            crate::GroupEvent::current_version(event_type)
        } else if crate::AdminsEvent::TYPES.contains(&event_type) {
            crate::AdminsEvent::current_version(event_type)
        } else {
            crate::CourseEvent::current_version(event_type)
        }
    }

    #[test]
    fn every_event_type_has_a_schema_and_is_known() {
        use crate::DomainEvent;
        let mut names: Vec<&str> = all().iter().map(|(t, _, _)| *t).collect();
        let mut known: Vec<&str> = [
            crate::CourseEvent::TYPES,
            crate::UserEvent::TYPES,
            crate::GroupEvent::TYPES,
            crate::AdminsEvent::TYPES,
            crate::JobEvent::TYPES,
            crate::ImagesEvent::TYPES,
            crate::ClusterEvent::TYPES,
        ]
        .concat();
        names.sort();
        names.dedup();
        known.sort();
        assert_eq!(
            names, known,
            "each aggregate's TYPES lists exactly its schemas"
        );
        // Every version from 1 to the current one keeps its schema.
        for name in &names {
            let mut versions: Vec<u32> = all()
                .iter()
                .filter(|(t, _, _)| t == name)
                .map(|(_, v, _)| *v)
                .collect();
            versions.sort();
            let current = current_version(name);
            assert_eq!(versions, (1..=current).collect::<Vec<_>>(), "{name}");
        }
        // And each listed type is a variant of its enum: a variant that is missing from
        // TYPES would be refused as unknown when read back.
        let course_variants = serde_json::to_value(schemars::schema_for!(crate::CourseEvent))
            .unwrap()
            .to_string();
        for t in crate::CourseEvent::TYPES {
            assert!(course_variants.contains(&format!("\"{t}\"")), "{t}");
        }
        for (types, schema) in [
            (
                crate::UserEvent::TYPES,
                schemars::schema_for!(crate::UserEvent),
            ),
            (
                crate::GroupEvent::TYPES,
                schemars::schema_for!(crate::GroupEvent),
            ),
            (
                crate::AdminsEvent::TYPES,
                schemars::schema_for!(crate::AdminsEvent),
            ),
            (
                crate::JobEvent::TYPES,
                schemars::schema_for!(crate::JobEvent),
            ),
            (
                crate::ImagesEvent::TYPES,
                schemars::schema_for!(crate::ImagesEvent),
            ),
            (
                crate::ClusterEvent::TYPES,
                schemars::schema_for!(crate::ClusterEvent),
            ),
        ] {
            let variants = serde_json::to_value(schema).unwrap().to_string();
            for t in types {
                assert!(variants.contains(&format!("\"{t}\"")), "{t}");
            }
        }
    }

    #[test]
    fn an_envelope_round_trips_its_event() -> TestResult {
        let event = crate::CourseEvent::CourseUpdated(course::CourseUpdated {
            name: Some("n".into()),
            ..Default::default()
        });
        let meta = crate::Meta {
            actor: "admin".into(),
            request_id: "r".into(),
            causation_id: None,
            occurred_at: chrono::Utc::now(),
            idempotency_key: None,
            request_digest: None,
        };
        let envelope = crate::Envelope::new("id-1", &event, meta)?;
        assert_eq!(envelope.event_type, "CourseUpdated");
        assert_eq!(envelope.data, serde_json::json!({ "name": "n" }));
        let back = crate::Envelope::from_bytes(&envelope.to_bytes()?)?;
        assert_eq!(back.decode::<crate::CourseEvent>()?, event);
        assert!(matches!(
            crate::Event::decode(&back),
            Ok(crate::Event::Course(_))
        ));
        let mut unknown = back.clone();
        unknown.version = 7;
        assert!(
            unknown.decode::<crate::CourseEvent>().is_err(),
            "no upcaster from version 7"
        );
        Ok(())
    }
}
