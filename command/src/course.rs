//! The `Course` aggregate: a course of the GPU course platform.

use events::course::{CourseCreated, CourseDeleted, CourseEvent, CourseUpdated};

use crate::{Aggregate, DomainError};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Course {
    pub status: Status,
    pub details: Option<CourseCreated>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    #[default]
    New,
    Active,
    Deleted,
}

#[derive(Debug, Clone)]
pub enum CourseCommand {
    Create(CourseCreated),
    /// Change the fields that are `Some`; the others keep their value.
    Update(CourseUpdated),
    Delete,
}

impl Aggregate for Course {
    type Command = CourseCommand;
    type Event = CourseEvent;

    fn evolve(&mut self, event: &CourseEvent) {
        match event {
            CourseEvent::CourseCreated(created) => {
                self.status = Status::Active;
                self.details = Some(created.clone());
            }
            CourseEvent::CourseUpdated(changes) => {
                if let Some(details) = &mut self.details {
                    apply_changes(details, changes.clone());
                }
            }
            CourseEvent::CourseDeleted(_) => self.status = Status::Deleted,
        }
    }

    fn decide(&self, command: &CourseCommand) -> Result<Option<CourseEvent>, DomainError> {
        match (command, self.status, &self.details) {
            (CourseCommand::Create(created), Status::New, _) => {
                Ok(Some(CourseEvent::CourseCreated(created.clone())))
            }
            (CourseCommand::Create(_), _, _) => Err(DomainError::AlreadyExists),
            (CourseCommand::Update(changes), Status::Active, Some(details)) => {
                let changed = only_changed(details, changes);
                Ok((changed != CourseUpdated::default())
                    .then_some(CourseEvent::CourseUpdated(changed)))
            }
            (CourseCommand::Delete, Status::Active, _) => {
                Ok(Some(CourseEvent::CourseDeleted(CourseDeleted {})))
            }
            (CourseCommand::Update(_) | CourseCommand::Delete, _, _) => Err(DomainError::NotFound),
        }
    }
}

/// The part of `changes` that differs from `details`: an update that changes nothing
/// records nothing.
fn only_changed(details: &CourseCreated, changes: &CourseUpdated) -> CourseUpdated {
    fn differs<T: PartialEq + Clone>(new: &Option<T>, old: &T) -> Option<T> {
        new.as_ref().filter(|n| *n != old).cloned()
    }
    CourseUpdated {
        name: differs(&changes.name, &details.name),
        introduction: differs(&changes.introduction, &details.introduction),
        image: differs(&changes.image, &details.image),
        level: differs(&changes.level, &details.level),
        gpu: differs(&changes.gpu, &details.gpu),
        datasets: differs(&changes.datasets, &details.datasets),
    }
}

fn apply_changes(details: &mut CourseCreated, changes: CourseUpdated) {
    let CourseUpdated {
        name,
        introduction,
        image,
        level,
        gpu,
        datasets,
    } = changes;
    if let Some(v) = name {
        details.name = v;
    }
    if let Some(v) = introduction {
        details.introduction = v;
    }
    if let Some(v) = image {
        details.image = v;
    }
    if let Some(v) = level {
        details.level = v;
    }
    if let Some(v) = gpu {
        details.gpu = v;
    }
    if let Some(v) = datasets {
        details.datasets = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> CourseCreated {
        CourseCreated {
            owner: "jimmy".into(),
            name: "image process".into(),
            introduction: "intro".into(),
            image: "nvidia/caffe:latest".into(),
            level: "basic".into(),
            gpu: 1,
            datasets: vec!["mnist".into()],
        }
    }

    /// Given `history`, when `command`, then `expected`.
    fn check(
        history: &[CourseEvent],
        command: CourseCommand,
        expected: Result<Option<CourseEvent>, DomainError>,
    ) {
        let mut state = Course::default();
        for event in history {
            state.evolve(event);
        }
        assert_eq!(state.decide(&command), expected);
    }

    #[test]
    fn create_records_the_course_once() {
        check(
            &[],
            CourseCommand::Create(created()),
            Ok(Some(CourseEvent::CourseCreated(created()))),
        );
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Create(created()),
            Err(DomainError::AlreadyExists),
        );
        check(
            &[
                CourseEvent::CourseCreated(created()),
                CourseEvent::CourseDeleted(CourseDeleted {}),
            ],
            CourseCommand::Create(created()),
            Err(DomainError::AlreadyExists),
        );
    }

    #[test]
    fn update_records_only_what_changed() {
        let changes = CourseUpdated {
            name: Some("new name".into()),
            level: Some("basic".into()),
            ..Default::default()
        };
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Update(changes),
            Ok(Some(CourseEvent::CourseUpdated(CourseUpdated {
                name: Some("new name".into()),
                ..Default::default()
            }))),
        );
    }

    #[test]
    fn update_that_changes_nothing_records_nothing() {
        let same = CourseUpdated {
            name: Some("image process".into()),
            ..Default::default()
        };
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Update(same),
            Ok(None),
        );
    }

    #[test]
    fn later_updates_see_earlier_ones() {
        let rename = CourseEvent::CourseUpdated(CourseUpdated {
            name: Some("b".into()),
            ..Default::default()
        });
        let back = CourseUpdated {
            name: Some("image process".into()),
            ..Default::default()
        };
        check(
            &[CourseEvent::CourseCreated(created()), rename],
            CourseCommand::Update(back.clone()),
            Ok(Some(CourseEvent::CourseUpdated(back))),
        );
    }

    #[test]
    fn update_or_delete_of_missing_or_deleted_course_is_not_found() {
        let deleted = [
            CourseEvent::CourseCreated(created()),
            CourseEvent::CourseDeleted(CourseDeleted {}),
        ];
        for history in [&[][..], &deleted[..]] {
            check(
                history,
                CourseCommand::Update(CourseUpdated::default()),
                Err(DomainError::NotFound),
            );
            check(history, CourseCommand::Delete, Err(DomainError::NotFound));
        }
    }

    #[test]
    fn delete_records_the_deletion() {
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Delete,
            Ok(Some(CourseEvent::CourseDeleted(CourseDeleted {}))),
        );
    }
}
