//! Cognito user pool rows: pools, app clients, users (their secrets sealed by the caller),
//! username aliases, token signing keys and refresh tokens (by hash).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::group::GroupWrite;
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    pub pool_id: String,
    pub account_id: String,
    pub name: String,
    /// The pool's settings as JSON.
    pub config: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    pub pool_id: String,
    pub secret_sealed: Option<Vec<u8>>,
    pub config: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub pool_id: String,
    /// The username as the pool compares it (lower-cased in case-insensitive pools).
    pub username_key: String,
    pub sub: String,
    /// Attributes and status as JSON.
    pub record: String,
    /// Password hash and pending codes, sealed under the master key.
    pub secrets_sealed: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Rises by one with every change; a change names the version it started from.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub pool_id: String,
    pub kid: String,
    pub key_sealed: Vec<u8>,
    /// Unix milliseconds: the newest key signs.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRow {
    /// Hex SHA-256 of the token: the token itself is never stored.
    pub token_hash: String,
    pub pool_id: String,
    pub username_key: String,
    pub client_id: String,
    pub origin_jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The token this one replaced by rotation, and when (unix milliseconds).
    pub previous_hash: Option<String>,
    pub rotated_at_ms: Option<i64>,
    /// The current token itself, sealed, after a rotation: what a retry within the grace
    /// period is answered with.
    pub current_sealed: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub pool_id: String,
    pub name: String,
    /// Description, precedence and role as JSON.
    pub record: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn group(r: &AnyRow) -> Result<GroupRow> {
    Ok(GroupRow {
        pool_id: r.try_get("pool_id")?,
        name: r.try_get("name")?,
        record: r.try_get("record")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Why a user could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub enum UserConflict {
    Username,
    /// Another user already has this alias (`email:…`, `phone_number:…`).
    Alias(String),
    /// The user changed since the version the update started from: nothing was written.
    Stale,
}

fn pool(r: &AnyRow) -> Result<PoolRow> {
    Ok(PoolRow {
        pool_id: r.try_get("pool_id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        config: r.try_get("config")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn client(r: &AnyRow) -> Result<ClientRow> {
    Ok(ClientRow {
        client_id: r.try_get("client_id")?,
        pool_id: r.try_get("pool_id")?,
        secret_sealed: r.try_get("secret_sealed")?,
        config: r.try_get("config")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn user(r: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        pool_id: r.try_get("pool_id")?,
        username_key: r.try_get("username_key")?,
        sub: r.try_get("sub")?,
        record: r.try_get("record")?,
        secrets_sealed: r.try_get("secrets_sealed")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

fn refresh(r: &AnyRow) -> Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        token_hash: r.try_get("token_hash")?,
        pool_id: r.try_get("pool_id")?,
        username_key: r.try_get("username_key")?,
        client_id: r.try_get("client_id")?,
        origin_jti: r.try_get("origin_jti")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        previous_hash: r.try_get("previous_hash")?,
        rotated_at_ms: r.try_get("rotated_at_ms")?,
        current_sealed: r.try_get("current_sealed")?,
    })
}

async fn put_aliases(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &UserRow,
    aliases: &[String],
) -> Result<std::result::Result<(), UserConflict>> {
    sqlx::query("DELETE FROM userpool_aliases WHERE pool_id = $1 AND username_key = $2")
        .bind(&row.pool_id)
        .bind(&row.username_key)
        .execute(&mut **tx)
        .await?;
    for alias in aliases {
        let done = sqlx::query(
            "INSERT INTO userpool_aliases (pool_id, alias, username_key) VALUES ($1, $2, $3)",
        )
        .bind(&row.pool_id)
        .bind(alias)
        .bind(&row.username_key)
        .execute(&mut **tx)
        .await;
        match done {
            Ok(_) => {}
            Err(e) => match StoreError::from(e) {
                StoreError::Conflict => return Ok(Err(UserConflict::Alias(alias.clone()))),
                other => return Err(other),
            },
        }
    }
    Ok(Ok(()))
}

impl Store {
    /// Creates a pool with its first token signing key.
    pub async fn create_pool(&self, row: &PoolRow, key: &SigningKeyRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO userpool_pools (pool_id, account_id, name, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&row.pool_id)
            .bind(&row.account_id)
            .bind(&row.name)
            .bind(&row.config)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO userpool_keys (pool_id, kid, key_sealed, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.pool_id)
            .bind(&key.kid)
            .bind(&key.key_sealed)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_pool(&self, pool_id: &str) -> Result<Option<PoolRow>> {
        sqlx::query("SELECT pool_id, account_id, name, config, created_at, updated_at FROM userpool_pools WHERE pool_id = $1")
            .bind(pool_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(pool)
            .transpose()
    }

    /// An account's pools after `after` (by id), at most `limit`.
    pub async fn user_pools_of(
        &self,
        account_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<PoolRow>> {
        sqlx::query("SELECT pool_id, account_id, name, config, created_at, updated_at FROM userpool_pools WHERE account_id = $1 AND pool_id > $2 ORDER BY pool_id LIMIT $3")
            .bind(account_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(pool)
            .collect()
    }

    /// Replaces a pool's settings; false when there is no such pool.
    /// Replaces a pool's settings if they are still `expected` (a compare-and-swap); false
    /// when they changed meanwhile or the pool is gone.
    pub async fn update_user_pool(
        &self,
        pool_id: &str,
        expected: &str,
        config: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE userpool_pools SET config = $2, updated_at = $3 WHERE pool_id = $1 AND config = $4",
        )
        .bind(pool_id)
        .bind(config)
        .bind(now)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a pool and everything in it; false when there was no such pool.
    pub async fn delete_user_pool(&self, pool_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM userpool_pools WHERE pool_id = $1")
            .bind(pool_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn signing_keys(&self, pool_id: &str) -> Result<Vec<SigningKeyRow>> {
        sqlx::query("SELECT pool_id, kid, key_sealed, created_at FROM userpool_keys WHERE pool_id = $1 ORDER BY created_at, kid")
            .bind(pool_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(SigningKeyRow {
                    pool_id: r.try_get("pool_id")?,
                    kid: r.try_get("kid")?,
                    key_sealed: r.try_get("key_sealed")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Adds a signing key to a pool (key rotation); false when the pool is gone.
    pub async fn add_signing_key(&self, key: &SigningKeyRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO userpool_keys (pool_id, kid, key_sealed, created_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM userpool_pools WHERE pool_id = $1)",
        )
        .bind(&key.pool_id)
        .bind(&key.kid)
        .bind(&key.key_sealed)
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_signing_key(&self, pool_id: &str, kid: &str) -> Result<()> {
        sqlx::query("DELETE FROM userpool_keys WHERE pool_id = $1 AND kid = $2")
            .bind(pool_id)
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates an app client; false when its pool is gone.
    pub async fn create_app_client(&self, row: &ClientRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO userpool_clients (client_id, pool_id, secret_sealed, config, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM userpool_pools WHERE pool_id = $2)",
        )
        .bind(&row.client_id)
        .bind(&row.pool_id)
        .bind(&row.secret_sealed)
        .bind(&row.config)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn app_client(&self, client_id: &str) -> Result<Option<ClientRow>> {
        sqlx::query("SELECT client_id, pool_id, secret_sealed, config, created_at, updated_at FROM userpool_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client)
            .transpose()
    }

    pub async fn app_clients_of(
        &self,
        pool_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ClientRow>> {
        sqlx::query("SELECT client_id, pool_id, secret_sealed, config, created_at, updated_at FROM userpool_clients WHERE pool_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3")
            .bind(pool_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client)
            .collect()
    }

    /// Replaces a client's settings if they are still `expected`; false when they changed
    /// meanwhile or the client is gone.
    pub async fn update_app_client(&self, row: &ClientRow, expected: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE userpool_clients SET config = $2, updated_at = $3 WHERE client_id = $1 AND config = $4",
        )
        .bind(&row.client_id)
        .bind(&row.config)
        .bind(row.updated_at)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_app_client(&self, client_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM userpool_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates a user with its aliases (`email:…`), atomically.
    pub async fn create_pool_user(
        &self,
        row: &UserRow,
        aliases: &[String],
    ) -> Result<std::result::Result<(), UserConflict>> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO userpool_users (pool_id, username_key, sub, record, secrets_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.pool_id)
        .bind(&row.username_key)
        .bind(&row.sub)
        .bind(&row.record)
        .bind(&row.secrets_sealed)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return match StoreError::from(e) {
                StoreError::Conflict => Ok(Err(UserConflict::Username)),
                other => Err(other),
            };
        }
        if let Err(conflict) = put_aliases(&mut tx, row, aliases).await? {
            return Ok(Err(conflict));
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Replaces a user's record, secrets and aliases if the user is still at `row.version`
    /// (then at the next one): `Ok(Ok(false))` when the user is gone, `Ok(Err(Stale))` when
    /// another change came first and nothing was written.
    pub async fn update_pool_user(
        &self,
        row: &UserRow,
        aliases: &[String],
    ) -> Result<std::result::Result<bool, UserConflict>> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE userpool_users SET record = $3, secrets_sealed = $4, updated_at = $5, \
             version = version + 1 WHERE pool_id = $1 AND username_key = $2 AND version = $6",
        )
        .bind(&row.pool_id)
        .bind(&row.username_key)
        .bind(&row.record)
        .bind(&row.secrets_sealed)
        .bind(row.updated_at)
        .bind(row.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query(
                "SELECT 1 FROM userpool_users WHERE pool_id = $1 AND username_key = $2",
            )
            .bind(&row.pool_id)
            .bind(&row.username_key)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            return Ok(if exists {
                Err(UserConflict::Stale)
            } else {
                Ok(false)
            });
        }
        if let Err(conflict) = put_aliases(&mut tx, row, aliases).await? {
            return Ok(Err(conflict));
        }
        tx.commit().await?;
        Ok(Ok(true))
    }

    /// A durable write as costly as a user's update, for answering about a user that does not
    /// exist as if it did (`slot` is bounded by the caller).
    pub async fn decoy_write(&self, pool_id: &str, slot: i64, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO userpool_decoys (pool_id, slot, touched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (pool_id, slot) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(pool_id)
        .bind(slot)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn pool_user(&self, pool_id: &str, username_key: &str) -> Result<Option<UserRow>> {
        sqlx::query("SELECT pool_id, username_key, sub, record, secrets_sealed, created_at, updated_at, version FROM userpool_users WHERE pool_id = $1 AND username_key = $2")
            .bind(pool_id)
            .bind(username_key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// The user holding an alias (`email:…`) or whose `sub` it is (`sub:…`).
    pub async fn pool_user_by_alias(&self, pool_id: &str, alias: &str) -> Result<Option<UserRow>> {
        if let Some(sub) = alias.strip_prefix("sub:") {
            return sqlx::query("SELECT pool_id, username_key, sub, record, secrets_sealed, created_at, updated_at, version FROM userpool_users WHERE pool_id = $1 AND sub = $2")
                .bind(pool_id)
                .bind(sub)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(user)
                .transpose();
        }
        sqlx::query("SELECT u.pool_id, u.username_key, u.sub, u.record, u.secrets_sealed, u.created_at, u.updated_at, u.version \
                     FROM userpool_users u JOIN userpool_aliases a ON a.pool_id = u.pool_id AND a.username_key = u.username_key \
                     WHERE a.pool_id = $1 AND a.alias = $2")
            .bind(pool_id)
            .bind(alias)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// A pool's users after `after` (by username key), at most `limit`.
    pub async fn pool_users(&self, pool_id: &str, after: &str, limit: i64) -> Result<Vec<UserRow>> {
        sqlx::query("SELECT pool_id, username_key, sub, record, secrets_sealed, created_at, updated_at, version FROM userpool_users WHERE pool_id = $1 AND username_key > $2 ORDER BY username_key LIMIT $3")
            .bind(pool_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user)
            .collect()
    }

    /// Deletes a user with its aliases and refresh tokens; false when there was none.
    pub async fn delete_pool_user(&self, pool_id: &str, username_key: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("DELETE FROM userpool_users WHERE pool_id = $1 AND username_key = $2")
                .bind(pool_id)
                .bind(username_key)
                .execute(&mut *tx)
                .await?;
        for table in [
            "DELETE FROM userpool_aliases WHERE pool_id = $1 AND username_key = $2",
            "DELETE FROM userpool_refresh_tokens WHERE pool_id = $1 AND username_key = $2",
            "DELETE FROM userpool_group_members WHERE pool_id = $1 AND username_key = $2",
        ] {
            sqlx::query(table)
                .bind(pool_id)
                .bind(username_key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a new sign-in's refresh token. Sign-ins arriving together are committed together
    /// (group commit), so one fsync carries them all.
    pub async fn insert_refresh_token(&self, row: &RefreshTokenRow) -> Result<()> {
        self.writers
            .refresh_tokens
            .write(&self.pool, RefreshInsert(row.clone()))
            .await
    }

    /// The sign-in whose refresh token, or whose token before the last rotation, has this
    /// hash.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRow>> {
        sqlx::query("SELECT token_hash, pool_id, username_key, client_id, origin_jti, issued_at, expires_at, previous_hash, rotated_at_ms, current_sealed FROM userpool_refresh_tokens WHERE token_hash = $1 OR previous_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(refresh)
            .transpose()
    }

    /// Rotates a sign-in's refresh token (compare-and-swap on its current hash): `new_hash`
    /// (its token sealed in `new_sealed`) replaces `current_hash`, which is remembered as the
    /// previous token with `rotated_at_ms`. False when the current token is no longer
    /// `current_hash` (rotated or revoked meanwhile). One row changes, so a revocation is
    /// either before (nothing rotates) or after (the new token goes too).
    pub async fn rotate_refresh_token(
        &self,
        current_hash: &str,
        new_hash: &str,
        new_sealed: &[u8],
        rotated_at_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE userpool_refresh_tokens SET token_hash = $1, previous_hash = $4, rotated_at_ms = $3, \
             current_sealed = $2 WHERE token_hash = $4",
        )
        .bind(new_hash)
        .bind(new_sealed)
        .bind(rotated_at_ms)
        .bind(current_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user with `sub`, and whether the sign-in `origin_jti` is still live, in one query
    /// (every request with an access token asks both).
    pub async fn pool_user_for_token(
        &self,
        pool_id: &str,
        sub: &str,
        origin_jti: &str,
    ) -> Result<Option<(UserRow, bool)>> {
        let row = sqlx::query(
            "SELECT pool_id, username_key, sub, record, secrets_sealed, created_at, updated_at, version, \
             (SELECT COUNT(*) FROM userpool_refresh_tokens WHERE origin_jti = $3) AS live \
             FROM userpool_users WHERE pool_id = $1 AND sub = $2",
        )
        .bind(pool_id)
        .bind(sub)
        .bind(origin_jti)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => {
                let live: i64 = r.try_get("live")?;
                Ok(Some((user(&r)?, live > 0)))
            }
            None => Ok(None),
        }
    }

    /// Whether the sign-in that issued a token (its `origin_jti`) is still live: its refresh
    /// token has been neither revoked nor signed out.
    pub async fn sign_in_live(&self, origin_jti: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM userpool_refresh_tokens WHERE origin_jti = $1")
                .bind(origin_jti)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Revokes one sign-in's refresh token (named by its current hash); false when it was
    /// unknown.
    pub async fn revoke_refresh_token(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM userpool_refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends one sign-in: its refresh token goes, and with it the access tokens it issued.
    pub async fn revoke_sign_in(&self, origin_jti: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM userpool_refresh_tokens WHERE origin_jti = $1")
            .bind(origin_jti)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Revokes every refresh token of a user (global sign-out).
    pub async fn revoke_user_refresh_tokens(
        &self,
        pool_id: &str,
        username_key: &str,
    ) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM userpool_refresh_tokens WHERE pool_id = $1 AND username_key = $2",
        )
        .bind(pool_id)
        .bind(username_key)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Creates a group; `Conflict` when the name is taken in the pool.
    pub async fn create_pool_group(&self, row: &GroupRow) -> Result<()> {
        sqlx::query("INSERT INTO userpool_groups (pool_id, name, record, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&row.pool_id)
            .bind(&row.name)
            .bind(&row.record)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn pool_group(&self, pool_id: &str, name: &str) -> Result<Option<GroupRow>> {
        sqlx::query("SELECT pool_id, name, record, created_at, updated_at FROM userpool_groups WHERE pool_id = $1 AND name = $2")
            .bind(pool_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(group)
            .transpose()
    }

    pub async fn pool_groups(
        &self,
        pool_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<GroupRow>> {
        sqlx::query("SELECT pool_id, name, record, created_at, updated_at FROM userpool_groups WHERE pool_id = $1 AND name > $2 ORDER BY name LIMIT $3")
            .bind(pool_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(group)
            .collect()
    }

    /// Replaces a group's settings if they are still `expected`; false when they changed
    /// meanwhile or the group is gone.
    pub async fn update_pool_group(&self, row: &GroupRow, expected: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE userpool_groups SET record = $3, updated_at = $4 WHERE pool_id = $1 AND name = $2 AND record = $5")
            .bind(&row.pool_id)
            .bind(&row.name)
            .bind(&row.record)
            .bind(row.updated_at)
            .bind(expected)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a group and its memberships; false when there was none.
    pub async fn delete_pool_group(&self, pool_id: &str, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM userpool_groups WHERE pool_id = $1 AND name = $2")
            .bind(pool_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM userpool_group_members WHERE pool_id = $1 AND group_name = $2")
            .bind(pool_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds a user to a group (idempotent).
    pub async fn add_pool_group_member(
        &self,
        pool_id: &str,
        name: &str,
        username_key: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO userpool_group_members (pool_id, group_name, username_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(pool_id)
            .bind(name)
            .bind(username_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn remove_pool_group_member(
        &self,
        pool_id: &str,
        name: &str,
        username_key: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM userpool_group_members WHERE pool_id = $1 AND group_name = $2 AND username_key = $3")
            .bind(pool_id)
            .bind(name)
            .bind(username_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The groups a user belongs to, by name.
    pub async fn pool_groups_of_user(
        &self,
        pool_id: &str,
        username_key: &str,
    ) -> Result<Vec<GroupRow>> {
        sqlx::query("SELECT g.pool_id, g.name, g.record, g.created_at, g.updated_at FROM userpool_groups g \
                     JOIN userpool_group_members m ON m.pool_id = g.pool_id AND m.group_name = g.name \
                     WHERE m.pool_id = $1 AND m.username_key = $2 ORDER BY g.name")
            .bind(pool_id)
            .bind(username_key)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(group)
            .collect()
    }

    /// A group's members after `after` (by username key), at most `limit`.
    pub async fn pool_group_members(
        &self,
        pool_id: &str,
        name: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<UserRow>> {
        sqlx::query("SELECT u.pool_id, u.username_key, u.sub, u.record, u.secrets_sealed, u.created_at, u.updated_at, u.version \
                     FROM userpool_users u JOIN userpool_group_members m ON m.pool_id = u.pool_id AND m.username_key = u.username_key \
                     WHERE m.pool_id = $1 AND m.group_name = $2 AND u.username_key > $3 ORDER BY u.username_key LIMIT $4")
            .bind(pool_id)
            .bind(name)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user)
            .collect()
    }
}

/// A new sign-in's refresh-token row, for the group committer.
pub(crate) struct RefreshInsert(RefreshTokenRow);

impl GroupWrite for RefreshInsert {
    type Outcome = ();

    async fn apply(&self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        let row = &self.0;
        sqlx::query("INSERT INTO userpool_refresh_tokens (token_hash, pool_id, username_key, client_id, origin_jti, issued_at, expires_at, previous_hash, rotated_at_ms, current_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&row.token_hash)
            .bind(&row.pool_id)
            .bind(&row.username_key)
            .bind(&row.client_id)
            .bind(&row.origin_jti)
            .bind(row.issued_at)
            .bind(row.expires_at)
            .bind(&row.previous_hash)
            .bind(row.rotated_at_ms)
            .bind(&row.current_sealed)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    fn keeps(_: &()) -> bool {
        true
    }
}
