//! Cognito identity pool rows: pools, identities, the logins linked to them, and the signing
//! keys of the built-in OpenID provider.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPoolRow {
    /// `<region>:<uuid>`.
    pub pool_id: String,
    pub account_id: String,
    pub name: String,
    /// Settings, roles, role mappings, principal tag maps and tags as JSON.
    pub config: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    /// `<region>:<uuid>`.
    pub identity_id: String,
    pub pool_id: String,
    /// State (such as being disabled) as JSON.
    pub record: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A login linked to an identity: the provider's name and the user's id at that provider.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Login {
    pub provider: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKeyRow {
    pub kid: String,
    pub key_sealed: Vec<u8>,
    /// Unix milliseconds: the newest key signs.
    pub created_at: i64,
}

fn identity_pool(r: &AnyRow) -> Result<IdentityPoolRow> {
    Ok(IdentityPoolRow {
        pool_id: r.try_get("pool_id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        config: r.try_get("config")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn identity(r: &AnyRow) -> Result<IdentityRow> {
    Ok(IdentityRow {
        identity_id: r.try_get("identity_id")?,
        pool_id: r.try_get("pool_id")?,
        record: r.try_get("record")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

macro_rules! pool_columns {
    () => {
        "pool_id, account_id, name, config, created_at, updated_at"
    };
}
macro_rules! identity_columns {
    () => {
        "identity_id, pool_id, record, created_at, updated_at"
    };
}

impl Store {
    pub async fn create_identity_pool(&self, row: &IdentityPoolRow) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO identity_pools (",
            pool_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&row.pool_id)
        .bind(&row.account_id)
        .bind(&row.name)
        .bind(&row.config)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn identity_pool(&self, pool_id: &str) -> Result<Option<IdentityPoolRow>> {
        sqlx::query(concat!(
            "SELECT ",
            pool_columns!(),
            " FROM identity_pools WHERE pool_id = $1"
        ))
        .bind(pool_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(identity_pool)
        .transpose()
    }

    /// An account's pools in id order, after `after`, at most `limit`.
    pub async fn identity_pools_of(
        &self,
        account_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<IdentityPoolRow>> {
        sqlx::query(concat!(
            "SELECT ",
            pool_columns!(),
            " FROM identity_pools WHERE account_id = $1 AND pool_id > $2 ORDER BY pool_id LIMIT $3"
        ))
        .bind(account_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(identity_pool)
        .collect()
    }

    /// Replaces a pool's name and settings if its settings are still `expected` (what the
    /// change was computed from); false if they are not, or the pool does not exist.
    pub async fn update_identity_pool(
        &self,
        row: &IdentityPoolRow,
        expected: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE identity_pools SET name = $1, config = $2, updated_at = $3 WHERE pool_id = $4 AND config = $5",
        )
        .bind(&row.name)
        .bind(&row.config)
        .bind(row.updated_at)
        .bind(&row.pool_id)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a pool with its identities and logins; false if it did not exist.
    pub async fn delete_identity_pool(&self, pool_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM identity_pools WHERE pool_id = $1")
            .bind(pool_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The identity a login is linked to in a pool.
    pub async fn identity_of_login(&self, pool_id: &str, login: &Login) -> Result<Option<String>> {
        Ok(sqlx::query(
            "SELECT identity_id FROM identity_logins WHERE pool_id = $1 AND provider = $2 AND subject = $3",
        )
        .bind(pool_id)
        .bind(&login.provider)
        .bind(&login.subject)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("identity_id"))
        .transpose()?)
    }

    /// An identity and its logins (ordered by provider).
    pub async fn identity(&self, identity_id: &str) -> Result<Option<(IdentityRow, Vec<Login>)>> {
        let Some(row) = sqlx::query(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identity_ids WHERE identity_id = $1"
        ))
        .bind(identity_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let row = identity(&row)?;
        let logins = self.logins_of(identity_id).await?;
        Ok(Some((row, logins)))
    }

    async fn logins_of(&self, identity_id: &str) -> Result<Vec<Login>> {
        sqlx::query(
            "SELECT provider, subject FROM identity_logins WHERE identity_id = $1 ORDER BY provider, subject",
        )
        .bind(identity_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Login {
                provider: r.try_get("provider")?,
                subject: r.try_get("subject")?,
            })
        })
        .collect()
    }

    /// A pool's identities in id order after `after`, at most `limit`, with their logins.
    pub async fn identities_of_pool(
        &self,
        pool_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(IdentityRow, Vec<Login>)>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identity_ids WHERE pool_id = $1 AND identity_id > $2 ORDER BY identity_id LIMIT $3"
        ))
        .bind(pool_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = identity(row)?;
            let logins = self.logins_of(&row.identity_id).await?;
            out.push((row, logins));
        }
        Ok(out)
    }

    /// Creates `new` (when given) and links `logins` to `identity_id`, in one transaction.
    /// `Conflict` when one of the logins is already linked to an identity, when the identity
    /// already has a login from one of their providers (one login per provider), or when an
    /// existing `identity_id` has meanwhile been deleted or merged away.
    ///
    /// `multi` names the one provider an identity may hold several logins of (the pool's
    /// developer provider, whose users can be merged into one identity).
    pub async fn link_logins(
        &self,
        new: Option<&IdentityRow>,
        identity_id: &str,
        pool_id: &str,
        logins: &[Login],
        now: i64,
        multi: Option<&str>,
    ) -> Result<()> {
        self.link(new, identity_id, pool_id, logins, now, multi, false)
            .await
    }

    /// Links logins to an identity that has none (a guest signing in); `Conflict` if it has
    /// any by the time the transaction holds it.
    pub async fn link_logins_to_guest(
        &self,
        identity_id: &str,
        pool_id: &str,
        logins: &[Login],
        now: i64,
    ) -> Result<()> {
        self.link(None, identity_id, pool_id, logins, now, None, true)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn link(
        &self,
        new: Option<&IdentityRow>,
        identity_id: &str,
        pool_id: &str,
        logins: &[Login],
        now: i64,
        multi: Option<&str>,
        guest_only: bool,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        match new {
            Some(row) => {
                sqlx::query(concat!(
                    "INSERT INTO identity_ids (",
                    identity_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5)"
                ))
                .bind(&row.identity_id)
                .bind(&row.pool_id)
                .bind(&row.record)
                .bind(row.created_at)
                .bind(row.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let done = sqlx::query(
                    "UPDATE identity_ids SET updated_at = $1 WHERE identity_id = $2 AND pool_id = $3",
                )
                .bind(now)
                .bind(identity_id)
                .bind(pool_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict);
                }
                // The update holds the identity's row (PostgreSQL) or the database (SQLite):
                // concurrent links to one identity are decided one after the other.
                let linked: Vec<String> =
                    sqlx::query("SELECT provider FROM identity_logins WHERE identity_id = $1")
                        .bind(identity_id)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get("provider"))
                        .collect::<std::result::Result<_, _>>()?;
                if (guest_only && !linked.is_empty())
                    || logins
                        .iter()
                        .any(|l| Some(l.provider.as_str()) != multi && linked.contains(&l.provider))
                {
                    return Err(StoreError::Conflict);
                }
            }
        }
        for login in logins {
            sqlx::query(
                "INSERT INTO identity_logins (pool_id, provider, subject, identity_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(pool_id)
            .bind(&login.provider)
            .bind(&login.subject)
            .bind(identity_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Unlinks logins from an identity; returns how many were linked to it. An identity left
    /// with no login gets `emptied_record` (disabled) in the same transaction.
    pub async fn unlink_logins(
        &self,
        identity_id: &str,
        logins: &[Login],
        now: i64,
        emptied_record: &str,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // Holding the identity first orders concurrent unlinks and links of it.
        sqlx::query("UPDATE identity_ids SET updated_at = $1 WHERE identity_id = $2")
            .bind(now)
            .bind(identity_id)
            .execute(&mut *tx)
            .await?;
        let mut removed = 0;
        for login in logins {
            removed += sqlx::query(
                "DELETE FROM identity_logins WHERE identity_id = $1 AND provider = $2 AND subject = $3",
            )
            .bind(identity_id)
            .bind(&login.provider)
            .bind(&login.subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let remaining: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM identity_logins WHERE identity_id = $1")
                .bind(identity_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if remaining == 0 {
            sqlx::query("UPDATE identity_ids SET record = $1 WHERE identity_id = $2")
                .bind(emptied_record)
                .bind(identity_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Moves every login and Cognito Sync dataset of `from` to `to` and deletes `from`, in one
    /// transaction. `Conflict`
    /// if either is gone or they hold logins of one provider other than `multi`.
    pub async fn merge_identities(
        &self,
        from: &str,
        to: &str,
        now: i64,
        multi: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Both identities are held first, in one order, so opposite merges cannot deadlock.
        let mut both = [from, to];
        both.sort_unstable();
        for id in both {
            let held =
                sqlx::query("UPDATE identity_ids SET updated_at = $1 WHERE identity_id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if held == 0 {
                return Err(StoreError::Conflict);
            }
        }
        let mut providers: Vec<String> = sqlx::query(
            "SELECT provider FROM identity_logins WHERE identity_id = $1 OR identity_id = $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("provider"))
        .collect::<std::result::Result<_, _>>()?;
        providers.retain(|p| Some(p.as_str()) != multi);
        let count = providers.len();
        providers.sort();
        providers.dedup();
        if providers.len() != count {
            return Err(StoreError::Conflict);
        }
        sqlx::query("UPDATE identity_logins SET identity_id = $1 WHERE identity_id = $2")
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        // Cognito Sync: the live datasets of `from` follow it as `<name>.<from>`, reporting the
        // merge on `<name>` (their records follow by the foreign key's ON UPDATE CASCADE).
        sqlx::query("DELETE FROM sync_datasets WHERE identity_id = $1 AND live = 0")
            .bind(from)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sync_datasets SET identity_id = $1, merged_from = dataset_name, \
             dataset_name = dataset_name || '.' || $2 WHERE identity_id = $2",
        )
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        // Its push devices follow it too, with their subscriptions (an endpoint both had is
        // kept once, as the identity that stays registered it).
        sqlx::query(
            "DELETE FROM sync_devices WHERE identity_id = $1 AND endpoint_arn IN \
             (SELECT endpoint_arn FROM sync_devices WHERE identity_id = $2)",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sync_devices SET identity_id = $1 WHERE identity_id = $2")
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sync_subscriptions (identity_id, dataset_name, device_id) \
             SELECT CAST($1 AS TEXT), dataset_name, device_id FROM sync_subscriptions WHERE identity_id = $2 \
             ON CONFLICT (identity_id, dataset_name, device_id) DO NOTHING",
        )
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM identity_ids WHERE identity_id = $1")
            .bind(from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an identity with its logins; false if it did not exist.
    pub async fn delete_identity(&self, identity_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM identity_ids WHERE identity_id = $1")
            .bind(identity_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The built-in OpenID provider's signing keys, oldest first.
    pub async fn identity_keys(&self) -> Result<Vec<IdentityKeyRow>> {
        sqlx::query("SELECT kid, key_sealed, created_at FROM identity_signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(IdentityKeyRow {
                    kid: r.try_get("kid")?,
                    key_sealed: r.try_get("key_sealed")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Adds a signing key; `Conflict` if its kid exists.
    pub async fn add_identity_key(&self, row: &IdentityKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO identity_signing_keys (kid, key_sealed, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&row.kid)
        .bind(&row.key_sealed)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
