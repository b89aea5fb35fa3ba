//! The migration sets, one per backend, embedded in the binary.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr as _};

use crate::Backend;

/// Every migration exists for both backends under the same file name, so the two sets
/// cannot drift apart in number or order.
macro_rules! migrations {
    ($(($version:literal, $file:literal)),* $(,)?) => {
        const SQLITE: &[(i64, &str, &str)] =
            &[$(($version, $file, include_str!(concat!("../migrations/sqlite/", $file, ".sql")))),*];
        const POSTGRES: &[(i64, &str, &str)] =
            &[$(($version, $file, include_str!(concat!("../migrations/postgres/", $file, ".sql")))),*];
    };
}

migrations!(
    (1, "0001_foundation"),
    (2, "0002_iam"),
    (3, "0003_organizations"),
    (4, "0004_access_key_last_used"),
    (5, "0005_s3"),
    (6, "0006_user_pools"),
    (7, "0007_identity_pools"),
    (8, "0008_user_versions"),
    (9, "0009_refresh_token_rotation"),
    (10, "0010_bucket_cors"),
    (11, "0011_sync"),
    (12, "0012_sns"),
    (13, "0013_s3_versions")
);

pub(crate) fn migrator(backend: Backend) -> Migrator {
    let set = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    Migrator::with_migrations(
        set.iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration's statements with comments and layout removed, and the one spelling the
    /// dialects must differ in (binary columns) made the same.
    fn normalized(sql: &str) -> String {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
            .replace("BYTEA", "BLOB")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The two migration sets are twins: the same statements, but for binary column types and
    /// PostgreSQL's byte-wise collation of S3 keys (SQLite compares TEXT byte-wise already).
    #[test]
    fn sqlite_and_postgres_migrations_agree() {
        assert_eq!(SQLITE.len(), POSTGRES.len());
        for ((v, name, sqlite), (pv, pname, postgres)) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!((v, name), (pv, pname));
            let postgres = normalized(postgres).replace(" COLLATE \"C\"", "");
            assert_eq!(
                normalized(sqlite),
                postgres,
                "{name} differs between the backends"
            );
        }
    }
}
