//! The virtual clusters a user may be given.

use command::values::VirtualCluster;

use super::errors::PaiError;

/// The virtual clusters that exist. `default` always exists, and until virtual clusters
/// are managed (an aggregate and a read model of their own) it is the only one. Every check
/// of a virtual cluster's existence asks here, so that their read model replaces this list
/// in one place.
pub fn existing() -> &'static [&'static str] {
    &["default"]
}

/// Each of `names` exists; else 400 `NoVirtualClusterError` for the first that does not.
pub fn check_exist(names: &[VirtualCluster]) -> Result<(), PaiError> {
    match names
        .iter()
        .find(|name| !existing().contains(&name.as_str()))
    {
        Some(missing) => Err(PaiError::no_virtual_cluster(missing.as_str())),
        None => Ok(()),
    }
}
