//! The one error type of the workers, and which of its cases are worth waiting out.
//!
//! A transient error says nothing about the event: the cluster, the log or the database is
//! away or busy for now, so the same work is tried again later, for as long as it takes. A
//! permanent error is the event's or the code's fault: trying again gives the same answer,
//! so it is recorded (parked) instead.

use std::error::Error as _;

/// Why a reconcile (or a resync, or parking an event) did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("event log: {0}")]
    Log(#[from] command::StoreError),
    /// The parked-events record cannot be written now (its database is away).
    #[error("cannot park the event: {0}")]
    Parking(String),
    /// The message is not an envelope, or its event cannot be decoded by this build.
    #[error("undecodable event: {0}")]
    Undecodable(String),
    /// A well-formed event that a reconciler cannot act on.
    #[error("invalid event: {0}")]
    Invalid(String),
}

impl Error {
    /// Whether waiting and trying again can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube(e) => kube_is_transient(e),
            Error::Log(command::StoreError::Unavailable(_))
            | Error::Log(command::StoreError::WrongLastSequence) => true,
            Error::Log(command::StoreError::Corrupt { .. }) => false,
            Error::Parking(_) => true,
            Error::Undecodable(_) | Error::Invalid(_) => false,
        }
    }

    /// The error and its chain of causes, for logs: "client error (Connect): tcp connect
    /// error: Connection refused" says more than its first link.
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            let link = c.to_string();
            if !text.contains(&link) {
                text.push_str(": ");
                text.push_str(&link);
            }
            cause = c.source();
        }
        text
    }

    /// A short, bounded name of the cause, for metric labels.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(e) => kube_label(e),
            Error::Log(command::StoreError::Corrupt { .. }) => "corrupt_log",
            Error::Log(_) => "event_log",
            Error::Parking(_) => "parking",
            Error::Undecodable(_) => "undecodable",
            Error::Invalid(_) => "invalid",
        }
    }
}

/// Transient: the API server could not be reached or answered in time, failed on its side
/// (5xx), asked to slow down (429) or lost a race (409 Conflict). Everything else (other
/// 4xx, a request that cannot be built, a body that cannot be read) is permanent.
fn kube_is_transient(e: &kube::Error) -> bool {
    matches!(
        kube_label(e),
        "unreachable" | "timeout" | "server_error" | "throttled" | "conflict" | "auth"
    )
}

fn kube_label(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(status) => match status.code {
            408 => "timeout",
            409 => "conflict",
            429 => "throttled",
            500..=599 => "server_error",
            // A Status without a code: go by its reason.
            0 => match status.reason.as_str() {
                "Conflict" => "conflict",
                "TooManyRequests" => "throttled",
                "Timeout" | "ServerTimeout" => "timeout",
                "InternalError" | "ServiceUnavailable" => "server_error",
                _ => "client_error",
            },
            _ if status.is_conflict() => "conflict",
            _ => "client_error",
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            if timed_out(e) {
                "timeout"
            } else {
                "unreachable"
            }
        }
        // Refreshing credentials (an exec plugin, a token file) can fail while the control
        // plane is being replaced; a wrong kubeconfig shows up as a 401/403 instead.
        kube::Error::Auth(_) => "auth",
        _ => "client_error",
    }
}

/// Whether an I/O timeout is anywhere in the error's chain of causes.
fn timed_out(e: &kube::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        if c.to_string().contains("deadline has elapsed") {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> Error {
        Error::Kube(kube::Error::Api(
            Status::failure("refused", reason).with_code(code).boxed(),
        ))
    }

    #[test]
    fn an_unreachable_api_server_is_transient() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::Kube(kube::Error::Service(Box::new(refused)));
        assert!(e.is_transient());
        assert_eq!(e.metric_label(), "unreachable");
        let read = Error::Kube(kube::Error::ReadEvents(std::io::Error::other("reset")));
        assert!(read.is_transient());
    }

    #[tokio::test]
    async fn what_the_real_client_says_of_a_closed_port_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let client = kube::Client::try_from(kube::Config::new(url)).unwrap();
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client, "default");
        let e = Error::from(api.list(&Default::default()).await.unwrap_err());
        assert!(e.is_transient(), "{e:?}");
        assert_eq!(e.metric_label(), "unreachable");
        assert!(e.describe().contains("refused"), "{}", e.describe());
    }

    #[test]
    fn a_timeout_is_transient_and_named_so() {
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let e = Error::Kube(kube::Error::Service(Box::new(slow)));
        assert!(e.is_transient());
        assert_eq!(e.metric_label(), "timeout");
        assert!(api(408, "Timeout").is_transient());
    }

    #[test]
    fn server_errors_conflicts_and_throttling_are_transient() {
        for (code, reason, label) in [
            (500, "InternalError", "server_error"),
            (503, "ServiceUnavailable", "server_error"),
            (504, "Timeout", "server_error"),
            (409, "Conflict", "conflict"),
            (429, "TooManyRequests", "throttled"),
            (0, "Conflict", "conflict"),
            (0, "ServiceUnavailable", "server_error"),
        ] {
            let e = api(code, reason);
            assert!(e.is_transient(), "{code} {reason}");
            assert_eq!(e.metric_label(), label, "{code} {reason}");
        }
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for (code, reason) in [
            (400, "BadRequest"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "NotFound"),
            (422, "Invalid"),
            (0, "Invalid"),
        ] {
            let e = api(code, reason);
            assert!(!e.is_transient(), "{code} {reason}");
            assert_eq!(e.metric_label(), "client_error");
        }
        let body = serde_json::from_str::<u32>("x").unwrap_err();
        assert!(!Error::Kube(kube::Error::SerdeError(body)).is_transient());
    }

    #[test]
    fn the_log_and_the_parking_lot_being_away_is_transient() {
        assert!(Error::Log(command::StoreError::Unavailable("down".into())).is_transient());
        assert!(Error::Parking("database down".into()).is_transient());
        let corrupt = Error::Log(command::StoreError::Corrupt {
            seq: 3,
            reason: "x".into(),
        });
        assert!(!corrupt.is_transient());
        assert!(!Error::Undecodable("not json".into()).is_transient());
        assert!(!Error::Invalid("no id".into()).is_transient());
    }
}
