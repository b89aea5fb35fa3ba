//! Identity pools: settings, roles and role mappings, principal tag maps, tags.

use crate::*;

impl IdentityPools<'_> {
    /// A pool: any pool for public calls, only the caller's for administrative ones.
    pub async fn pool(&self, pool_id: &str) -> Result<Arc<Pool>, ApiError> {
        let not_found = || {
            err(
                "ResourceNotFoundException",
                format!("IdentityPool '{pool_id}' not found."),
            )
        };
        let pool = match self.cache.pool(pool_id) {
            Ok(p) => p,
            Err(generation) => {
                let pool = Arc::new(self.stored_pool(pool_id).await?.ok_or_else(not_found)?);
                self.cache.insert_pool(generation, pool.clone());
                pool
            }
        };
        if self.account.is_some_and(|a| a != pool.row.account_id) {
            return Err(not_found());
        }
        Ok(pool)
    }

    pub(crate) async fn stored_pool(&self, pool_id: &str) -> Result<Option<Pool>, ApiError> {
        let Some(row) = self.store.identity_pool(pool_id).await.map_err(internal)? else {
            return Ok(None);
        };
        let config: PoolConfig = serde_json::from_str(&row.config).map_err(internal)?;
        Ok(Some(Pool { row, config }))
    }

    /// A pool of the caller's account read from the store, not the cache: what an
    /// administrative change starts from, so it cannot undo another node's change.
    pub(crate) async fn pool_to_change(&self, pool_id: &str) -> Result<Pool, ApiError> {
        let not_found = || {
            err(
                "ResourceNotFoundException",
                format!("IdentityPool '{pool_id}' not found."),
            )
        };
        let pool = self.stored_pool(pool_id).await?.ok_or_else(not_found)?;
        if self.account.is_some_and(|a| a != pool.row.account_id) {
            return Err(not_found());
        }
        Ok(pool)
    }

    pub(crate) fn pool_json(&self, pool: &Pool) -> Value {
        let c = &pool.config;
        let mut out = json!({
            "IdentityPoolId": pool.row.pool_id,
            "IdentityPoolName": pool.row.name,
            "AllowUnauthenticatedIdentities": c.allow_unauthenticated_identities,
            "AllowClassicFlow": c.allow_classic_flow,
            "SupportedLoginProviders": c.supported_login_providers,
            "OpenIdConnectProviderARNs": c.open_id_connect_provider_arns,
            "CognitoIdentityProviders": c.cognito_identity_providers,
            "SamlProviderARNs": c.saml_provider_arns,
            "IdentityPoolTags": c.identity_pool_tags,
        });
        if let (Some(name), Some(o)) = (&c.developer_provider_name, out.as_object_mut()) {
            o.insert("DeveloperProviderName".into(), json!(name));
        }
        out
    }

    /// Reads the settings an Create/UpdateIdentityPool input carries into `config`.
    pub(crate) fn apply_settings(
        &self,
        input: &Value,
        config: &mut PoolConfig,
    ) -> Result<(), ApiError> {
        config.allow_unauthenticated_identities = input
            .get("AllowUnauthenticatedIdentities")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        config.allow_classic_flow = input
            .get("AllowClassicFlow")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        config.supported_login_providers = string_map(input, "SupportedLoginProviders");
        for name in config.supported_login_providers.keys() {
            if !matches!(
                name.as_str(),
                "accounts.google.com"
                    | "appleid.apple.com"
                    | "graph.facebook.com"
                    | "www.amazon.com"
            ) {
                return Err(invalid(format!(
                    "The provider {name} is not a supported login provider; use an OpenID Connect provider instead."
                )));
            }
        }
        let developer = str_of(input, "DeveloperProviderName").map(str::to_owned);
        if config.developer_provider_name.is_some() && config.developer_provider_name != developer {
            return Err(invalid(
                "Developer provider name cannot be changed once set.",
            ));
        }
        config.developer_provider_name = developer;
        config.open_id_connect_provider_arns =
            string_list(input, "OpenIdConnectProviderARNs").unwrap_or_default();
        for arn in &config.open_id_connect_provider_arns {
            let account = arn.split(':').nth(4);
            if !arn.starts_with("arn:aws:iam::")
                || !arn.contains(":oidc-provider/")
                || account != self.account
            {
                return Err(invalid(format!(
                    "Invalid OpenIdConnectProviderARN: {arn} (a provider of this account)"
                )));
            }
        }
        config.cognito_identity_providers = match input.get("CognitoIdentityProviders") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| invalid("Invalid CognitoIdentityProviders"))?,
            None => Vec::new(),
        };
        for p in &config.cognito_identity_providers {
            if canonical_user_pool_provider(&p.provider_name, self.issuer_host).is_none() {
                return Err(invalid(format!(
                    "Invalid ProviderName: {} is not a Cognito user pool provider",
                    p.provider_name
                )));
            }
        }
        config.saml_provider_arns = string_list(input, "SamlProviderARNs").unwrap_or_default();
        if !config.saml_provider_arns.is_empty() {
            return Err(invalid("SAML providers are not supported by this service."));
        }
        if let Some(dev) = &config.developer_provider_name
            && (dev == BUILTIN_PROVIDER || self.configured_providers(config).contains(dev))
        {
            return Err(invalid(
                "DeveloperProviderName must differ from the identity pool's other providers.",
            ));
        }
        Ok(())
    }

    pub(crate) async fn create_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let account = self.account.ok_or_else(ApiError::internal)?;
        let name = required(input, "IdentityPoolName")?;
        let mut config = PoolConfig::default();
        self.apply_settings(input, &mut config)?;
        config.identity_pool_tags = string_map(input, "IdentityPoolTags");
        let now = self.now();
        let row = IdentityPoolRow {
            pool_id: self.new_id(),
            account_id: account.to_owned(),
            name: name.to_owned(),
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create_identity_pool(&row)
            .await
            .map_err(internal)?;
        Ok(self.pool_json(&Pool { row, config }))
    }

    pub(crate) async fn describe_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        Ok(self.pool_json(&pool))
    }

    pub(crate) async fn save_pool(&self, pool: Pool) -> Result<Pool, ApiError> {
        let mut row = pool.row;
        let expected = std::mem::replace(
            &mut row.config,
            serde_json::to_string(&pool.config).map_err(internal)?,
        );
        row.updated_at = self.now();
        if !self
            .store
            .update_identity_pool(&row, &expected)
            .await
            .map_err(internal)?
        {
            // Changed by another request since it was read, or deleted.
            self.cache.forget_pool(&row.pool_id);
            return Err(match self.stored_pool(&row.pool_id).await? {
                Some(_) => err(
                    "ConcurrentModificationException",
                    "The identity pool was changed by another request; retry.",
                ),
                None => err(
                    "ResourceNotFoundException",
                    format!("IdentityPool '{}' not found.", row.pool_id),
                ),
            });
        }
        self.cache.forget_pool(&row.pool_id);
        Ok(Pool {
            row,
            config: pool.config,
        })
    }

    pub(crate) async fn update_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let mut pool = self
            .pool_to_change(required(input, "IdentityPoolId")?)
            .await?;
        pool.row.name = required(input, "IdentityPoolName")?.to_owned();
        self.apply_settings(input, &mut pool.config)?;
        if input.get("IdentityPoolTags").is_some() {
            pool.config.identity_pool_tags = string_map(input, "IdentityPoolTags");
        }
        // Role mappings and tag maps name providers: drop those no longer configured.
        let providers = self.configured_providers(&pool.config);
        pool.config
            .role_mappings
            .retain(|k, _| providers.iter().any(|p| p == k));
        let pool = self.save_pool(pool).await?;
        Ok(self.pool_json(&pool))
    }

    pub(crate) async fn delete_pool(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        self.store
            .delete_identity_pool(&pool.row.pool_id)
            .await
            .map_err(internal)?;
        self.cache.forget_pool(&pool.row.pool_id);
        Ok(json!({}))
    }

    pub(crate) async fn list_pools(&self, input: &Value) -> Result<Value, ApiError> {
        let account = self.account.ok_or_else(ApiError::internal)?;
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let after = str_of(input, "NextToken").unwrap_or("");
        let mut rows = self
            .store
            .identity_pools_of(account, after, max + 1)
            .await
            .map_err(internal)?;
        let more = rows.len() as i64 > max;
        rows.truncate(usize::try_from(max).unwrap_or(0));
        let pools: Vec<Value> = rows
            .iter()
            .map(|r| json!({ "IdentityPoolId": r.pool_id, "IdentityPoolName": r.name }))
            .collect();
        let mut out = json!({ "IdentityPools": pools });
        if let (true, Some(last), Some(o)) = (more, rows.last(), out.as_object_mut()) {
            o.insert("NextToken".into(), json!(last.pool_id));
        }
        Ok(out)
    }

    /// The canonical names of every provider a pool is configured with.
    pub(crate) fn configured_providers(&self, config: &PoolConfig) -> Vec<String> {
        let mut names: Vec<String> = config.supported_login_providers.keys().cloned().collect();
        for p in &config.cognito_identity_providers {
            if let Some(n) = canonical_user_pool_provider(&p.provider_name, self.issuer_host) {
                names.push(format!("{n}:{}", p.client_id));
                names.push(n);
            }
        }
        for arn in &config.open_id_connect_provider_arns {
            if let Some((_, issuer)) = arn.split_once(":oidc-provider/") {
                names.push(issuer.to_owned());
            }
        }
        names
    }

    /// The role ARNs a SetIdentityPoolRoles input hands to the pool (each needs
    /// `iam:PassRole`, checked by the caller).
    pub fn roles_passed(input: &Value) -> Vec<String> {
        let mut arns: Vec<String> = string_map(input, "Roles").into_values().collect();
        if let Some(mappings) = input.get("RoleMappings").and_then(Value::as_object) {
            for m in mappings.values() {
                for rule in m
                    .pointer("/RulesConfiguration/Rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(arn) = str_of(rule, "RoleARN") {
                        arns.push(arn.to_owned());
                    }
                }
            }
        }
        arns.sort();
        arns.dedup();
        arns
    }

    pub(crate) async fn set_roles(&self, input: &Value) -> Result<Value, ApiError> {
        let mut pool = self
            .pool_to_change(required(input, "IdentityPoolId")?)
            .await?;
        let roles = string_map(input, "Roles");
        for (kind, arn) in &roles {
            if kind != "authenticated" && kind != "unauthenticated" {
                return Err(invalid(format!(
                    "Invalid role type {kind}: must be authenticated or unauthenticated"
                )));
            }
            if !arn.starts_with("arn:aws:iam::") || !arn.contains(":role/") {
                return Err(invalid(format!("Invalid role ARN: {arn}")));
            }
        }
        // Identities act as these roles: they must belong to the pool's own account.
        let foreign = Self::roles_passed(input)
            .into_iter()
            .find(|arn| arn.split(':').nth(4) != Some(pool.row.account_id.as_str()));
        if let Some(arn) = foreign {
            return Err(invalid(format!(
                "Role {arn} is not in the identity pool's account."
            )));
        }
        let mut mappings = BTreeMap::new();
        let providers = self.configured_providers(&pool.config);
        if let Some(given) = input.get("RoleMappings").and_then(Value::as_object) {
            for (name, m) in given {
                let mapping: RoleMapping = serde_json::from_value(m.clone())
                    .map_err(|_| invalid(format!("Invalid RoleMapping for {name}")))?;
                if !providers.iter().any(|p| p == name) {
                    return Err(invalid(format!(
                        "{name} is not a valid RoleMapping ProviderName or is not a configured provider."
                    )));
                }
                if mapping.ambiguous_role_resolution.is_none() {
                    return Err(invalid(
                        "AmbiguousRoleResolution must be specified for Token and Rules role mappings.",
                    ));
                }
                let rules = mapping
                    .rules_configuration
                    .as_ref()
                    .map_or(0, |c| c.rules.len());
                if mapping.kind == "Rules" && rules == 0 {
                    return Err(invalid(
                        "RulesConfiguration must be specified for Rules role mappings.",
                    ));
                }
                // Keyed by the provider's name (a `<provider>:<clientId>` key narrows to a client).
                let key = canonical_user_pool_provider(
                    name.split(':').next().unwrap_or(""),
                    self.issuer_host,
                )
                .map(|p| match name.split_once(':') {
                    Some((_, client)) => format!("{p}:{client}"),
                    None => p,
                })
                .unwrap_or_else(|| name.clone());
                mappings.insert(key, mapping);
            }
        }
        pool.config.roles = roles;
        pool.config.role_mappings = mappings;
        self.save_pool(pool).await?;
        Ok(json!({}))
    }

    pub(crate) async fn get_roles(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let mut out = json!({
            "IdentityPoolId": pool.row.pool_id,
            "Roles": pool.config.roles,
        });
        if let (false, Some(o)) = (pool.config.role_mappings.is_empty(), out.as_object_mut()) {
            o.insert("RoleMappings".into(), json!(pool.config.role_mappings));
        }
        Ok(out)
    }

    /// The canonical provider name of a tag map or mapping input, if configured on the pool.
    pub(crate) fn configured_provider(
        &self,
        config: &PoolConfig,
        name: &str,
    ) -> Result<String, ApiError> {
        let canonical =
            canonical_user_pool_provider(name, self.issuer_host).unwrap_or_else(|| name.to_owned());
        if self.configured_providers(config).contains(&canonical) {
            Ok(canonical)
        } else {
            Err(invalid(format!(
                "{name} is not a configured provider of this identity pool."
            )))
        }
    }

    pub(crate) async fn set_tag_map(&self, input: &Value) -> Result<Value, ApiError> {
        let mut pool = self
            .pool_to_change(required(input, "IdentityPoolId")?)
            .await?;
        let name = required(input, "IdentityProviderName")?;
        let provider = self.configured_provider(&pool.config, name)?;
        let map = PrincipalTagMap {
            use_defaults: input
                .get("UseDefaults")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            principal_tags: string_map(input, "PrincipalTags"),
        };
        pool.config.principal_tags.insert(provider, map.clone());
        let pool = self.save_pool(pool).await?;
        Ok(json!({
            "IdentityPoolId": pool.row.pool_id,
            "IdentityProviderName": name,
            "UseDefaults": map.use_defaults,
            "PrincipalTags": map.principal_tags,
        }))
    }

    pub(crate) async fn get_tag_map(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool(required(input, "IdentityPoolId")?).await?;
        let name = required(input, "IdentityProviderName")?;
        let provider = self.configured_provider(&pool.config, name)?;
        let map = pool
            .config
            .principal_tags
            .get(&provider)
            .cloned()
            .unwrap_or_default();
        Ok(json!({
            "IdentityPoolId": pool.row.pool_id,
            "IdentityProviderName": name,
            "UseDefaults": map.use_defaults,
            "PrincipalTags": map.principal_tags,
        }))
    }

    pub(crate) async fn pool_of_arn(&self, input: &Value) -> Result<Pool, ApiError> {
        let arn = required(input, "ResourceArn")?;
        let id = arn
            .strip_prefix("arn:aws:cognito-identity:")
            .and_then(|r| r.split_once(":identitypool/"))
            .map(|(_, id)| id)
            .ok_or_else(|| invalid(format!("Invalid ResourceArn: {arn}")))?;
        self.pool_to_change(id).await
    }

    pub(crate) async fn tag(&self, input: &Value, add: bool) -> Result<Value, ApiError> {
        let mut pool = self.pool_of_arn(input).await?;
        if add {
            pool.config
                .identity_pool_tags
                .extend(string_map(input, "Tags"));
            if pool.config.identity_pool_tags.len() > 50 {
                return Err(invalid("A resource can have at most 50 tags."));
            }
        } else {
            for key in input
                .get("TagKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                pool.config.identity_pool_tags.remove(key);
            }
        }
        self.save_pool(pool).await?;
        Ok(json!({}))
    }

    pub(crate) async fn list_tags(&self, input: &Value) -> Result<Value, ApiError> {
        let pool = self.pool_of_arn(input).await?;
        Ok(json!({ "Tags": pool.config.identity_pool_tags }))
    }
}
