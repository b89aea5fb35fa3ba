//! Developer-authenticated identities: tokens for a developer provider's users, lookup,
//! merge and unlink.

use crate::*;

impl IdentityPools<'_> {
    pub(crate) fn developer_provider<'p>(
        &self,
        pool: &'p Pool,
        name: &str,
    ) -> Result<&'p str, ApiError> {
        match pool.config.developer_provider_name.as_deref() {
            Some(p) if p == name => Ok(p),
            _ => Err(not_authorized(
                "This identity pool does not support the specified developer provider",
            )),
        }
    }

    pub(crate) async fn developer_token(
        &self,
        input: shapes::GetOpenIdTokenForDeveloperIdentityInput,
    ) -> Result<shapes::GetOpenIdTokenForDeveloperIdentityResponse, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let mut developer: Option<(String, String)> = None;
        for (provider, user) in &input.logins {
            if pool.config.developer_provider_name.as_deref() == Some(provider.as_str()) {
                developer = Some((provider.clone(), user.as_str().to_owned()));
            } else {
                return Err(not_authorized(format!(
                    "Login {provider} is not the developer provider of this identity pool; link other providers with GetId."
                )));
            }
        }
        let (provider, user) = developer.ok_or_else(|| {
            not_authorized("This identity pool does not support the specified developer provider")
        })?;
        let lifetime = input.token_duration.unwrap_or(DEVELOPER_TOKEN_DEFAULT_SECS);
        if !(1..=DEVELOPER_TOKEN_MAX_SECS).contains(&lifetime) {
            return Err(invalid(
                "TokenDuration must be between 1 and 86400 seconds.",
            ));
        }
        let login = Login {
            provider: provider.clone(),
            subject: user.clone(),
        };
        let existing = self
            .store
            .identity_of_login(&pool.row.pool_id, &login)
            .await
            .map_err(internal)?;
        let wanted = input.identity_id.as_deref();
        let identity_id = match (existing, wanted) {
            (Some(existing), Some(wanted)) if existing != wanted => {
                return Err(err(
                    "DeveloperUserAlreadyRegisteredException",
                    "This developer user identifier is already registered with Cognito.",
                ));
            }
            (Some(existing), _) => existing,
            (None, Some(wanted)) => {
                let (row, _) = self
                    .store
                    .identity(wanted)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| identity_not_found(wanted))?;
                if row.pool_id != pool.row.pool_id {
                    return Err(identity_not_found(wanted));
                }

                self.store
                    .link_logins(
                        None,
                        wanted,
                        &pool.row.pool_id,
                        &[login],
                        self.now(),
                        pool.multi(),
                    )
                    .await
                    .map_err(|_| {
                        err(
                            "DeveloperUserAlreadyRegisteredException",
                            "This developer user identifier is already registered with Cognito.",
                        )
                    })?;
                wanted.to_owned()
            }
            (None, None) => self.new_identity(&pool, &[login]).await?,
        };
        if let Some((row, _)) = self.store.identity(&identity_id).await.map_err(internal)?
            && is_disabled(&row)
        {
            return Err(not_authorized(format!(
                "Access to Identity '{identity_id}' is forbidden."
            )));
        }
        let amr = vec![
            "authenticated".to_owned(),
            provider.clone(),
            format!("{provider}:{}:{user}", pool.row.pool_id),
        ];
        let tags: Vec<(String, String)> = input
            .principal_tags
            .unwrap_or_default()
            .into_iter()
            .collect();
        let token = self
            .sign_open_id_token(&pool, &identity_id, amr, lifetime, &tags)
            .await?;
        Ok(shapes::GetOpenIdTokenForDeveloperIdentityResponse {
            identity_id: Some(identity_id),
            token: Some(token.into()),
        })
    }

    /// An identity of `pool` with its logins.
    pub(crate) async fn pool_identity(
        &self,
        pool: &Pool,
        id: &str,
    ) -> Result<(IdentityRow, Vec<Login>), ApiError> {
        match self.store.identity(id).await.map_err(internal)? {
            Some((row, logins)) if row.pool_id == pool.row.pool_id => Ok((row, logins)),
            _ => Err(identity_not_found(id)),
        }
    }

    pub(crate) async fn lookup_developer(
        &self,
        input: shapes::LookupDeveloperIdentityInput,
    ) -> Result<shapes::LookupDeveloperIdentityResponse, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let provider = pool.config.developer_provider_name.clone().ok_or_else(|| {
            not_authorized("This identity pool does not support the specified developer provider")
        })?;
        let by_user = match input.developer_user_identifier.as_deref() {
            Some(user) => Some(
                self.store
                    .identity_of_login(
                        &pool.row.pool_id,
                        &Login {
                            provider: provider.clone(),
                            subject: user.to_owned(),
                        },
                    )
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| {
                        err(
                            "ResourceNotFoundException",
                            format!("Developer user identifier '{user}' not found."),
                        )
                    })?,
            ),
            None => None,
        };
        let id = match (input.identity_id.as_deref(), by_user) {
            (Some(id), Some(found)) if id != found => {
                return Err(err(
                    "ResourceConflictException",
                    "The IdentityId and the DeveloperUserIdentifier belong to different identities.",
                ));
            }
            (_, Some(found)) => found,
            (Some(id), None) => id.to_owned(),
            (None, None) => {
                return Err(invalid(
                    "One of IdentityId or DeveloperUserIdentifier is required.",
                ));
            }
        };
        let (_, logins) = self.pool_identity(&pool, &id).await?;
        let users: Vec<String> = logins
            .into_iter()
            .filter(|l| l.provider == provider)
            .map(|l| l.subject)
            .collect();
        Ok(shapes::LookupDeveloperIdentityResponse {
            identity_id: Some(id),
            developer_user_identifier_list: Some(users),
            next_token: None,
        })
    }

    pub(crate) async fn merge_developer(
        &self,
        input: shapes::MergeDeveloperIdentitiesInput,
    ) -> Result<shapes::MergeDeveloperIdentitiesResponse, ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let provider = self
            .developer_provider(&pool, &input.developer_provider_name)?
            .to_owned();
        let find = |user: &str| {
            let login = Login {
                provider: provider.clone(),
                subject: user.to_owned(),
            };
            let pool_id = pool.row.pool_id.clone();
            async move {
                self.store
                    .identity_of_login(&pool_id, &login)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| {
                        err(
                            "ResourceNotFoundException",
                            format!("Developer user identifier '{}' not found.", login.subject),
                        )
                    })
            }
        };
        let source = find(&input.source_user_identifier).await?;
        let destination = find(&input.destination_user_identifier).await?;
        if source != destination {
            self.check_mergeable(&pool, &destination, std::slice::from_ref(&source), &[])
                .await?;
            self.merge(&pool, &source, &destination).await?;
        }
        Ok(shapes::MergeDeveloperIdentitiesResponse {
            identity_id: Some(destination),
        })
    }

    pub(crate) async fn unlink_developer(
        &self,
        input: shapes::UnlinkDeveloperIdentityInput,
    ) -> Result<(), ApiError> {
        let pool = self.pool(&input.identity_pool_id).await?;
        let provider = self
            .developer_provider(&pool, &input.developer_provider_name)?
            .to_owned();
        let id = input.identity_id.as_str();
        let (row, _) = self.pool_identity(&pool, id).await?;
        let login = Login {
            provider,
            subject: input.developer_user_identifier,
        };
        let removed = self
            .store
            .unlink_logins(id, &[login], self.now(), &disabled_record(&row)?)
            .await
            .map_err(internal)?;
        if removed == 0 {
            return Err(err(
                "ResourceConflictException",
                "The developer user identifier is not linked to this identity.",
            ));
        }
        Ok(())
    }

    /// `UnlinkIdentity` (public): the caller proves the identity with its logins and removes
    /// the named providers' logins; an identity left with none is disabled.
    pub async fn unlink_identity(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<Value, ApiError> {
        let input: shapes::UnlinkIdentityInput = typed(input)?;
        let (pool, id, verified) = self
            .usable_identity(&input.identity_id, &input.logins, verifier)
            .await?;
        if verified.is_empty() {
            return Err(logins_dont_match());
        }
        let (row, linked) = self.pool_identity(&pool, &id).await?;
        let remove: Vec<Login> = input
            .logins_to_remove
            .iter()
            .flat_map(|p| {
                let canonical =
                    canonical_user_pool_provider(p, self.issuer_host).unwrap_or_else(|| p.clone());
                linked
                    .iter()
                    .filter(move |l| l.provider == canonical)
                    .cloned()
            })
            .collect();
        self.store
            .unlink_logins(&id, &remove, self.now(), &disabled_record(&row)?)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    /// Merges `from` into `to` (checked by the caller; the store checks again while it holds
    /// both).
    pub(crate) async fn merge(&self, pool: &Pool, from: &str, to: &str) -> Result<(), ApiError> {
        match self
            .store
            .merge_identities(from, to, self.now(), pool.multi())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(err(
                "ResourceConflictException",
                "These identities cannot be merged: one is gone, or both have a login from one provider.",
            )),
            Err(e) => Err(internal(e)),
        }
    }
}
