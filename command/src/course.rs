//! The `Course` aggregate: a course of the GPU course platform.

use events::course::{CourseCreated, CourseDeleted, CourseEvent, CourseUpdated};
use serde::Serialize;

use crate::{
    Aggregate, DomainError,
    user::Caller,
    values::{CourseName, Datasets, Description, GpuCount, ImageRef, Level, Username},
};

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Course {
    pub status: Status,
    pub details: Option<CourseCreated>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    New,
    Active,
    Deleted,
}

/// A course to create. A course may lack an image or a level until it is updated (the
/// platform's create did not require them), never a name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewCourse {
    pub owner: Username,
    pub name: CourseName,
    pub introduction: Description,
    pub image: Option<ImageRef>,
    pub level: Option<Level>,
    pub gpu: GpuCount,
    pub datasets: Datasets,
}

/// Changes to a course: the fields that are `Some` take the new value.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CourseChanges {
    pub name: Option<CourseName>,
    pub introduction: Option<Description>,
    pub image: Option<ImageRef>,
    pub level: Option<Level>,
    pub gpu: Option<GpuCount>,
    pub datasets: Option<Datasets>,
}

/// What is asked of a course, and by whom: a course is created for oneself, and changed or
/// deleted by its owner, unless the caller is an admin ([`DomainError::Forbidden`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CourseCommand {
    Create(NewCourse, Caller),
    Update(CourseChanges, Caller),
    Delete(Caller),
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
                    changes.apply_to(details);
                }
            }
            CourseEvent::CourseDeleted(_) => self.status = Status::Deleted,
        }
    }

    fn decide(&self, command: &CourseCommand) -> Result<Option<CourseEvent>, DomainError> {
        use CourseCommand as C;
        match (command, self.status, &self.details) {
            (C::Create(new, by), Status::New, _) => {
                by.may_act_as(new.owner.as_str())?;
                Ok(Some(CourseEvent::CourseCreated(created(new))))
            }
            (C::Create(..), _, _) => Err(DomainError::AlreadyExists),
            (C::Update(changes, by), Status::Active, Some(details)) => {
                by.may_act_as(&details.owner)?;
                let changed = only_changed(details, changes);
                Ok((changed != CourseUpdated::default())
                    .then_some(CourseEvent::CourseUpdated(changed)))
            }
            (C::Delete(by), Status::Active, Some(details)) => {
                by.may_act_as(&details.owner)?;
                Ok(Some(CourseEvent::CourseDeleted(CourseDeleted {})))
            }
            (C::Update(..) | C::Delete(_), _, _) => Err(DomainError::NotFound),
        }
    }
}

fn created(new: &NewCourse) -> CourseCreated {
    CourseCreated {
        owner: new.owner.to_string(),
        name: new.name.to_string(),
        introduction: new.introduction.to_string(),
        image: new
            .image
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        level: new
            .level
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        gpu: new.gpu.get(),
        datasets: new.datasets.names(),
    }
}

/// The part of `changes` that differs from `details`: an update that changes nothing
/// records nothing.
fn only_changed(details: &CourseCreated, changes: &CourseChanges) -> CourseUpdated {
    fn differs<T: AsRef<str>>(new: &Option<T>, old: &str) -> Option<String> {
        new.as_ref()
            .map(AsRef::as_ref)
            .filter(|n| *n != old)
            .map(str::to_string)
    }
    CourseUpdated {
        name: differs(&changes.name, &details.name),
        introduction: differs(&changes.introduction, &details.introduction),
        image: differs(&changes.image, &details.image),
        level: differs(&changes.level, &details.level),
        gpu: changes.gpu.map(GpuCount::get).filter(|g| *g != details.gpu),
        datasets: changes
            .datasets
            .as_ref()
            .map(Datasets::names)
            .filter(|d| *d != details.datasets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_course() -> NewCourse {
        NewCourse {
            owner: Username::parse("jimmy").unwrap(),
            name: CourseName::parse("image process").unwrap(),
            introduction: Description::parse("intro").unwrap(),
            image: Some(ImageRef::parse("nvidia/caffe:latest").unwrap()),
            level: Some(Level::parse("basic").unwrap()),
            gpu: GpuCount::parse(1).unwrap(),
            datasets: Datasets::parse(vec!["mnist".into()]).unwrap(),
        }
    }

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

    /// The owner of [`new_course`].
    fn owner() -> Caller {
        Caller {
            username: Username::parse("jimmy").unwrap(),
            admin: false,
        }
    }

    fn rename(name: &str) -> CourseChanges {
        CourseChanges {
            name: Some(CourseName::parse(name).unwrap()),
            ..Default::default()
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
            CourseCommand::Create(new_course(), owner()),
            Ok(Some(CourseEvent::CourseCreated(created()))),
        );
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Create(new_course(), owner()),
            Err(DomainError::AlreadyExists),
        );
        check(
            &[
                CourseEvent::CourseCreated(created()),
                CourseEvent::CourseDeleted(CourseDeleted {}),
            ],
            CourseCommand::Create(new_course(), owner()),
            Err(DomainError::AlreadyExists),
        );
    }

    #[test]
    fn a_course_without_image_or_level_records_them_empty() {
        let bare = NewCourse {
            image: None,
            level: None,
            ..new_course()
        };
        let CourseEvent::CourseCreated(event) = Course::default()
            .decide(&CourseCommand::Create(bare, owner()))
            .unwrap()
            .unwrap()
        else {
            panic!("a creation")
        };
        assert_eq!((event.image.as_str(), event.level.as_str()), ("", ""));
    }

    #[test]
    fn update_records_only_what_changed() {
        let changes = CourseChanges {
            level: Some(Level::parse("basic").unwrap()),
            gpu: Some(GpuCount::parse(1).unwrap()),
            datasets: Some(Datasets::parse(vec![]).unwrap()),
            ..rename("new name")
        };
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Update(changes, owner()),
            Ok(Some(CourseEvent::CourseUpdated(CourseUpdated {
                name: Some("new name".into()),
                datasets: Some(vec![]),
                ..Default::default()
            }))),
        );
    }

    #[test]
    fn update_that_changes_nothing_records_nothing() {
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Update(rename("image process"), owner()),
            Ok(None),
        );
    }

    #[test]
    fn later_updates_see_earlier_ones() {
        let renamed = CourseEvent::CourseUpdated(CourseUpdated {
            name: Some("b".into()),
            ..Default::default()
        });
        check(
            &[CourseEvent::CourseCreated(created()), renamed],
            CourseCommand::Update(rename("image process"), owner()),
            Ok(Some(CourseEvent::CourseUpdated(CourseUpdated {
                name: Some("image process".into()),
                ..Default::default()
            }))),
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
                CourseCommand::Update(CourseChanges::default(), owner()),
                Err(DomainError::NotFound),
            );
            check(
                history,
                CourseCommand::Delete(owner()),
                Err(DomainError::NotFound),
            );
        }
    }

    #[test]
    fn only_the_owner_or_an_admin_creates_changes_or_deletes_a_course() {
        let other = |admin| Caller {
            username: Username::parse("someone").unwrap(),
            admin,
        };
        let course = [CourseEvent::CourseCreated(created())];
        for (by, allowed) in [(other(false), false), (other(true), true)] {
            let expect = |event: CourseEvent| {
                if allowed {
                    Ok(Some(event))
                } else {
                    Err(DomainError::Forbidden)
                }
            };
            check(
                &[],
                CourseCommand::Create(new_course(), by.clone()),
                expect(CourseEvent::CourseCreated(created())),
            );
            check(
                &course,
                CourseCommand::Update(rename("b"), by.clone()),
                expect(CourseEvent::CourseUpdated(CourseUpdated {
                    name: Some("b".into()),
                    ..Default::default()
                })),
            );
            check(
                &course,
                CourseCommand::Delete(by),
                expect(CourseEvent::CourseDeleted(CourseDeleted {})),
            );
        }
    }

    #[test]
    fn delete_records_the_deletion() {
        check(
            &[CourseEvent::CourseCreated(created())],
            CourseCommand::Delete(owner()),
            Ok(Some(CourseEvent::CourseDeleted(CourseDeleted {}))),
        );
    }
}
