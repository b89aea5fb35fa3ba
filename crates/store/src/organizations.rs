//! AWS Organizations rows: organizations, their member accounts, CreateAccount requests.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{AccountRow, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    pub org_id: String,
    pub management_account_id: String,
    pub feature_set: String,
    pub created_at: i64,
}

/// A member account with how and when it joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub account: AccountRow,
    pub joined_method: String,
    pub joined_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAccountRequestRow {
    pub request_id: String,
    pub org_id: String,
    pub account_name: String,
    pub account_id: Option<String>,
    pub state: String,
    pub requested_at: i64,
    pub completed_at: Option<i64>,
}

fn organization(r: &AnyRow) -> Result<OrganizationRow> {
    Ok(OrganizationRow {
        org_id: r.try_get("org_id")?,
        management_account_id: r.try_get("management_account_id")?,
        feature_set: r.try_get("feature_set")?,
        created_at: r.try_get("created_at")?,
    })
}

fn member(r: &AnyRow) -> Result<MemberRow> {
    Ok(MemberRow {
        account: AccountRow {
            account_id: r.try_get("account_id")?,
            name: r.try_get("name")?,
            email: r.try_get("email")?,
            created_at: r.try_get("created_at")?,
        },
        joined_method: r.try_get("joined_method")?,
        joined_at: r.try_get("joined_at")?,
    })
}

const MEMBER_SELECT: &str = "SELECT a.account_id, a.name, a.email, a.created_at, m.joined_method, m.joined_at \
     FROM accounts a JOIN organization_accounts m ON m.account_id = a.account_id";

impl Store {
    /// Creates an organization with its management account as the first member.
    pub async fn create_organization(&self, org: &OrganizationRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO organizations (org_id, management_account_id, feature_set, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&org.org_id)
            .bind(&org.management_account_id)
            .bind(&org.feature_set)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO organization_accounts (account_id, org_id, joined_method, joined_at) VALUES ($1, $2, 'INVITED', $3)")
            .bind(&org.management_account_id)
            .bind(&org.org_id)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The organization an account belongs to.
    pub async fn organization_of(&self, account_id: &str) -> Result<Option<OrganizationRow>> {
        let row = sqlx::query(
            "SELECT o.org_id, o.management_account_id, o.feature_set, o.created_at FROM organizations o \
             JOIN organization_accounts m ON m.org_id = o.org_id WHERE m.account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(organization).transpose()
    }

    /// Creates a member account in an organization, in one transaction.
    pub async fn create_member_account(&self, org_id: &str, account: &AccountRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (account_id, name, email, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&account.account_id)
        .bind(&account.name)
        .bind(&account.email)
        .bind(account.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO organization_accounts (account_id, org_id, joined_method, joined_at) VALUES ($1, $2, 'CREATED', $3)")
            .bind(&account.account_id)
            .bind(org_id)
            .bind(account.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The accounts of an organization, oldest first.
    pub async fn organization_accounts(&self, org_id: &str) -> Result<Vec<MemberRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY m.joined_at, a.account_id"
        ));
        let rows = sqlx::query(sql).bind(org_id).fetch_all(&self.pool).await?;
        rows.iter().map(member).collect()
    }

    pub async fn put_create_account_request(&self, r: &CreateAccountRequestRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO create_account_requests (request_id, org_id, account_name, account_id, state, requested_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.request_id)
        .bind(&r.org_id)
        .bind(&r.account_name)
        .bind(&r.account_id)
        .bind(&r.state)
        .bind(r.requested_at)
        .bind(r.completed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn create_account_request(
        &self,
        request_id: &str,
    ) -> Result<Option<CreateAccountRequestRow>> {
        let row = sqlx::query(
            "SELECT request_id, org_id, account_name, account_id, state, requested_at, completed_at \
             FROM create_account_requests WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CreateAccountRequestRow {
                request_id: r.try_get("request_id")?,
                org_id: r.try_get("org_id")?,
                account_name: r.try_get("account_name")?,
                account_id: r.try_get("account_id")?,
                state: r.try_get("state")?,
                requested_at: r.try_get("requested_at")?,
                completed_at: r.try_get("completed_at")?,
            })
        })
        .transpose()
    }
}
