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

    pub(crate) fn identity_json(row: &IdentityRow, logins: &[Login]) -> Value {
        let mut providers: Vec<&str> = logins.iter().map(|l| l.provider.as_str()).collect();
        providers.dedup();
        json!({
            "IdentityId": row.identity_id,
            "Logins": providers,
            "CreationDate": row.created_at,
            "LastModifiedDate": row.updated_at,
        })
    }

    pub(crate) async fn describe_identity(&self, input: &Value) -> Result<Value, ApiError> {
        let id = required(input, "IdentityId")?;
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
        Ok(Self::identity_json(&row, &logins))
    }

    pub(crate) async fn list_identities(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let hide_disabled = input
            .get("HideDisabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut after = str_of(input, "NextToken").unwrap_or("").to_owned();
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
                out.push(Self::identity_json(row, logins));
            }
            if exhausted {
                break;
            }
        }
        let mut result = json!({ "IdentityPoolId": pool.row.pool_id, "Identities": out });
        if let (Some(token), Some(o)) = (next, result.as_object_mut()) {
            o.insert("NextToken".into(), json!(token));
        }
        Ok(result)
    }

    pub(crate) async fn delete_identities(&self, input: &Value) -> Result<Value, ApiError> {
        let mut unprocessed = Vec::new();
        for id in input
            .get("IdentityIdsToDelete")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            // Deleting what is not there (or not the caller's to see) succeeds, as on Cognito.
            let owned = match self.store.identity(id).await.map_err(internal)? {
                Some((row, _)) => self.pool(&row.pool_id).await.is_ok(),
                None => false,
            };
            if owned && !self.store.delete_identity(id).await.map_err(internal)? {
                unprocessed.push(json!({ "IdentityId": id, "ErrorCode": "InternalServerError" }));
            }
        }
        Ok(json!({ "UnprocessedIdentityIds": unprocessed }))
    }
}
