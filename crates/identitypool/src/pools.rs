//! Identity pools: settings, roles and role mappings, principal tag maps, tags.

use crate::*;

/// The pool settings of a CreateIdentityPool or UpdateIdentityPool input (two model shapes
/// with the same members).
macro_rules! settings {
    ($input:expr) => {
        Settings {
            allow_unauthenticated_identities: $input.allow_unauthenticated_identities,
            allow_classic_flow: $input.allow_classic_flow,
            supported_login_providers: $input.supported_login_providers,
            developer_provider_name: $input.developer_provider_name,
            open_id_connect_provider_arns: $input.open_id_connect_provider_arns,
            cognito_identity_providers: $input.cognito_identity_providers,
            saml_provider_arns: $input.saml_provider_arns,
        }
    };
}

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

    pub(crate) fn pool_shape(&self, pool: &Pool) -> shapes::IdentityPool {
        let c = &pool.config;
        shapes::IdentityPool {
            identity_pool_id: pool.row.pool_id.clone(),
            identity_pool_name: pool.row.name.clone(),
            allow_unauthenticated_identities: c.allow_unauthenticated_identities,
            allow_classic_flow: Some(c.allow_classic_flow),
            supported_login_providers: Some(c.supported_login_providers.clone()),
            developer_provider_name: c.developer_provider_name.clone(),
            open_id_connect_provider_arns: Some(c.open_id_connect_provider_arns.clone()),
            cognito_identity_providers: Some(
                c.cognito_identity_providers
                    .iter()
                    .map(|p| shapes::CognitoIdentityProvider {
                        provider_name: Some(p.provider_name.clone()),
                        client_id: Some(p.client_id.clone()),
                        server_side_token_check: Some(p.server_side_token_check),
                    })
                    .collect(),
            ),
            saml_provider_arns: Some(c.saml_provider_arns.clone()),
            identity_pool_tags: Some(c.identity_pool_tags.clone()),
        }
    }

    /// Reads the settings a Create/UpdateIdentityPool input carries into `config`.
    pub(crate) fn apply_settings(
        &self,
        input: Settings,
        config: &mut PoolConfig,
    ) -> Result<(), ApiError> {
        config.allow_unauthenticated_identities = input.allow_unauthenticated_identities;
        config.allow_classic_flow = input.allow_classic_flow.unwrap_or(false);
        config.supported_login_providers = input.supported_login_providers.unwrap_or_default();
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
        let developer = input.developer_provider_name;
        if config.developer_provider_name.is_some() && config.developer_provider_name != developer {
            return Err(invalid(
                "Developer provider name cannot be changed once set.",
            ));
        }
        config.developer_provider_name = developer;
        config.open_id_connect_provider_arns =
            input.open_id_connect_provider_arns.unwrap_or_default();
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
        config.cognito_identity_providers = input
            .cognito_identity_providers
            .unwrap_or_default()
            .into_iter()
            .map(|p| match (p.provider_name, p.client_id) {
                (Some(provider_name), Some(client_id)) => Ok(CognitoProvider {
                    provider_name,
                    client_id,
                    server_side_token_check: p.server_side_token_check.unwrap_or(false),
                }),
                _ => Err(invalid("Invalid CognitoIdentityProviders")),
            })
            .collect::<Result<_, _>>()?;
        for p in &config.cognito_identity_providers {
            if canonical_user_pool_provider(&p.provider_name, self.issuer_host).is_none() {
                return Err(invalid(format!(
                    "Invalid ProviderName: {} is not a Cognito user pool provider",
                    p.provider_name
                )));
            }
        }
        config.saml_provider_arns = input.saml_provider_arns.unwrap_or_default();
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

    pub(crate) async fn create_pool(
        &self,
        input: shapes::CreateIdentityPoolInput,
    ) -> Result<shapes::IdentityPool, ApiError> {
        self.create_pool_as(input, self.new_id()).await
    }

    /// CreateIdentityPool under an identity pool id chosen by the operator (`cognate apply`):
    /// `<region>:<UUID>`, as Cognito's ids are.
    pub async fn create_pool_with_id(
        &self,
        input: &Value,
        pool_id: &str,
    ) -> Result<Value, ApiError> {
        let valid = pool_id
            .strip_prefix(self.region)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|u| uuid::Uuid::parse_str(u).is_ok());
        if !valid {
            return Err(invalid(format!(
                "An identity pool id is {}:<UUID>",
                self.region
            )));
        }
        output(
            self.create_pool_as(typed(input)?, pool_id.to_owned())
                .await?,
        )
    }

    async fn create_pool_as(
        &self,
        input: shapes::CreateIdentityPoolInput,
        pool_id: String,
    ) -> Result<shapes::IdentityPool, ApiError> {
        let account = self.account.ok_or_else(ApiError::internal)?;
        let name = input.identity_pool_name.clone();
        let tags = input.identity_pool_tags.clone().unwrap_or_default();
        let mut config = PoolConfig::default();
        self.apply_settings(settings!(input), &mut config)?;
        config.identity_pool_tags = tags;
        let now = self.now();
        let row = IdentityPoolRow {
            pool_id,
            account_id: account.to_owned(),
            name,
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create_identity_pool(&row)
            .await
            .map_err(internal)?;
        Ok(self.pool_shape(&Pool { row, config }))
    }

    pub(crate) async fn describe_pool(
        &self,
        input: shapes::DescribeIdentityPoolInput,
    ) -> Result<shapes::IdentityPool, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        Ok(self.pool_shape(&pool))
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

    pub(crate) async fn update_pool(
        &self,
        input: shapes::IdentityPool,
    ) -> Result<shapes::IdentityPool, ApiError> {
        let mut pool = self.pool_to_change(&input.identity_pool_id).await?;
        pool.row.name = input.identity_pool_name;
        self.apply_settings(settings!(input), &mut pool.config)?;
        if let Some(tags) = input.identity_pool_tags {
            pool.config.identity_pool_tags = tags;
        }
        // Role mappings and tag maps name providers: drop those no longer configured.
        let providers = self.configured_providers(&pool.config);
        pool.config
            .role_mappings
            .retain(|k, _| providers.iter().any(|p| p == k));
        let pool = self.save_pool(pool).await?;
        Ok(self.pool_shape(&pool))
    }

    pub(crate) async fn delete_pool(
        &self,
        input: shapes::DeleteIdentityPoolInput,
    ) -> Result<(), ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        self.store
            .delete_identity_pool(&pool.row.pool_id)
            .await
            .map_err(internal)?;
        self.cache.forget_pool(&pool.row.pool_id);
        Ok(())
    }

    pub(crate) async fn list_pools(
        &self,
        input: shapes::ListIdentityPoolsInput,
    ) -> Result<shapes::ListIdentityPoolsResponse, ApiError> {
        let account = self.account.ok_or_else(ApiError::internal)?;
        let max = input.max_results;
        let after = input.next_token.as_deref().unwrap_or("");
        let mut rows = self
            .store
            .identity_pools_of(account, after, max + 1)
            .await
            .map_err(internal)?;
        let more = rows.len() as i64 > max;
        rows.truncate(usize::try_from(max).unwrap_or(0));
        Ok(shapes::ListIdentityPoolsResponse {
            identity_pools: Some(
                rows.iter()
                    .map(|r| shapes::IdentityPoolShortDescription {
                        identity_pool_id: Some(r.pool_id.clone()),
                        identity_pool_name: Some(r.name.clone()),
                    })
                    .collect(),
            ),
            next_token: rows.last().filter(|_| more).map(|r| r.pool_id.clone()),
        })
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
    pub fn roles_passed(input: &Value) -> Result<Vec<String>, ApiError> {
        Ok(Self::roles_in(&typed(input)?))
    }

    fn roles_in(input: &shapes::SetIdentityPoolRolesInput) -> Vec<String> {
        let mut arns: Vec<String> = input.roles.values().cloned().collect();
        for m in input.role_mappings.iter().flat_map(|m| m.values()) {
            for rule in m.rules_configuration.iter().flat_map(|c| &c.rules) {
                arns.push(rule.role_arn.clone());
            }
        }
        arns.sort();
        arns.dedup();
        arns
    }

    pub(crate) async fn set_roles(
        &self,
        input: shapes::SetIdentityPoolRolesInput,
    ) -> Result<(), ApiError> {
        let mut pool = self.pool_to_change(&input.identity_pool_id).await?;
        let roles = input.roles.clone();
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
        let foreign = Self::roles_in(&input)
            .into_iter()
            .find(|arn| arn.split(':').nth(4) != Some(pool.row.account_id.as_str()));
        if let Some(arn) = foreign {
            return Err(invalid(format!(
                "Role {arn} is not in the identity pool's account."
            )));
        }
        let mut mappings = BTreeMap::new();
        let providers = self.configured_providers(&pool.config);
        if let Some(given) = input.role_mappings {
            for (name, m) in given {
                let mapping = RoleMapping::from(m);
                if !providers.contains(&name) {
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
        Ok(())
    }

    pub(crate) async fn get_roles(
        &self,
        input: shapes::GetIdentityPoolRolesInput,
    ) -> Result<shapes::GetIdentityPoolRolesResponse, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let mappings = &pool.config.role_mappings;
        Ok(shapes::GetIdentityPoolRolesResponse {
            identity_pool_id: Some(pool.row.pool_id.clone()),
            roles: Some(pool.config.roles.clone()),
            role_mappings: (!mappings.is_empty()).then(|| {
                mappings
                    .iter()
                    .map(|(k, m)| (k.clone(), m.clone().into()))
                    .collect()
            }),
        })
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

    pub(crate) async fn set_tag_map(
        &self,
        input: shapes::SetPrincipalTagAttributeMapInput,
    ) -> Result<shapes::SetPrincipalTagAttributeMapResponse, ApiError> {
        let mut pool = self.pool_to_change(&input.identity_pool_id).await?;
        let name = input.identity_provider_name;
        let provider = self.configured_provider(&pool.config, &name)?;
        let map = PrincipalTagMap {
            use_defaults: input.use_defaults.unwrap_or(false),
            principal_tags: input.principal_tags.unwrap_or_default(),
        };
        pool.config.principal_tags.insert(provider, map.clone());
        let pool = self.save_pool(pool).await?;
        Ok(shapes::SetPrincipalTagAttributeMapResponse {
            identity_pool_id: Some(pool.row.pool_id),
            identity_provider_name: Some(name),
            use_defaults: Some(map.use_defaults),
            principal_tags: Some(map.principal_tags),
        })
    }

    pub(crate) async fn get_tag_map(
        &self,
        input: shapes::GetPrincipalTagAttributeMapInput,
    ) -> Result<shapes::GetPrincipalTagAttributeMapResponse, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let name = input.identity_provider_name;
        let provider = self.configured_provider(&pool.config, &name)?;
        let map = pool
            .config
            .principal_tags
            .get(&provider)
            .cloned()
            .unwrap_or_default();
        Ok(shapes::GetPrincipalTagAttributeMapResponse {
            identity_pool_id: Some(pool.row.pool_id.clone()),
            identity_provider_name: Some(name),
            use_defaults: Some(map.use_defaults),
            principal_tags: Some(map.principal_tags),
        })
    }

    pub(crate) async fn pool_of_arn(&self, arn: &str) -> Result<Pool, ApiError> {
        let id = arn
            .strip_prefix("arn:aws:cognito-identity:")
            .and_then(|r| r.split_once(":identitypool/"))
            .map(|(_, id)| id)
            .ok_or_else(|| invalid(format!("Invalid ResourceArn: {arn}")))?;
        self.pool_to_change(id).await
    }

    pub(crate) async fn tag(&self, input: shapes::TagResourceInput) -> Result<(), ApiError> {
        let mut pool = self.pool_of_arn(&input.resource_arn).await?;
        pool.config.identity_pool_tags.extend(input.tags);
        if pool.config.identity_pool_tags.len() > 50 {
            return Err(invalid("A resource can have at most 50 tags."));
        }
        self.save_pool(pool).await?;
        Ok(())
    }

    pub(crate) async fn untag(&self, input: shapes::UntagResourceInput) -> Result<(), ApiError> {
        let mut pool = self.pool_of_arn(&input.resource_arn).await?;
        for key in &input.tag_keys {
            pool.config.identity_pool_tags.remove(key);
        }
        self.save_pool(pool).await?;
        Ok(())
    }

    pub(crate) async fn list_tags(
        &self,
        input: shapes::ListTagsForResourceInput,
    ) -> Result<shapes::ListTagsForResourceResponse, ApiError> {
        let pool = self.pool_of_arn(&input.resource_arn).await?;
        Ok(shapes::ListTagsForResourceResponse {
            tags: Some(pool.config.identity_pool_tags),
        })
    }
}
