//! IAM rows: entities (users, groups, roles, managed policies, OIDC providers), group
//! membership, attachments, inline policies and managed-policy versions.
//! Names are unique per account and kind regardless of case, as in IAM.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{AccessKeyRow, Result, Store};

/// A user, group, role, managed policy or OIDC provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRow {
    pub account_id: String,
    /// `user`, `group`, `role`, `policy`, `oidc-provider`.
    pub kind: String,
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    /// Kind-specific attributes as a JSON document.
    pub attrs: String,
    pub created_at: i64,
}

/// An inline policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicyRow {
    pub policy_name: String,
    pub document: String,
}

/// A managed policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRow {
    pub policy_arn: String,
    pub version_id: String,
    pub document: String,
    pub created_at: i64,
}

fn key(name: &str) -> String {
    name.to_lowercase()
}

const ENTITY_COLUMNS: &str = "account_id, kind, name, id, path, arn, attrs, created_at";

fn entity(r: &AnyRow) -> Result<EntityRow> {
    Ok(EntityRow {
        account_id: r.try_get("account_id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        id: r.try_get("id")?,
        path: r.try_get("path")?,
        arn: r.try_get("arn")?,
        attrs: r.try_get("attrs")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_entity(&self, e: &EntityRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO iam_entities (account_id, kind, name_key, name, id, path, arn, attrs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&e.account_id)
        .bind(&e.kind)
        .bind(key(&e.name))
        .bind(&e.name)
        .bind(&e.id)
        .bind(&e.path)
        .bind(&e.arn)
        .bind(&e.attrs)
        .bind(e.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn entity(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<EntityRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENTITY_COLUMNS} FROM iam_entities WHERE account_id = $1 AND kind = $2 AND name_key = $3"
        ));
        let row = sqlx::query(sql)
            .bind(account_id)
            .bind(kind)
            .bind(key(name))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entity).transpose()
    }

    pub async fn entity_by_arn(&self, arn: &str) -> Result<Option<EntityRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENTITY_COLUMNS} FROM iam_entities WHERE arn = $1"
        ));
        let row = sqlx::query(sql)
            .bind(arn)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entity).transpose()
    }

    /// Entities of a kind whose path starts with `path_prefix`, by name, after `after` (a
    /// name, for paging), at most `limit`.
    pub async fn list_entities(
        &self,
        account_id: &str,
        kind: &str,
        path_prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EntityRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENTITY_COLUMNS} FROM iam_entities WHERE account_id = $1 AND kind = $2 \
             AND substr(path, 1, length($3)) = $3 AND name_key > $4 ORDER BY name_key LIMIT $5"
        ));
        let rows = sqlx::query(sql)
            .bind(account_id)
            .bind(kind)
            .bind(path_prefix)
            .bind(after.map(key).unwrap_or_default())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entity).collect()
    }

    /// Replaces an entity's attributes; false if it does not exist.
    /// Replaces an entity's attributes if they are still `expected` (a compare-and-swap):
    /// false when another change came first or the entity is gone.
    pub async fn update_entity_attrs(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
        expected: &str,
        attrs: &str,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE iam_entities SET attrs = $1 WHERE account_id = $2 AND kind = $3 AND name_key = $4 AND attrs = $5")
            .bind(attrs)
            .bind(account_id)
            .bind(kind)
            .bind(key(name))
            .bind(expected)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_entity(&self, account_id: &str, kind: &str, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM iam_entities WHERE account_id = $1 AND kind = $2 AND name_key = $3",
        )
        .bind(account_id)
        .bind(kind)
        .bind(key(name))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn add_group_member(&self, account_id: &str, group: &str, user: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO iam_group_members (account_id, group_key, user_key) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, group_key, user_key) DO NOTHING",
        )
        .bind(account_id)
        .bind(key(group))
        .bind(key(user))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_group_member(
        &self,
        account_id: &str,
        group: &str,
        user: &str,
    ) -> Result<bool> {
        let done = sqlx::query("DELETE FROM iam_group_members WHERE account_id = $1 AND group_key = $2 AND user_key = $3")
            .bind(account_id)
            .bind(key(group))
            .bind(key(user))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The users in a group, by name.
    pub async fn group_members(&self, account_id: &str, group: &str) -> Result<Vec<EntityRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM iam_entities e JOIN iam_group_members m \
             ON m.account_id = e.account_id AND m.user_key = e.name_key \
             WHERE e.account_id = $1 AND e.kind = 'user' AND m.group_key = $2 ORDER BY e.name_key",
            ENTITY_COLUMNS
                .split(", ")
                .map(|c| format!("e.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let rows = sqlx::query(sql)
            .bind(account_id)
            .bind(key(group))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entity).collect()
    }

    /// The groups a user is in, by name.
    pub async fn groups_for_user(&self, account_id: &str, user: &str) -> Result<Vec<EntityRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM iam_entities e JOIN iam_group_members m \
             ON m.account_id = e.account_id AND m.group_key = e.name_key \
             WHERE e.account_id = $1 AND e.kind = 'group' AND m.user_key = $2 ORDER BY e.name_key",
            ENTITY_COLUMNS
                .split(", ")
                .map(|c| format!("e.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let rows = sqlx::query(sql)
            .bind(account_id)
            .bind(key(user))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entity).collect()
    }

    /// Removes every membership of a group or of a user (`kind` is `group` or `user`).
    pub async fn remove_memberships(&self, account_id: &str, kind: &str, name: &str) -> Result<()> {
        let sql = if kind == "group" {
            "DELETE FROM iam_group_members WHERE account_id = $1 AND group_key = $2"
        } else {
            "DELETE FROM iam_group_members WHERE account_id = $1 AND user_key = $2"
        };
        sqlx::query(sql)
            .bind(account_id)
            .bind(key(name))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn attach_policy(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO iam_attachments (account_id, kind, name_key, policy_arn) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, kind, name_key, policy_arn) DO NOTHING",
        )
        .bind(account_id)
        .bind(kind)
        .bind(key(name))
        .bind(policy_arn)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn detach_policy(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
        policy_arn: &str,
    ) -> Result<bool> {
        let done = sqlx::query("DELETE FROM iam_attachments WHERE account_id = $1 AND kind = $2 AND name_key = $3 AND policy_arn = $4")
            .bind(account_id)
            .bind(kind)
            .bind(key(name))
            .bind(policy_arn)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The ARNs of the managed policies attached to a user, group or role.
    pub async fn attached_policies(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT policy_arn FROM iam_attachments WHERE account_id = $1 AND kind = $2 AND name_key = $3 ORDER BY policy_arn")
            .bind(account_id)
            .bind(kind)
            .bind(key(name))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("policy_arn")?)).collect()
    }

    /// How many users, groups and roles a managed policy is attached to.
    pub async fn attachment_count(&self, policy_arn: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM iam_attachments WHERE policy_arn = $1")
            .bind(policy_arn)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates or replaces an inline policy.
    pub async fn put_inline_policy(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
        policy: &InlinePolicyRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO iam_inline_policies (account_id, kind, name_key, policy_key, policy_name, document) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, kind, name_key, policy_key) \
             DO UPDATE SET policy_name = excluded.policy_name, document = excluded.document",
        )
        .bind(account_id)
        .bind(kind)
        .bind(key(name))
        .bind(key(&policy.policy_name))
        .bind(&policy.policy_name)
        .bind(&policy.document)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every inline policy of a user, group or role, by name.
    pub async fn inline_policies(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Vec<InlinePolicyRow>> {
        let rows = sqlx::query(
            "SELECT policy_name, document FROM iam_inline_policies \
             WHERE account_id = $1 AND kind = $2 AND name_key = $3 ORDER BY policy_key",
        )
        .bind(account_id)
        .bind(kind)
        .bind(key(name))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InlinePolicyRow {
                    policy_name: r.try_get("policy_name")?,
                    document: r.try_get("document")?,
                })
            })
            .collect()
    }

    pub async fn delete_inline_policy(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
        policy_name: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM iam_inline_policies WHERE account_id = $1 AND kind = $2 AND name_key = $3 AND policy_key = $4",
        )
        .bind(account_id)
        .bind(kind)
        .bind(key(name))
        .bind(key(policy_name))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds a managed policy version and moves the policy's attributes from `expected` to
    /// `attrs` in one transaction: false (and nothing written) when the version exists or the
    /// attributes changed meanwhile.
    pub async fn add_policy_version(
        &self,
        v: &PolicyVersionRow,
        policy: (&str, &str),
        expected: &str,
        attrs: &str,
    ) -> Result<bool> {
        let (account_id, name) = policy;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO iam_policy_versions (policy_arn, version_id, document, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&v.policy_arn)
            .bind(&v.version_id)
            .bind(&v.document)
            .bind(v.created_at)
            .execute(&mut *tx)
            .await;
        match inserted.map_err(crate::StoreError::from) {
            Err(crate::StoreError::Conflict) => return Ok(false),
            other => other?,
        };
        let moved = sqlx::query("UPDATE iam_entities SET attrs = $1 WHERE account_id = $2 AND kind = 'policy' AND name_key = $3 AND attrs = $4")
            .bind(attrs)
            .bind(account_id)
            .bind(key(name))
            .bind(expected)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn put_policy_version(&self, v: &PolicyVersionRow) -> Result<()> {
        sqlx::query("INSERT INTO iam_policy_versions (policy_arn, version_id, document, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&v.policy_arn)
            .bind(&v.version_id)
            .bind(&v.document)
            .bind(v.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A managed policy's versions, oldest first.
    pub async fn policy_versions(&self, policy_arn: &str) -> Result<Vec<PolicyVersionRow>> {
        let rows = sqlx::query(
            "SELECT policy_arn, version_id, document, created_at FROM iam_policy_versions \
             WHERE policy_arn = $1 ORDER BY created_at, version_id",
        )
        .bind(policy_arn)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PolicyVersionRow {
                    policy_arn: r.try_get("policy_arn")?,
                    version_id: r.try_get("version_id")?,
                    document: r.try_get("document")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn delete_policy_version(&self, policy_arn: &str, version_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM iam_policy_versions WHERE policy_arn = $1 AND version_id = $2",
        )
        .bind(policy_arn)
        .bind(version_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The access keys of an IAM user (`None`: the account root's).
    pub async fn access_keys_of(
        &self,
        account_id: &str,
        user_name: Option<&str>,
    ) -> Result<Vec<AccessKeyRow>> {
        let rows = sqlx::query(
            "SELECT access_key_id, account_id, user_name, secret_sealed, status, created_at FROM access_keys \
             WHERE account_id = $1 AND COALESCE(user_name, '') = $2 ORDER BY created_at, access_key_id",
        )
        .bind(account_id)
        .bind(user_name.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::access_key_row).collect()
    }

    /// Records a use of an access key, keeping the latest if several nodes report.
    pub async fn record_key_use(
        &self,
        access_key_id: &str,
        at: i64,
        service: &str,
        region: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE access_keys SET last_used_at = $1, last_used_service = $2, last_used_region = $3 \
             WHERE access_key_id = $4 AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(at)
        .bind(service)
        .bind(region)
        .bind(access_key_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When (unix seconds), for which service and in which region a key was last used.
    pub async fn key_last_used(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(i64, String, String)>> {
        let row = sqlx::query(
            "SELECT last_used_at, last_used_service, last_used_region FROM access_keys WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let at: Option<i64> = row.try_get("last_used_at")?;
        let service: Option<String> = row.try_get("last_used_service")?;
        let region: Option<String> = row.try_get("last_used_region")?;
        Ok(match (at, service, region) {
            (Some(at), Some(service), Some(region)) => Some((at, service, region)),
            _ => None,
        })
    }

    pub async fn set_access_key_status(&self, access_key_id: &str, status: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE access_keys SET status = $1 WHERE access_key_id = $2")
            .bind(status)
            .bind(access_key_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1")
            .bind(access_key_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
