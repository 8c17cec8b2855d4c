//! Validated values of the domain: a value that exists is valid.
//!
//! Every text that reaches a command, an event or a query passes through one of these
//! types, so the rules are written once for all five front doors: lengths, allowed
//! characters, and no control characters other than tab and newline (NUL never: no store
//! downstream can hold it). A door only turns its request fields into these values and says
//! an [`InvalidValue`] in its own words.

mod accounting;
mod course;
mod identity;
mod rule;

pub use accounting::{
    ACCOUNT_DESCRIPTION_MAX, ACCOUNT_NAME_MAX, ACCOUNT_TYPE_MAX, ACCOUNTING_EMAIL_MAX,
    AccountDescription, AccountName, AccountType, AccountingEmail, CLUSTER_NAME_MAX, ClusterName,
    INT_MAX, INT_MIN, SLURM_NAME_MAX, SLURM_USERNAME_MAX, SlurmName, SlurmUsername, Su,
    UserMetadata, su_number, su_rounded,
};
pub use course::{CourseName, Dataset, Datasets, Description, GpuCount, ImageRef, Level};
pub use identity::{
    Comment, Email, ExternalName, GroupDescription, GroupExtension, GroupName, LdapUid, Password,
    Phone, RealName, Username, VirtualCluster, parse_status,
};
pub use rule::{InvalidValue, Problem, check_text};
