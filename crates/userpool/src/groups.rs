//! Groups: roles and precedence, membership.

use crate::*;

impl UserPools<'_> {
    pub(crate) fn group_json(row: &cognate_store::GroupRow, record: &GroupRecord) -> Value {
        let mut out = json!({
            "GroupName": row.name,
            "UserPoolId": row.pool_id,
            "CreationDate": row.created_at,
            "LastModifiedDate": row.updated_at,
        });
        if let Some(o) = out.as_object_mut() {
            if let Some(d) = &record.description {
                o.insert("Description".into(), json!(d));
            }
            if let Some(p) = record.precedence {
                o.insert("Precedence".into(), json!(p));
            }
            if let Some(r) = &record.role_arn {
                o.insert("RoleArn".into(), json!(r));
            }
        }
        out
    }

    pub(crate) async fn group_or_error(
        &self,
        pool_id: &str,
        name: &str,
    ) -> Result<(cognate_store::GroupRow, GroupRecord), ApiError> {
        let row = self
            .store
            .pool_group(pool_id, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| err("ResourceNotFoundException", "Group not found."))?;
        let record: GroupRecord = serde_json::from_str(&row.record).map_err(internal)?;
        Ok((row, record))
    }

    pub(crate) async fn create_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let record = GroupRecord {
            description: str_of(input, "Description").map(str::to_owned),
            precedence: input.get("Precedence").and_then(Value::as_i64),
            role_arn: str_of(input, "RoleArn").map(str::to_owned),
        };
        let row = cognate_store::GroupRow {
            pool_id: pool.pool_id.clone(),
            name: required(input, "GroupName")?.to_owned(),
            record: serde_json::to_string(&record).map_err(internal)?,
            created_at: self.now(),
            updated_at: self.now(),
        };
        match self.store.create_pool_group(&row).await {
            Ok(()) => Ok(json!({ "Group": Self::group_json(&row, &record) })),
            Err(cognate_store::StoreError::Conflict) => Err(err(
                "GroupExistsException",
                "A group with the name already exists.",
            )),
            Err(e) => Err(internal(e)),
        }
    }

    pub(crate) async fn get_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (row, record) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        Ok(json!({ "Group": Self::group_json(&row, &record) }))
    }

    pub(crate) async fn update_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (mut row, mut record) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        if let Some(d) = str_of(input, "Description") {
            record.description = Some(d.to_owned());
        }
        if let Some(p) = input.get("Precedence").and_then(Value::as_i64) {
            record.precedence = Some(p);
        }
        if let Some(r) = str_of(input, "RoleArn") {
            record.role_arn = Some(r.to_owned());
        }
        let expected = std::mem::replace(
            &mut row.record,
            serde_json::to_string(&record).map_err(internal)?,
        );
        row.updated_at = self.now();
        swapped(self.store.update_pool_group(&row, &expected).await)?;
        Ok(json!({ "Group": Self::group_json(&row, &record) }))
    }

    pub(crate) async fn delete_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        if !self
            .store
            .delete_pool_group(&pool.pool_id, required(input, "GroupName")?)
            .await
            .map_err(internal)?
        {
            return Err(err("ResourceNotFoundException", "Group not found."));
        }
        Ok(json!({}))
    }

    pub(crate) async fn list_groups(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let max = input.get("Limit").and_then(Value::as_i64).unwrap_or(60);
        let mut rows = self
            .store
            .pool_groups(
                &pool.pool_id,
                str_of(input, "NextToken").unwrap_or(""),
                max + 1,
            )
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let mut groups = Vec::new();
        for r in &rows {
            let record: GroupRecord = serde_json::from_str(&r.record).map_err(internal)?;
            groups.push(Self::group_json(r, &record));
        }
        let mut out = json!({ "Groups": groups });
        if more && let (Some(last), Some(o)) = (rows.last(), out.as_object_mut()) {
            o.insert("NextToken".into(), json!(last.name));
        }
        Ok(out)
    }

    pub(crate) async fn set_membership(&self, input: &Value, add: bool) -> Result<Value, ApiError> {
        let (pool, _, row, _) = self.admin_user(input).await?;
        let (group, _) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        if add {
            self.store
                .add_pool_group_member(&pool.pool_id, &group.name, &row.username_key)
                .await
        } else {
            self.store
                .remove_pool_group_member(&pool.pool_id, &group.name, &row.username_key)
                .await
        }
        .map_err(internal)?;
        Ok(json!({}))
    }

    pub(crate) async fn list_users_in_group(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (group, _) = self
            .group_or_error(&pool.pool_id, required(input, "GroupName")?)
            .await?;
        let max = input.get("Limit").and_then(Value::as_i64).unwrap_or(60);
        let mut rows = self
            .store
            .pool_group_members(
                &pool.pool_id,
                &group.name,
                str_of(input, "NextToken").unwrap_or(""),
                max + 1,
            )
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let mut users = Vec::new();
        for r in &rows {
            let record: UserRecord = serde_json::from_str(&r.record).map_err(internal)?;
            users.push(Self::user_json(r, &record, "Attributes"));
        }
        let mut out = json!({ "Users": users });
        if more && let (Some(last), Some(o)) = (rows.last(), out.as_object_mut()) {
            o.insert("NextToken".into(), json!(last.username_key));
        }
        Ok(out)
    }

    pub(crate) async fn groups_for_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _, row, _) = self.admin_user(input).await?;
        let rows = self
            .store
            .pool_groups_of_user(&pool.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        let mut groups = Vec::new();
        for r in &rows {
            let record: GroupRecord = serde_json::from_str(&r.record).map_err(internal)?;
            groups.push(Self::group_json(r, &record));
        }
        Ok(json!({ "Groups": groups }))
    }
}
