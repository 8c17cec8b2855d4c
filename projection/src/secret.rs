//! A statement parameter that never reaches a log.
//!
//! tokio-postgres logs every statement's parameters at debug level, so a password hash, a
//! key or a one-time code passed as is would be in the log of anyone who turns debugging
//! on. Wrapped in [`Secret`], it prints as `<secret>` and is sent to the server unchanged.

use std::{error::Error, fmt};

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

pub struct Secret<T>(pub T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl<T: ToSql> ToSql for Secret<T> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_nothing_of_itself() {
        assert_eq!(format!("{:?}", Secret("hunter2")), "<secret>");
        assert!(<Secret<&str> as ToSql>::accepts(&Type::TEXT));
        assert!(<Secret<&[u8]> as ToSql>::accepts(&Type::BYTEA));
    }
}
