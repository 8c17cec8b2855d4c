//! The rule every text value follows, and the error that says which one it broke.

/// A value a client sent that the domain cannot take: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct InvalidValue {
    /// The field's name as the domain calls it (`name`, `username`, `GPU`); a door may
    /// rename it in its message.
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("is shorter than {min} characters")]
    TooShort { min: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error("fails to match the required pattern: {pattern}")]
    Pattern { pattern: &'static str },
    #[error("must be between {min} and {max}")]
    OutOfRange { min: u64, max: u64 },
    #[error("has more than {max} items")]
    TooMany { max: usize },
    /// A JSON value of another type than the field takes (`boolean`, `array`).
    #[error("must be a {expected}")]
    WrongType { expected: &'static str },
}

impl Problem {
    pub(crate) fn of(self, field: &'static str) -> InvalidValue {
        InvalidValue {
            field,
            problem: self,
        }
    }
}

/// What a text value of one kind must be.
/// Whether a character is allowed, and the pattern to name when one is not.
pub(crate) type Allowed = (fn(char) -> bool, &'static str);

pub(crate) struct Rule {
    pub field: &'static str,
    pub min: usize,
    pub max: usize,
    /// The characters allowed, and the pattern to name when another one is met.
    pub allowed: Option<Allowed>,
}

impl Rule {
    pub(crate) fn check(&self, value: &str) -> Result<(), InvalidValue> {
        check_text(self.field, value, self.max)?;
        let chars = value.chars().count();
        if chars == 0 && self.min > 0 {
            return Err(Problem::Empty.of(self.field));
        }
        if chars < self.min {
            return Err(Problem::TooShort { min: self.min }.of(self.field));
        }
        if let Some((allowed, pattern)) = self.allowed
            && !value.chars().all(allowed)
        {
            return Err(Problem::Pattern { pattern }.of(self.field));
        }
        Ok(())
    }
}

/// The rule of all text: at most `max` characters, and no control character other than tab
/// and newline. Doors also run it over every string of a request body, keys included.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), InvalidValue> {
    if value
        .chars()
        .any(|c| c.is_control() && c != '\t' && c != '\n')
    {
        return Err(Problem::ControlCharacter.of(field));
    }
    // Bytes bound characters from above: count only when it may matter.
    if value.len() > max && value.chars().count() > max {
        return Err(Problem::TooLong { max }.of(field));
    }
    Ok(())
}

/// Declares a validated text value: a newtype over `String` that only [`parse`] makes,
/// serialized as its text.
macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub(crate) const RULE: $crate::values::rule::Rule = $rule;

            pub fn parse(value: impl Into<String>) -> Result<Self, $crate::values::InvalidValue> {
                let value = value.into();
                Self::RULE.check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

pub(crate) use text_value;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_other_than_tab_and_newline_are_refused() {
        assert_eq!(check_text("f", "a\tb\nc", 10), Ok(()));
        for bad in [
            "a\u{0}b",
            "\u{7}",
            "x\r\n",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
        ] {
            assert_eq!(
                check_text("f", bad, 10),
                Err(Problem::ControlCharacter.of("f")),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_text("f", "日本語の名前", 6),
            Ok(()),
            "unicode counts characters"
        );
        assert_eq!(
            check_text("f", "日本語の名前!", 6),
            Err(Problem::TooLong { max: 6 }.of("f"))
        );
    }
}
