//! The `Images` aggregate: the catalogue of container images offered for courses
//! (`events::images::CATALOGUE` is its one id). Only admins change it.
//!
//! Adding an image already there, like removing one twice, is a client's repeat rather than
//! a conflict: the add records nothing and succeeds; a remove of an image not in the
//! catalogue is [`DomainError::NotFound`], so the door can say so.

use std::collections::BTreeSet;

use events::images::{ImageAdded, ImageRemoved, ImagesEvent};
use serde::Serialize;

use crate::{Aggregate, DomainError, user::Caller, values::ImageRef};

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Images {
    pub images: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ImagesCommand {
    Add(ImageRef, Caller),
    Remove(ImageRef, Caller),
}

impl Aggregate for Images {
    type Command = ImagesCommand;
    type Event = ImagesEvent;

    fn evolve(&mut self, event: &ImagesEvent) {
        match event {
            ImagesEvent::ImageAdded(ImageAdded { image }) => {
                self.images.insert(image.clone());
            }
            ImagesEvent::ImageRemoved(ImageRemoved { image }) => {
                self.images.remove(image);
            }
        }
    }

    fn decide(&self, command: &ImagesCommand) -> Result<Option<ImagesEvent>, DomainError> {
        match command {
            ImagesCommand::Add(_, by) | ImagesCommand::Remove(_, by) if !by.admin => {
                Err(DomainError::Forbidden)
            }
            ImagesCommand::Add(image, _) => {
                Ok((!self.images.contains(image.as_str())).then(|| {
                    ImagesEvent::ImageAdded(ImageAdded {
                        image: image.to_string(),
                    })
                }))
            }
            ImagesCommand::Remove(image, _) if self.images.contains(image.as_str()) => {
                Ok(Some(ImagesEvent::ImageRemoved(ImageRemoved {
                    image: image.to_string(),
                })))
            }
            ImagesCommand::Remove(..) => Err(DomainError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Username;

    fn admin(admin: bool) -> Caller {
        Caller {
            username: Username::parse("root").unwrap(),
            admin,
        }
    }

    fn image() -> ImageRef {
        ImageRef::parse("nvidia/digits:6.0").unwrap()
    }

    #[test]
    fn an_admin_adds_an_image_once_and_removes_it_once() {
        let mut images = Images::default();
        let added = images
            .decide(&ImagesCommand::Add(image(), admin(true)))
            .unwrap()
            .unwrap();
        images.evolve(&added);
        assert_eq!(
            images.decide(&ImagesCommand::Add(image(), admin(true))),
            Ok(None)
        );
        let removed = images
            .decide(&ImagesCommand::Remove(image(), admin(true)))
            .unwrap()
            .unwrap();
        images.evolve(&removed);
        assert!(images.images.is_empty());
        assert_eq!(
            images.decide(&ImagesCommand::Remove(image(), admin(true))),
            Err(DomainError::NotFound)
        );
    }

    #[test]
    fn only_admins_change_the_catalogue() {
        for command in [
            ImagesCommand::Add(image(), admin(false)),
            ImagesCommand::Remove(image(), admin(false)),
        ] {
            assert_eq!(
                Images::default().decide(&command),
                Err(DomainError::Forbidden)
            );
        }
    }
}
