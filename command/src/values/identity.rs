//! Values of identity, shared by every door: one user logs in at all five.

use super::rule::{Rule, text_value};

text_value!(
    /// A username: 1 to 64 of letters, digits, `_`, `.`, `-` and `@` (the course
    /// platform's users look like `jimmy@nchc`; OpenPAI's pattern is `\w.-`).
    Username,
    Rule {
        field: "username",
        min: 1,
        max: 64,
        allowed: Some((
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'),
            "/^[\\w.@-]+$/",
        )),
    }
);

text_value!(
    /// A password as typed: 6 to 256 characters. It is only ever hashed, never stored.
    Password,
    Rule {
        field: "password",
        min: 6,
        max: 256,
        allowed: None,
    }
);

text_value!(
    /// An email address: up to 254 characters with an `@` between a local part and a
    /// domain, no spaces.
    Email,
    Rule {
        field: "email",
        min: 3,
        max: 254,
        allowed: Some((|c| !c.is_whitespace(), "/^\\S+@\\S+$/")),
    }
);

impl Email {
    /// An email also needs its `@` between two non-empty parts.
    pub fn parse_address(value: impl Into<String>) -> Result<Self, super::InvalidValue> {
        let email = Self::parse(value)?;
        match email.as_str().split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
            _ => Err(super::Problem::Pattern {
                pattern: "/^\\S+@\\S+$/",
            }
            .of("email")),
        }
    }
}

text_value!(
    /// The name of a virtual cluster (OpenPAI): letters, digits and `_`.
    VirtualCluster,
    Rule {
        field: "virtualCluster",
        min: 1,
        max: 64,
        allowed: Some((|c| c.is_ascii_alphanumeric() || c == '_', "/^[A-Za-z0-9_]+$/")),
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Problem;

    #[test]
    fn usernames_of_every_door_parse() {
        for name in ["jimmy", "jimmy@nchc", "a.b-c_d", "ADMIN1"] {
            assert!(Username::parse(name).is_ok(), "{name}");
        }
        for name in ["", "a b", "a/b", "a\u{0}", "ü"] {
            assert!(Username::parse(name).is_err(), "{name:?}");
        }
        assert_eq!(
            Password::parse("12345").unwrap_err().problem,
            Problem::TooShort { min: 6 }
        );
        assert!(Email::parse_address("a@b").is_ok());
        assert!(Email::parse_address("@b").is_err());
        assert!(Email::parse_address("ab").is_err());
        assert!(VirtualCluster::parse("vc_1").is_ok());
        assert!(VirtualCluster::parse("vc-1").is_err());
    }
}
