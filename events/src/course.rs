//! Events of the `Course` aggregate: a course of the GPU course platform, whose id is a
//! UUID and whose creation time is the `occurred_at` of its `CourseCreated`.

use serde::{Deserialize, Serialize};

use crate::DomainEvent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CourseEvent {
    CourseCreated(CourseCreated),
    CourseUpdated(CourseUpdated),
    CourseDeleted(CourseDeleted),
}

impl DomainEvent for CourseEvent {
    const AGGREGATE: &'static str = "course";
    const TYPES: &'static [&'static str] = &["CourseCreated", "CourseUpdated", "CourseDeleted"];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CourseCreated {
    /// The user the course belongs to (the `user` of the create request).
    pub owner: String,
    pub name: String,
    pub introduction: String,
    pub image: String,
    pub level: String,
    pub gpu: u32,
    pub datasets: Vec<String>,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CourseUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<String>>,
}

impl CourseUpdated {
    /// Applies these changes to a course: the one place that says what an update does,
    /// used by the aggregate and by the read model alike.
    pub fn apply_to(&self, course: &mut CourseCreated) {
        let CourseUpdated {
            name,
            introduction,
            image,
            level,
            gpu,
            datasets,
        } = self;
        if let Some(v) = name {
            course.name.clone_from(v);
        }
        if let Some(v) = introduction {
            course.introduction.clone_from(v);
        }
        if let Some(v) = image {
            course.image.clone_from(v);
        }
        if let Some(v) = level {
            course.level.clone_from(v);
        }
        if let Some(v) = gpu {
            course.gpu = *v;
        }
        if let Some(v) = datasets {
            course.datasets.clone_from(v);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CourseDeleted {}
