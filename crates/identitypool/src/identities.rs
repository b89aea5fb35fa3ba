//! Identities, administratively: describe, list, delete.

use crate::*;

impl IdentityPools<'_> {
    /// The pools of the identities that exist (what administrative operations on identities
    /// are authorized on).
    pub async fn pools_of_identities(&self, ids: &[&str]) -> Result<Vec<String>, ApiError> {
        let mut pools = Vec::new();
        for id in ids {
            if let Some((row, _)) = self.store.identity(id).await.map_err(internal)? {
                pools.push(row.pool_id);
            }
        }
        Ok(pools)
    }

    pub(crate) fn identity_shape(
        row: &IdentityRow,
        logins: &[Login],
    ) -> shapes::IdentityDescription {
        let mut providers: Vec<String> = logins.iter().map(|l| l.provider.clone()).collect();
        providers.dedup();
        shapes::IdentityDescription {
            identity_id: Some(row.identity_id.clone()),
            logins: Some(providers),
            creation_date: Some(row.created_at as f64),
            last_modified_date: Some(row.updated_at as f64),
        }
    }

    pub(crate) async fn describe_identity(
        &self,
        input: shapes::DescribeIdentityInput,
    ) -> Result<shapes::IdentityDescription, ApiError> {
        let id = input.identity_id.as_str();
        let (row, logins) = self
            .store
            .identity(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| identity_not_found(id))?;
        // The caller's account must own the identity's pool.
        self.pool(&row.pool_id)
            .await
            .map_err(|_| identity_not_found(id))?;
        Ok(Self::identity_shape(&row, &logins))
    }

    pub(crate) async fn list_identities(
        &self,
        input: shapes::ListIdentitiesInput,
    ) -> Result<shapes::ListIdentitiesResponse, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let max = input.max_results;
        let hide_disabled = input.hide_disabled.unwrap_or(false);
        let mut after = input.next_token.unwrap_or_default();
        let mut out = Vec::new();
        let mut next = None;
        'pages: loop {
            let rows = self
                .store
                .identities_of_pool(&pool.row.pool_id, &after, max + 1)
                .await
                .map_err(internal)?;
            let exhausted = (rows.len() as i64) <= max;
            for (row, logins) in &rows {
                if out.len() as i64 == max {
                    next = Some(after.clone());
                    break 'pages;
                }
                after.clone_from(&row.identity_id);
                if hide_disabled && is_disabled(row) {
                    continue;
                }
                out.push(Self::identity_shape(row, logins));
            }
            if exhausted {
                break;
            }
        }
        Ok(shapes::ListIdentitiesResponse {
            identity_pool_id: Some(pool.row.pool_id.clone()),
            identities: Some(out),
            next_token: next,
        })
    }

    pub(crate) async fn delete_identities(
        &self,
        input: shapes::DeleteIdentitiesInput,
    ) -> Result<shapes::DeleteIdentitiesResponse, ApiError> {
        let mut unprocessed = Vec::new();
        for id in &input.identity_ids_to_delete {
            // Deleting what is not there (or not the caller's to see) succeeds, as on Cognito.
            let owned = match self.store.identity(id).await.map_err(internal)? {
                Some((row, _)) => self.pool(&row.pool_id).await.is_ok(),
                None => false,
            };
            if owned && !self.store.delete_identity(id).await.map_err(internal)? {
                unprocessed.push(shapes::UnprocessedIdentityId {
                    identity_id: Some(id.clone()),
                    error_code: Some("InternalServerError".to_owned()),
                });
            }
        }
        Ok(shapes::DeleteIdentitiesResponse {
            unprocessed_identity_ids: Some(unprocessed),
        })
    }
}
