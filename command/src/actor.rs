//! Who acts, as every event's `meta.actor` names them: a user (`user:<username>`), a part
//! of Gantry itself (`system:<worker>`, `system:bootstrap`) or a Slurm cluster reporting a
//! finished job (`epilogue:<cluster>`). The prefix tells an admin reading the log at once
//! whether a person, a worker or a cluster did it; this module is the one place that spells
//! them.
//!
//! Decision: idempotency keys stay scoped to the bare username (`api::context`), so keys
//! sent before actors had a prefix still meet the events they produced.

/// The actor of a user's request.
pub fn user(username: &str) -> String {
    format!("user:{username}")
}

/// The actor of a worker (or another role of Gantry) acting on its own.
pub fn system(worker: &str) -> String {
    format!("system:{worker}")
}

/// The actor of a Slurm cluster's job-completion report.
pub fn epilogue(cluster: &str) -> String {
    format!("epilogue:{cluster}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn actors_name_their_kind() {
        assert_eq!(super::user("jimmy"), "user:jimmy");
        assert_eq!(super::system("course-cleanup"), "system:course-cleanup");
        assert_eq!(super::epilogue("savio"), "epilogue:savio");
    }
}
