//! Events of the `Images` aggregate: the catalogue of container images offered for
//! courses. There is one catalogue per instance (aggregate id [`CATALOGUE`]): it is small,
//! and one subject keeps every add and remove in one order.

use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// The aggregate id of the one catalogue.
pub const CATALOGUE: &str = "catalogue";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ImagesEvent {
    ImageAdded(ImageAdded),
    ImageRemoved(ImageRemoved),
}

impl DomainEvent for ImagesEvent {
    const AGGREGATE: &'static str = "images";
    const TYPES: &'static [&'static str] = &["ImageAdded", "ImageRemoved"];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageAdded {
    /// `repo/name:tag`.
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageRemoved {
    pub image: String,
}
