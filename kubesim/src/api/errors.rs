//! Failures answered to a client, each rendered as a `Status` object with the reason and
//! code the Kubernetes API server uses, because clients branch on `reason`.

use serde_json::{Value, json};

use crate::resources::Resource;

/// One field-level cause of an `Invalid` answer.
#[derive(Debug, Clone)]
pub struct Cause {
    pub field: String,
    pub message: String,
    pub reason: &'static str,
}

/// A failed request, as a `Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status; boxed to keep results small.
    pub details: Option<Box<Details>>,
}

/// What a Status says about the object concerned.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, res: &Resource, name: &str) -> Self {
        let d = self.details.get_or_insert_default();
        d.name = Some(name.to_string());
        d.group = Some(res.group.to_string());
        d.kind = Some(res.plural.to_string());
        self
    }

    pub fn not_found(res: &Resource, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", res.qualified_kind(), name),
        )
        .about(res, name)
    }

    /// A path or kind the simulator does not serve.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(res: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", res.qualified_kind(), name),
        )
        .about(res, name)
    }

    pub fn conflict(res: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified_kind(),
                name
            ),
        )
        .about(res, name)
    }

    pub fn invalid(res: &Resource, name: &str, causes: Vec<Cause>) -> Self {
        let detail = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>()
            .join(", ");
        let kind = if res.group.is_empty() {
            res.kind.to_string()
        } else {
            format!("{}.{}", res.kind, res.group)
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {detail}"),
        )
        .about(res, name);
        let d = e.details.get_or_insert_default();
        d.kind = Some(res.kind.to_string());
        d.causes = causes;
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml; got {content_type:?}"
            ),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "the request body is too large",
        )
    }

    /// The `Status` object clients parse.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        let d = self.details.as_deref().cloned().unwrap_or_default();
        if let Some(name) = &d.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = &d.group
            && !group.is_empty()
        {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &d.kind {
            details.insert("kind".into(), json!(kind));
        }
        if !d.causes.is_empty() {
            details.insert(
                "causes".into(),
                Value::Array(
                    d.causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect(),
                ),
            );
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// Shorthand for a cause.
pub fn cause(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Cause {
    Cause {
        field: field.into(),
        message: message.into(),
        reason,
    }
}

impl ApiError {
    /// A patch that cannot be applied to the object (a failed `test`, a missing path).
    pub fn unprocessable_patch(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
}
