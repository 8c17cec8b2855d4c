//! Values of the course catalogue.

use super::rule::{Problem, Rule, text_value};
use crate::values::InvalidValue;

text_value!(
    /// A course's name: 1 to 256 characters.
    CourseName,
    Rule {
        field: "name",
        min: 1,
        max: 256,
        allowed: None,
    }
);

text_value!(
    /// Free text such as a course's introduction (markdown): up to 64 KiB of characters.
    Description,
    Rule {
        field: "introduction",
        min: 0,
        max: 64 * 1024,
        allowed: None,
    }
);

text_value!(
    /// A course level (`basic`, `advanced`, …): it names a list in a URL path, so one
    /// segment of 1 to 64 characters without `/`.
    Level,
    Rule {
        field: "level",
        min: 1,
        max: 64,
        allowed: Some((|c| c != '/' && !c.is_whitespace(), "/^[^/\\s]+$/")),
    }
);

text_value!(
    /// A container image reference (`nvidia/caffe:latest`, `registry:5000/a/b@sha256:…`):
    /// the characters of an OCI reference, at most 512.
    ImageRef,
    Rule {
        field: "image",
        min: 1,
        max: 512,
        allowed: Some((
            |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'),
            "/^[A-Za-z0-9._\\-\\/:@]+$/",
        )),
    }
);

text_value!(
    /// A shared dataset: the name of its PersistentVolumeClaim without the `dataset-`
    /// prefix, so lower-case letters, digits, `-` and `.`, as Kubernetes names are.
    Dataset,
    Rule {
        field: "datasets",
        min: 1,
        max: 245,
        allowed: Some((
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
            "/^[a-z0-9.-]+$/",
        )),
    }
);

/// The datasets a course mounts: at most 64, each named once.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Datasets(Vec<Dataset>);

impl Datasets {
    pub const MAX: usize = 64;

    pub fn parse(names: Vec<String>) -> Result<Self, InvalidValue> {
        if names.len() > Self::MAX {
            return Err(Problem::TooMany { max: Self::MAX }.of("datasets"));
        }
        let mut datasets = Vec::with_capacity(names.len());
        for name in names {
            let dataset = Dataset::parse(name)?;
            if !datasets.contains(&dataset) {
                datasets.push(dataset);
            }
        }
        Ok(Self(datasets))
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|d| d.as_str().to_string()).collect()
    }
}

/// How many GPUs a course's jobs ask for: 0 to 64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct GpuCount(u32);

impl GpuCount {
    pub const MAX: u32 = 64;

    pub fn parse(count: u64) -> Result<Self, InvalidValue> {
        match u32::try_from(count) {
            Ok(n) if n <= Self::MAX => Ok(Self(n)),
            _ => Err(Problem::OutOfRange {
                min: 0,
                max: Self::MAX as u64,
            }
            .of("GPU")),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_keeps_its_rule() {
        assert!(CourseName::parse("image process").is_ok());
        assert_eq!(
            CourseName::parse("").unwrap_err().problem,
            Problem::Empty,
            "a name is required"
        );
        assert_eq!(
            CourseName::parse("a\u{0}b").unwrap_err().problem,
            Problem::ControlCharacter
        );
        assert!(CourseName::parse("x".repeat(257)).is_err());
        assert!(Description::parse("# Intro\n\n\tcode").is_ok());
        assert!(Description::parse("").is_ok());
        assert!(Level::parse("basic").is_ok());
        assert!(Level::parse("a/b").is_err());
        assert!(ImageRef::parse("nvidia/caffe:latest").is_ok());
        assert!(ImageRef::parse("localhost:5000/a/b@sha256:0123abcd").is_ok());
        assert!(ImageRef::parse("bad image").is_err());
        assert!(Dataset::parse("caltech256").is_ok());
        assert!(Dataset::parse("MNIST").is_err(), "PVC names are lower case");
        assert_eq!(GpuCount::parse(64).map(GpuCount::get), Ok(64));
        assert!(GpuCount::parse(65).is_err());
        assert!(GpuCount::parse(u64::MAX).is_err());
    }

    #[test]
    fn datasets_are_bounded_and_named_once() {
        let datasets = Datasets::parse(vec!["mnist".into(), "mnist".into(), "cifar-10".into()]);
        assert_eq!(
            datasets.map(|d| d.names()),
            Ok(vec!["mnist".into(), "cifar-10".into()])
        );
        let many = (0..65).map(|i| format!("d{i}")).collect();
        assert_eq!(
            Datasets::parse(many).unwrap_err().problem,
            Problem::TooMany { max: 64 }
        );
    }
}
