//! SNS mobile push rows: platform applications and their endpoints.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRow {
    pub arn: String,
    pub account_id: String,
    pub name: String,
    pub platform: String,
    /// Attributes other than the credential, as JSON.
    pub attributes: String,
    /// `PlatformCredential`, sealed under the master key.
    pub credential_sealed: Option<Vec<u8>>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    pub arn: String,
    pub application_arn: String,
    pub token: String,
    /// `Enabled`, `CustomUserData` and the like, as JSON.
    pub attributes: String,
}

macro_rules! application_columns {
    () => {
        "arn, account_id, name, platform, attributes, credential_sealed, created_ms"
    };
}

fn application(r: &AnyRow) -> Result<ApplicationRow> {
    Ok(ApplicationRow {
        arn: r.try_get("arn")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        platform: r.try_get("platform")?,
        attributes: r.try_get("attributes")?,
        credential_sealed: r.try_get("credential_sealed")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn endpoint(r: &AnyRow) -> Result<EndpointRow> {
    Ok(EndpointRow {
        arn: r.try_get("arn")?,
        application_arn: r.try_get("application_arn")?,
        token: r.try_get("token")?,
        attributes: r.try_get("attributes")?,
    })
}

impl Store {
    /// Creates an application, or replaces the one with its ARN (CreatePlatformApplication
    /// of an existing name updates it, as SNS does).
    pub async fn put_sns_application(&self, row: &ApplicationRow) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO sns_applications (",
            application_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (arn) DO UPDATE SET \
             attributes = excluded.attributes, credential_sealed = excluded.credential_sealed"
        ))
        .bind(&row.arn)
        .bind(&row.account_id)
        .bind(&row.name)
        .bind(&row.platform)
        .bind(&row.attributes)
        .bind(row.credential_sealed.as_deref())
        .bind(row.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn sns_application(&self, arn: &str) -> Result<Option<ApplicationRow>> {
        sqlx::query(concat!(
            "SELECT ",
            application_columns!(),
            " FROM sns_applications WHERE arn = $1"
        ))
        .bind(arn)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(application)
        .transpose()
    }

    /// An account's applications after `after` (by ARN), at most `limit`.
    pub async fn sns_applications(
        &self,
        account_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ApplicationRow>> {
        sqlx::query(concat!(
            "SELECT ",
            application_columns!(),
            " FROM sns_applications WHERE account_id = $1 AND arn > $2 ORDER BY arn LIMIT $3"
        ))
        .bind(account_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(application)
        .collect()
    }

    /// Replaces an application's attributes if they are still `expected`; false otherwise.
    pub async fn update_sns_application(
        &self,
        arn: &str,
        expected: &str,
        attributes: &str,
        credential_sealed: Option<&[u8]>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sns_applications SET attributes = $2, credential_sealed = $3 \
             WHERE arn = $1 AND attributes = $4",
        )
        .bind(arn)
        .bind(attributes)
        .bind(credential_sealed)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an application with its endpoints; false if there was none.
    pub async fn delete_sns_application(&self, arn: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sns_applications WHERE arn = $1")
            .bind(arn)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds an endpoint; `Conflict` if the application has one with its token (or its ARN).
    pub async fn create_sns_endpoint(&self, row: &EndpointRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sns_endpoints (arn, application_arn, token, attributes) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&row.arn)
        .bind(&row.application_arn)
        .bind(&row.token)
        .bind(&row.attributes)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }

    pub async fn sns_endpoint(&self, arn: &str) -> Result<Option<EndpointRow>> {
        sqlx::query(
            "SELECT arn, application_arn, token, attributes FROM sns_endpoints WHERE arn = $1",
        )
        .bind(arn)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(endpoint)
        .transpose()
    }

    pub async fn sns_endpoint_by_token(
        &self,
        application_arn: &str,
        token: &str,
    ) -> Result<Option<EndpointRow>> {
        sqlx::query(
            "SELECT arn, application_arn, token, attributes FROM sns_endpoints \
             WHERE application_arn = $1 AND token = $2",
        )
        .bind(application_arn)
        .bind(token)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(endpoint)
        .transpose()
    }

    /// An application's endpoints after `after` (by ARN), at most `limit`.
    pub async fn sns_endpoints(
        &self,
        application_arn: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<EndpointRow>> {
        sqlx::query(
            "SELECT arn, application_arn, token, attributes FROM sns_endpoints \
             WHERE application_arn = $1 AND arn > $2 ORDER BY arn LIMIT $3",
        )
        .bind(application_arn)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(endpoint)
        .collect()
    }

    /// Replaces an endpoint's token and attributes if its attributes are still `expected`;
    /// false otherwise (or when another endpoint of the application has that token).
    pub async fn update_sns_endpoint(
        &self,
        arn: &str,
        expected: &str,
        token: &str,
        attributes: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sns_endpoints SET token = $2, attributes = $3 WHERE arn = $1 AND attributes = $4",
        )
        .bind(arn)
        .bind(token)
        .bind(attributes)
        .bind(expected)
        .execute(&self.pool)
        .await;
        match done {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) => match StoreError::from(e) {
                StoreError::Conflict => Ok(false),
                other => Err(other),
            },
        }
    }

    pub async fn delete_sns_endpoint(&self, arn: &str) -> Result<()> {
        sqlx::query("DELETE FROM sns_endpoints WHERE arn = $1")
            .bind(arn)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
