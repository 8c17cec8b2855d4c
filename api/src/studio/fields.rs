//! Reading a request's fields as Django REST framework's serializers read them: a JSON
//! object or a form, each field checked with DRF's words, every error of every field
//! reported together; and Django's password validators.

use serde_json::{Map, Value};

use super::errors::{
    BLANK, FieldErrors, INVALID_EMAIL, NON_FIELD, NOT_A_STRING, NULL, REQUIRED, StudioError,
};
use crate::input;

/// A request's fields and the errors found in them so far.
pub struct Fields {
    params: Map<String, Value>,
    pub errors: FieldErrors,
}

/// How a `CharField` reads its value.
#[derive(Clone, Copy)]
pub struct Char {
    pub required: bool,
    pub allow_blank: bool,
    /// DRF trims text fields by default; passwords are kept as typed (see the module docs of
    /// the door).
    pub trim: bool,
    pub max_length: Option<usize>,
}

impl Char {
    /// A required field that may not be blank, trimmed.
    pub const REQUIRED: Char = Char {
        required: true,
        allow_blank: false,
        trim: true,
        max_length: None,
    };
    /// An optional field that may be blank, trimmed.
    pub const OPTIONAL: Char = Char {
        required: false,
        allow_blank: true,
        trim: true,
        max_length: None,
    };
    /// A required password, kept as typed.
    pub const PASSWORD: Char = Char {
        required: true,
        allow_blank: false,
        trim: false,
        max_length: Some(128),
    };
}

impl Fields {
    /// The fields of a body: a form when the Content-Type says so (and the body does not open
    /// with `{`), else JSON. An empty body has no fields. Every string follows the rule of
    /// all text (`crate::input`).
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Fields, StudioError> {
        let is_form = content_type.is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        let value = if body.trim_ascii().is_empty() {
            Value::Object(Map::new())
        } else if is_form && body.trim_ascii_start().first() != Some(&b'{') {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
                StudioError::detail(
                    warp::http::StatusCode::BAD_REQUEST,
                    format!("Form parse error - {e}"),
                )
            })?;
            let form = Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            );
            input::check_strings(&form)?;
            form
        } else {
            input::json::<Value>(body)?
        };
        match value {
            Value::Object(params) => Ok(Fields {
                params,
                errors: FieldErrors::default(),
            }),
            other => Err(StudioError::non_field(format!(
                "Invalid data. Expected a dictionary, but got {}.",
                python_type(&other)
            ))),
        }
    }

    /// A `CharField` named `name`: `None` when it is absent and optional, or wrong (the
    /// error is recorded).
    pub fn char(&mut self, name: &str, spec: Char) -> Option<String> {
        let text = match self.params.get(name) {
            None => {
                if spec.required {
                    self.errors.add(name, REQUIRED);
                }
                return None;
            }
            Some(Value::Null) => {
                self.errors.add(name, NULL);
                return None;
            }
            Some(Value::String(s)) => s.clone(),
            // DRF takes a number for a text field, as its text.
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                self.errors.add(name, NOT_A_STRING);
                return None;
            }
        };
        let text = if spec.trim {
            text.trim().to_string()
        } else {
            text
        };
        if text.is_empty() && !spec.allow_blank {
            self.errors.add(name, BLANK);
            return None;
        }
        if let Some(max) = spec.max_length
            && text.chars().count() > max
        {
            self.errors.add(
                name,
                format!("Ensure this field has no more than {max} characters."),
            );
            return None;
        }
        Some(text)
    }

    /// An `EmailField`: a `CharField` whose non-blank value must be an address.
    pub fn email(&mut self, name: &str, spec: Char) -> Option<String> {
        let text = self.char(name, spec)?;
        if text.is_empty() || valid_email(&text) {
            Some(text)
        } else {
            self.errors.add(name, INVALID_EMAIL);
            None
        }
    }

    /// Fails with every error found so far.
    pub fn check(&mut self) -> Result<(), StudioError> {
        std::mem::take(&mut self.errors).check()
    }

    /// Fails with one error of the fields together (`non_field_errors`).
    pub fn non_field(message: &str) -> StudioError {
        StudioError::field(NON_FIELD, message)
    }
}

/// How Python names the type of a JSON value (DRF's "Expected a dictionary, but got list.").
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::String(_) => "str",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Bool(_) => "bool",
        Value::Null => "NoneType",
        Value::Object(_) => "dict",
    }
}

/// Whether `text` is an address as Django's `EmailValidator` sees it, roughly: a local part,
/// an `@`, and a domain with a dot (or `localhost`), no spaces; and what the domain's
/// [`command::values::Email`] takes.
pub fn valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let domain_ok = domain == "localhost"
        || (domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains(".."));
    !local.is_empty()
        && domain_ok
        && !text.chars().any(char::is_whitespace)
        && command::values::Email::parse_address(text).is_ok()
}

/// The words of Django's password validators that the studio ran
/// (`MinimumLengthValidator`, `CommonPasswordValidator`, `NumericPasswordValidator`), in
/// their order; empty when the password passes.
pub fn password_problems(password: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        problems.push(format!(
            "This password is too short. It must contain at least {MIN_PASSWORD_LENGTH} characters."
        ));
    }
    let folded = password.trim().to_lowercase();
    if COMMON_PASSWORDS.contains(&folded.as_str()) {
        problems.push("This password is too common.".to_string());
    }
    if !password.is_empty() && password.chars().all(|c| c.is_numeric()) {
        problems.push("This password is entirely numeric.".to_string());
    }
    if problems.is_empty()
        && let Err(invalid) = command::values::Password::parse(password)
    {
        // The domain's own bound (its longest password) is the last word.
        problems.push(format!("This password {}.", invalid.problem));
    }
    problems
}

/// Django's `MinimumLengthValidator` default.
pub const MIN_PASSWORD_LENGTH: usize = 8;

/// The most common passwords of the public breach lists (Django's validator reads 20,000 of
/// them; these few hundred catch the guesses tried first), lower case.
#[rustfmt::skip]
const COMMON_PASSWORDS: &[&str] = &[
    "123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111",
    "1234567", "dragon", "123123", "baseball", "abc123", "football", "monkey", "letmein",
    "696969", "shadow", "master", "666666", "qwertyuiop", "123321", "mustang", "1234567890",
    "michael", "654321", "superman", "1qaz2wsx", "7777777", "121212", "000000", "qazwsx",
    "123qwe", "killer", "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter",
    "buster", "soccer", "harley", "batman", "andrew", "tigger", "sunshine", "iloveyou", "2000",
    "charlie", "robert", "thomas", "hockey", "ranger", "daniel", "starwars", "112233", "george",
    "computer", "michelle", "jessica", "pepper", "1111", "zxcvbn", "555555", "11111111",
    "131313", "freedom", "777777", "pass", "maggie", "159753", "aaaaaa", "ginger", "princess",
    "joshua", "cheese", "amanda", "summer", "love", "ashley", "nicole", "chelsea", "biteme",
    "matthew", "access", "yankees", "987654321", "dallas", "austin", "thunder", "taylor",
    "matrix", "password1", "password12", "password123", "passw0rd", "p@ssw0rd", "p@ssword",
    "admin", "admin123", "administrator", "root", "toor", "changeme", "welcome", "welcome1",
    "welcome123", "qwerty123", "qwerty12", "1q2w3e4r", "1q2w3e4r5t", "1q2w3e", "q1w2e3r4",
    "zaq12wsx", "asdfghjkl", "asdf1234", "asdfasdf", "abcd1234", "abcdefg", "abcdefgh",
    "abc12345", "a1b2c3d4", "aa123456", "iloveyou1", "letmein1", "football1", "baseball1",
    "sunshine1", "princess1", "monkey123", "dragon123", "master123", "shadow123", "superman1",
    "batman123", "trustno11", "starwars1", "whatever", "secret", "secret123", "test", "test123",
    "test1234", "testing", "guest", "default", "login", "user", "user123", "demo", "qwe123",
    "qweqwe", "qweasd", "qweasdzxc", "1qazxsw2", "88888888", "87654321", "12341234", "11223344",
    "00000000", "99999999", "66666666", "12121212", "123654789", "147258369", "159357",
    "5201314", "woaini", "woaini1314", "iloveu", "iloveyou2", "lovely", "loveme", "fuckyou",
    "fuckoff", "hello", "hello123", "helloworld", "hellokitty", "flower", "google", "internet",
    "samsung", "apple", "computer1", "linkedin", "facebook", "twitter", "youtube", "myspace1",
    "zxcvbnm1", "zxc123", "asd123", "asdasd", "qazwsxedc", "1234qwer", "qwer1234", "1234abcd",
    "passpass", "password2", "password11", "passwort", "motdepasse", "contraseña",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_s_validators_say_each_problem_in_order() {
        assert_eq!(
            password_problems("1234"),
            vec![
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ]
        );
        assert_eq!(
            password_problems("Password"),
            vec!["This password is too common."]
        );
        assert_eq!(
            password_problems("38472910"),
            vec!["This password is entirely numeric."]
        );
        assert!(password_problems("correct horse battery").is_empty());
        assert_eq!(
            password_problems(&"x".repeat(300)),
            vec!["This password is longer than 256 characters."]
        );
    }

    #[test]
    fn fields_are_read_with_drf_s_words() {
        let mut fields = Fields::parse(
            None,
            br#"{"a": null, "b": "  ", "c": 5, "d": [1], "e": "x@y", "f": "  p  "}"#,
        )
        .unwrap();
        assert_eq!(fields.char("a", Char::REQUIRED), None);
        assert_eq!(fields.char("b", Char::REQUIRED), None);
        assert_eq!(fields.char("c", Char::REQUIRED), Some("5".into()));
        assert_eq!(fields.char("d", Char::REQUIRED), None);
        assert_eq!(fields.email("e", Char::REQUIRED), None);
        assert_eq!(fields.char("f", Char::PASSWORD), Some("  p  ".into()));
        assert_eq!(fields.char("g", Char::OPTIONAL), None);
        assert_eq!(fields.char("h", Char::REQUIRED), None);
        let body = match fields.check() {
            Err(e) => warp::Reply::into_response(e),
            Ok(()) => panic!("errors expected"),
        };
        assert_eq!(body.status(), 400);
        let form = Fields::parse(
            Some("application/x-www-form-urlencoded"),
            b"username=jimmy&password=a+b",
        )
        .unwrap();
        assert!(form.params.contains_key("username") && form.params.contains_key("password"));
        assert!(Fields::parse(None, b"[1]").is_err());
        assert!(Fields::parse(None, b"").unwrap().params.is_empty());
    }

    #[test]
    fn addresses_look_like_django_s() {
        for good in ["a@b.cn", "151250206@smail.nju.edu.cn", "root@localhost"] {
            assert!(valid_email(good), "{good}");
        }
        for bad in ["a@b", "@b.cn", "a b@c.cn", "a@.cn", "a@b..cn", "plain"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
