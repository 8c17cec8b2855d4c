//! Values of Slurm allocation accounting: names with the lengths the accounting service's
//! models gave them, and service units exact to 0.01.

use super::rule::{Problem, Rule, text_value};

/// The largest integer the accounting service's fields take (a PostgreSQL `integer`).
pub const INT_MAX: i64 = i32::MAX as i64;
pub const INT_MIN: i64 = i32::MIN as i64;
/// The longest account name, type, description, username, email, cluster and Slurm name.
pub const ACCOUNT_NAME_MAX: usize = 50;
pub const ACCOUNT_TYPE_MAX: usize = 10;
pub const ACCOUNT_DESCRIPTION_MAX: usize = 150;
pub const SLURM_USERNAME_MAX: usize = 20;
pub const ACCOUNTING_EMAIL_MAX: usize = 100;
pub const CLUSTER_NAME_MAX: usize = 64;
pub const SLURM_NAME_MAX: usize = 64;

text_value!(
    /// An account's name (`accountname`).
    AccountName,
    Rule {
        field: "accountname",
        min: 1,
        max: ACCOUNT_NAME_MAX,
        allowed: None,
    }
);

text_value!(
    /// An account's type (`FCA`, `ICA`, …), which also selects its overdraft policy.
    AccountType,
    Rule {
        field: "type",
        min: 1,
        max: ACCOUNT_TYPE_MAX,
        allowed: None,
    }
);

text_value!(
    /// What an account is for.
    AccountDescription,
    Rule {
        field: "description",
        min: 1,
        max: ACCOUNT_DESCRIPTION_MAX,
        allowed: None,
    }
);

text_value!(
    /// An accounting user's name: the same as their Slurm and Gantry username.
    SlurmUsername,
    Rule {
        field: "username",
        min: 1,
        max: SLURM_USERNAME_MAX,
        allowed: Some((
            |c| c.is_ascii_alphanumeric() || "._-@+".contains(c),
            "/^[A-Za-z0-9._@+-]+$/"
        )),
    }
);

text_value!(
    /// Free text about an accounting user (`usermetadata`, a Django `TextField`).
    UserMetadata,
    Rule {
        field: "usermetadata",
        min: 1,
        max: 10_000,
        allowed: None,
    }
);

text_value!(
    /// An accounting user's address (`email`, at most 100 characters as the model had).
    AccountingEmail,
    Rule {
        field: "email",
        min: 3,
        max: ACCOUNTING_EMAIL_MAX,
        allowed: Some((|c| !c.is_whitespace(), "/^\\S+@\\S+$/")),
    }
);

text_value!(
    /// A Slurm cluster's name (`ClusterName` of slurm.conf).
    ClusterName,
    Rule {
        field: "cluster",
        min: 1,
        max: CLUSTER_NAME_MAX,
        allowed: Some((
            |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
            "/^[A-Za-z0-9_-]+$/"
        )),
    }
);

text_value!(
    /// A Slurm partition or QOS name.
    SlurmName,
    Rule {
        field: "partition",
        min: 1,
        max: SLURM_NAME_MAX,
        allowed: Some((|c| !c.is_whitespace(), "/^\\S+$/")),
    }
);

/// An amount of service units, in hundredths: never negative, at most [`INT_MAX`] SUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Su(i64);

impl Su {
    pub const ZERO: Su = Su(0);
    pub const MAX_HUNDREDTHS: i64 = INT_MAX * 100;

    pub fn from_hundredths(hundredths: i64) -> Result<Self, super::InvalidValue> {
        if (0..=Self::MAX_HUNDREDTHS).contains(&hundredths) {
            Ok(Su(hundredths))
        } else {
            Err(out_of_range())
        }
    }

    /// The amount written in `text` (`1337`, `12.5`, `1e3`), rounded half up to 0.01 SU
    /// exactly, without going through a binary float.
    pub fn parse_decimal(text: &str) -> Result<Self, super::InvalidValue> {
        let invalid = || Problem::WrongType { expected: "number" }.of("amount");
        let text = text.trim();
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (
                &text[..i],
                text[i + 1..].parse::<i32>().map_err(|_| invalid())?,
            ),
            None => (text, 0),
        };
        let (negative, mantissa) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        // The decimal point sits after `point` digits; hundredths end two digits later.
        let point = int.len() as i64 + i64::from(exponent);
        let end = point + 2;
        let mut hundredths: i64 = 0;
        for (i, d) in digits.iter().enumerate() {
            let i = i as i64;
            if i >= end {
                break;
            }
            hundredths = hundredths
                .checked_mul(10)
                .and_then(|h| h.checked_add(i64::from(*d)))
                .filter(|h| *h <= Self::MAX_HUNDREDTHS * 10)
                .ok_or_else(out_of_range)?;
        }
        // Digits the text does not have below its last one are zeros.
        let present = digits.len() as i64;
        for _ in present.max(0)..end {
            hundredths = hundredths
                .checked_mul(10)
                .filter(|h| *h <= Self::MAX_HUNDREDTHS * 10)
                .ok_or_else(out_of_range)?;
        }
        if end < 0 {
            hundredths = 0;
        }
        let round_up = usize::try_from(end)
            .ok()
            .and_then(|e| digits.get(e))
            .is_some_and(|d| *d >= 5);
        if round_up {
            hundredths += 1;
        }
        if negative && hundredths != 0 {
            return Err(out_of_range());
        }
        Self::from_hundredths(hundredths)
    }

    pub fn hundredths(self) -> i64 {
        self.0
    }
}

fn out_of_range() -> super::InvalidValue {
    Problem::OutOfRange {
        min: 0,
        max: INT_MAX as u64,
    }
    .of("amount")
}

/// Hundredths of an SU as the number a client reads (`1337`, `12.5`).
pub fn su_number(hundredths: i64) -> serde_json::Value {
    if hundredths % 100 == 0 {
        serde_json::Value::from(hundredths / 100)
    } else {
        serde_json::Number::from_f64(hundredths as f64 / 100.0)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Hundredths of an SU as whole SUs, rounded half up (balances are integers at the door).
pub fn su_rounded(hundredths: i64) -> i64 {
    (hundredths + 50).div_euclid(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly_to_the_hundredth() {
        for (text, hundredths) in [
            ("1337", 133_700),
            ("0", 0),
            ("12.5", 1250),
            ("1337.005", 133_701),
            ("1337.004", 133_700),
            ("0.015", 2),
            ("1e3", 100_000),
            ("1.5E2", 15_000),
            ("123e-2", 123),
            ("5e-3", 1),
            ("4e-3", 0),
            ("2147483647", 214_748_364_700),
            ("+7", 700),
            ("-0", 0),
            (".5", 50),
        ] {
            assert_eq!(
                Su::parse_decimal(text).map(Su::hundredths),
                Ok(hundredths),
                "{text}"
            );
        }
        for bad in [
            "",
            "abc",
            "NaN",
            "inf",
            "-1",
            "1.2.3",
            "2147483648",
            "1e100",
            "e5",
            "--1",
        ] {
            assert!(Su::parse_decimal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn balances_round_half_up() {
        assert_eq!(su_rounded(150), 2);
        assert_eq!(su_rounded(149), 1);
        assert_eq!(su_rounded(-150), -1);
        assert_eq!(su_rounded(-151), -2);
        assert_eq!(su_number(133_700), serde_json::json!(1337));
        assert_eq!(su_number(1250), serde_json::json!(12.5));
    }
}
