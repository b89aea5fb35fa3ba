//! User pools: create, describe, update (compare-and-swap), delete, list, custom attributes.

use crate::*;

impl UserPools<'_> {
    /// A pool's tags (`UserPoolTags`), for `aws:ResourceTag/…`; `None` when the caller's
    /// account has no such pool.
    pub async fn pool_tags(&self, pool_id: &str) -> Option<Value> {
        let (_, config) = self.pool(pool_id).await.ok()?;
        Some(
            config
                .extra
                .get("UserPoolTags")
                .cloned()
                .unwrap_or_else(|| json!({})),
        )
    }

    pub(crate) fn pool_arn(&self, pool: &PoolRow) -> String {
        format!(
            "arn:aws:cognito-idp:{}:{}:userpool/{}",
            self.region, pool.account_id, pool.pool_id
        )
    }

    /// A pool of the caller's account (administrative operations) or any pool (public ones,
    /// which name a client of it).
    pub(crate) async fn pool(&self, pool_id: &str) -> Result<(PoolRow, PoolConfig), ApiError> {
        let not_found = || {
            err(
                "ResourceNotFoundException",
                format!("User pool {pool_id} does not exist."),
            )
        };
        let cached = match self.keys.pool(pool_id) {
            Ok(p) => p,
            Err(generation) => {
                let row = self
                    .store
                    .user_pool(pool_id)
                    .await
                    .map_err(internal)?
                    .ok_or_else(not_found)?;
                let mut config: PoolConfig = serde_json::from_str(&row.config).map_err(internal)?;
                config.adopt_stored_schema();
                let pool = Arc::new((row, config));
                self.keys.insert_pool(generation, pool.clone());
                pool
            }
        };
        if self.account.is_some_and(|a| a != cached.0.account_id) {
            return Err(not_found());
        }
        Ok((cached.0.clone(), cached.1.clone()))
    }

    pub(crate) async fn create_pool(&self, input: &Value) -> Result<Value, ApiError> {
        self.create_pool_as(input, None).await
    }

    /// CreateUserPool under a pool id chosen by the operator (`cognate apply`, which sets up
    /// a deployment whose apps know their ids beforehand): `<region>_<letters and digits>`.
    pub async fn create_pool_with_id(
        &self,
        input: &Value,
        pool_id: &str,
    ) -> Result<Value, ApiError> {
        let valid = pool_id
            .strip_prefix(self.region)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|s| {
                !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !valid {
            return Err(invalid(format!(
                "A user pool id is {}_ followed by letters and digits",
                self.region
            )));
        }
        self.create_pool_as(input, Some(pool_id)).await
    }

    async fn create_pool_as(
        &self,
        input: &Value,
        pool_id: Option<&str>,
    ) -> Result<Value, ApiError> {
        let name = required(input, "PoolName")?;
        let policy = match input.pointer("/Policies/PasswordPolicy") {
            Some(p) => PasswordPolicy::from_input(p)?,
            None => PasswordPolicy::default(),
        };
        let strings = |key: &str| -> Vec<String> { string_list(input, key).unwrap_or_default() };
        let username_attributes = strings("UsernameAttributes");
        let alias_attributes = strings("AliasAttributes");
        if !username_attributes.is_empty() && !alias_attributes.is_empty() {
            return Err(invalid(
                "Only one of the aliasAttributes or usernameAttributes can be set in a User Pool.",
            ));
        }
        let mut schema = attributes::Schema::default();
        if let Some(items) = input.get("Schema").and_then(Value::as_array) {
            schema.add(items, true)?;
        }
        let mut extra = input.as_object().cloned().unwrap_or_default();
        for k in [
            "PoolName",
            "Policies",
            "UsernameAttributes",
            "AliasAttributes",
            "AutoVerifiedAttributes",
            "MfaConfiguration",
            "UsernameConfiguration",
            "Schema",
        ] {
            extra.remove(k);
        }
        let config = PoolConfig {
            password_policy: policy,
            username_attributes,
            alias_attributes,
            auto_verified_attributes: strings("AutoVerifiedAttributes"),
            case_sensitive: input
                .pointer("/UsernameConfiguration/CaseSensitive")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            mfa_configuration: str_of(input, "MfaConfiguration")
                .unwrap_or("OFF")
                .to_owned(),
            software_token_mfa: None,
            schema,
            extra,
        };
        let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let pool_id = match pool_id {
            Some(id) => id.to_owned(),
            None => format!("{}_{}", self.region, self.random_string(9, alnum)?),
        };
        let (kid, der) = keys::generate(self.rng).map_err(internal)?;
        let key_sealed = self
            .master
            .seal(&format!("userpool-key:{pool_id}:{kid}"), &der, self.rng)
            .map_err(internal)?;
        let row = PoolRow {
            pool_id: pool_id.clone(),
            account_id: self.account()?.to_owned(),
            name: name.to_owned(),
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: self.now(),
            updated_at: self.now(),
        };
        let key = SigningKeyRow {
            pool_id: pool_id.clone(),
            kid,
            key_sealed,
            created_at: now_millis(self.now),
        };
        self.store.create_pool(&row, &key).await.map_err(internal)?;
        Ok(json!({ "UserPool": self.pool_json(&row, &config) }))
    }

    pub(crate) fn pool_json(&self, row: &PoolRow, config: &PoolConfig) -> Value {
        let mut out = config.extra.clone();
        out.insert("Id".into(), json!(row.pool_id));
        out.insert("Name".into(), json!(row.name));
        out.insert("Arn".into(), json!(self.pool_arn(row)));
        out.insert(
            "Policies".into(),
            json!({ "PasswordPolicy": config.password_policy.to_output() }),
        );
        if !config.username_attributes.is_empty() {
            out.insert(
                "UsernameAttributes".into(),
                json!(config.username_attributes),
            );
        }
        if !config.alias_attributes.is_empty() {
            out.insert("AliasAttributes".into(), json!(config.alias_attributes));
        }
        if !config.auto_verified_attributes.is_empty() {
            out.insert(
                "AutoVerifiedAttributes".into(),
                json!(config.auto_verified_attributes),
            );
        }
        out.insert("MfaConfiguration".into(), json!(config.mfa_configuration));
        out.insert("SchemaAttributes".into(), config.schema.to_json());
        out.insert(
            "UsernameConfiguration".into(),
            json!({ "CaseSensitive": config.case_sensitive }),
        );
        out.insert("CreationDate".into(), json!(row.created_at));
        out.insert("LastModifiedDate".into(), json!(row.updated_at));
        Value::Object(out)
    }

    /// UpdateUserPool: the settings given replace the stored ones (as on AWS, an omitted
    /// setting that has a default returns to it only where AWS says so; here omitted
    /// settings are kept).
    pub(crate) async fn update_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, mut config) = self.pool_to_change(required(input, "UserPoolId")?).await?;
        if let Some(p) = input.pointer("/Policies/PasswordPolicy") {
            config.password_policy = PasswordPolicy::from_input(p)?;
        }
        if let Some(m) = str_of(input, "MfaConfiguration") {
            config.mfa_configuration = m.to_owned();
            if m == "OFF" && config.software_token_mfa.is_some() {
                config.software_token_mfa = Some(false);
            }
            config.check_mfa()?;
        }
        if let Some(a) = string_list(input, "AutoVerifiedAttributes") {
            config.auto_verified_attributes = a;
        }
        for (k, v) in input.as_object().into_iter().flatten() {
            if !matches!(
                k.as_str(),
                "UserPoolId" | "Policies" | "MfaConfiguration" | "AutoVerifiedAttributes"
            ) {
                config.extra.insert(k.clone(), v.clone());
            }
        }
        self.change_pool(&row, &config).await?;
        Ok(json!({}))
    }

    /// A pool about to change: read from the store, not the cache, since the change is
    /// written only if the stored settings are still these.
    pub(crate) async fn pool_to_change(
        &self,
        pool_id: &str,
    ) -> Result<(PoolRow, PoolConfig), ApiError> {
        self.keys.forget_pool(pool_id);
        self.pool(pool_id).await
    }

    /// Writes a pool's new settings if nobody changed them since `row` was read.
    pub(crate) async fn change_pool(
        &self,
        row: &PoolRow,
        config: &PoolConfig,
    ) -> Result<(), ApiError> {
        let text = serde_json::to_string(config).map_err(internal)?;
        let written = self
            .store
            .update_user_pool(&row.pool_id, &row.config, &text, self.now())
            .await;
        self.keys.forget_pool(&row.pool_id);
        swapped(written)
    }

    pub(crate) async fn add_custom_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, mut config) = self.pool_to_change(required(input, "UserPoolId")?).await?;
        let items = input
            .get("CustomAttributes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        config.schema.add(&items, false)?;
        self.change_pool(&row, &config).await?;
        Ok(json!({}))
    }

    pub(crate) async fn describe_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, config) = self.pool(required(input, "UserPoolId")?).await?;
        Ok(json!({ "UserPool": self.pool_json(&row, &config) }))
    }

    pub(crate) async fn delete_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, _) = self.pool(required(input, "UserPoolId")?).await?;
        self.store
            .delete_user_pool(&row.pool_id)
            .await
            .map_err(internal)?;
        self.keys.forget_pool(&row.pool_id);
        Ok(json!({}))
    }

    pub(crate) async fn list_pools(&self, input: &Value) -> Result<Value, ApiError> {
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let after = str_of(input, "NextToken").unwrap_or("");
        let mut rows = self
            .store
            .user_pools_of(self.account()?, after, max + 1)
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let pools: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({ "Id": r.pool_id, "Name": r.name, "CreationDate": r.created_at, "LastModifiedDate": r.updated_at })
            })
            .collect();
        let mut out = json!({ "UserPools": pools });
        if more && let (Some(last), Some(obj)) = (rows.last(), out.as_object_mut()) {
            obj.insert("NextToken".into(), json!(last.pool_id));
        }
        Ok(out)
    }
}

/// Most tags a user pool carries.
const MAX_POOL_TAGS: usize = 50;

/// The pool id a user pool ARN names (`arn:aws:cognito-idp:<region>:<account>:userpool/<id>`).
pub fn pool_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:cognito-idp:")?;
    let (_, id) = rest.split_once(":userpool/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

impl UserPools<'_> {
    /// The pool a tagging call's `ResourceArn` names, about to change.
    async fn tagged_pool(&self, input: &Value) -> Result<(PoolRow, PoolConfig), ApiError> {
        let arn = required(input, "ResourceArn")?;
        let id =
            pool_of_arn(arn).ok_or_else(|| invalid(format!("{arn} is not a user pool ARN")))?;
        self.pool_to_change(id).await
    }

    fn tags_of(config: &PoolConfig) -> Map<String, Value> {
        config
            .extra
            .get("UserPoolTags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// TagResource: adds or replaces tags of a user pool.
    pub(crate) async fn tag_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, mut config) = self.tagged_pool(input).await?;
        let mut tags = Self::tags_of(&config);
        if let Some(Value::Object(new)) = input.get("Tags") {
            for (k, v) in new {
                tags.insert(k.clone(), v.clone());
            }
        }
        if tags.len() > MAX_POOL_TAGS {
            return Err(invalid(format!(
                "A user pool can have at most {MAX_POOL_TAGS} tags"
            )));
        }
        config
            .extra
            .insert("UserPoolTags".into(), Value::Object(tags));
        self.change_pool(&row, &config).await?;
        Ok(json!({}))
    }

    /// UntagResource: removes tags of a user pool by key.
    pub(crate) async fn untag_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, mut config) = self.tagged_pool(input).await?;
        let mut tags = Self::tags_of(&config);
        for key in string_list(input, "TagKeys").unwrap_or_default() {
            tags.remove(&key);
        }
        config
            .extra
            .insert("UserPoolTags".into(), Value::Object(tags));
        self.change_pool(&row, &config).await?;
        Ok(json!({}))
    }

    /// ListTagsForResource: a user pool's tags.
    pub(crate) async fn list_pool_tags(&self, input: &Value) -> Result<Value, ApiError> {
        let arn = required(input, "ResourceArn")?;
        let id =
            pool_of_arn(arn).ok_or_else(|| invalid(format!("{arn} is not a user pool ARN")))?;
        let (_, config) = self.pool(id).await?;
        Ok(json!({ "Tags": Self::tags_of(&config) }))
    }
}
