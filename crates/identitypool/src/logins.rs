//! Logins and identities: providers a pool accepts, logins verified, one identity per
//! login (GetId merges identities two logins name), the enhanced flow's credentials plan.

use crate::*;

impl IdentityPools<'_> {
    /// What a `Logins` key names in this pool.
    pub(crate) fn provider(&self, pool: &Pool, key: &str) -> Result<Provider, ApiError> {
        let unsupported =
            || not_authorized("Token is not from a supported provider of this identity pool.");
        if key == BUILTIN_PROVIDER {
            return Ok(Provider::Builtin);
        }
        if let Some(canonical) = canonical_user_pool_provider(key, self.issuer_host) {
            let entries: Vec<&CognitoProvider> = pool
                .config
                .cognito_identity_providers
                .iter()
                .filter(|p| {
                    canonical_user_pool_provider(&p.provider_name, self.issuer_host).as_deref()
                        == Some(canonical.as_str())
                })
                .collect();
            if entries.is_empty() {
                return Err(unsupported());
            }
            let pool_id = canonical.rsplit('/').next().unwrap_or("").to_owned();
            return Ok(Provider::UserPool {
                pool_id,
                client_ids: entries.iter().map(|p| p.client_id.clone()).collect(),
                server_side_check: entries.iter().any(|p| p.server_side_token_check),
            });
        }
        if let Some(ids) = pool.config.supported_login_providers.get(key) {
            return Ok(Provider::Public {
                name: key.to_owned(),
                app_ids: ids.split(',').map(|s| s.trim().to_owned()).collect(),
            });
        }
        for arn in &pool.config.open_id_connect_provider_arns {
            if let Some((head, issuer)) = arn.split_once(":oidc-provider/")
                && issuer == key
            {
                let account = head.rsplit(':').next().unwrap_or("").to_owned();
                return Ok(Provider::Oidc {
                    arn: arn.clone(),
                    account,
                });
            }
        }
        Err(unsupported())
    }

    /// Verifies every login of a request; one bad token fails the call.
    pub(crate) async fn verify_logins(
        &self,
        pool: &Pool,
        logins: &BTreeMap<String, Sensitive>,
        verifier: &impl Verifier,
    ) -> Result<Vec<VerifiedLogin>, ApiError> {
        let mut out: Vec<VerifiedLogin> = Vec::with_capacity(logins.len());
        for (key, token) in logins {
            let token = token.as_str();
            let provider = self.provider(pool, key)?;
            let login = match provider {
                Provider::Builtin => self.verify_builtin(pool, token).await?,
                _ => verifier.verify(pool, &provider, key, token).await?,
            };
            if out.iter().any(|l| l.provider == login.provider) {
                return Err(invalid(format!(
                    "Logins name the provider {} more than once.",
                    login.provider
                )));
            }
            out.push(login);
        }
        Ok(out)
    }

    pub(crate) async fn new_identity(
        &self,
        pool: &Pool,
        logins: &[Login],
    ) -> Result<String, ApiError> {
        let now = self.now();
        let row = IdentityRow {
            identity_id: self.new_id(),
            pool_id: pool.row.pool_id.clone(),
            record: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        match self
            .store
            .link_logins(
                Some(&row),
                &row.identity_id,
                &pool.row.pool_id,
                logins,
                now,
                pool.multi(),
            )
            .await
        {
            Ok(()) => Ok(row.identity_id),
            Err(StoreError::Conflict) => Err(err(
                "ResourceConflictException",
                "A login is already linked to another identity.",
            )),
            Err(e) => Err(internal(e)),
        }
    }

    /// Finds the identity of verified logins, linking new logins to it; several identities
    /// named by the logins are merged into the oldest-linked one. Retries once when a
    /// concurrent call linked the same login first.
    pub(crate) async fn identity_for_logins(
        &self,
        pool: &Pool,
        logins: &[VerifiedLogin],
    ) -> Result<String, ApiError> {
        let keys: Vec<Login> = logins
            .iter()
            .filter(|l| l.provider != BUILTIN_PROVIDER)
            .map(|l| Login {
                provider: l.provider.clone(),
                subject: l.subject.clone(),
            })
            .collect();
        for attempt in 0..2 {
            let mut found: Vec<String> = Vec::new();
            let mut unlinked: Vec<Login> = Vec::new();
            for key in &keys {
                match self
                    .store
                    .identity_of_login(&pool.row.pool_id, key)
                    .await
                    .map_err(internal)?
                {
                    Some(id) => {
                        if !found.contains(&id) {
                            found.push(id);
                        }
                    }
                    None => unlinked.push(key.clone()),
                }
            }
            // A developer-authenticated identity proves itself with the built-in token.
            let mut unchecked = false;
            if let Some(builtin) = logins.iter().find(|l| l.provider == BUILTIN_PROVIDER)
                && !found.contains(&builtin.subject)
            {
                found.insert(0, builtin.subject.clone());
                unchecked = true;
            }
            let result = match found.split_first() {
                None => self.new_identity(pool, &unlinked).await,
                Some((target, others)) => {
                    // The common case, a known login alone, needs no further reads.
                    if others.is_empty() && unlinked.is_empty() && !unchecked {
                        return Ok(target.clone());
                    }
                    self.check_mergeable(pool, target, others, &unlinked)
                        .await?;
                    for other in others {
                        self.merge(pool, other, target).await?;
                    }
                    if unlinked.is_empty() {
                        return Ok(target.clone());
                    }

                    match self
                        .store
                        .link_logins(
                            None,
                            target,
                            &pool.row.pool_id,
                            &unlinked,
                            self.now(),
                            pool.multi(),
                        )
                        .await
                    {
                        Ok(()) => Ok(target.clone()),
                        Err(StoreError::Conflict) => Err(err(
                            "ResourceConflictException",
                            "A login is already linked to another identity.",
                        )),
                        Err(e) => Err(internal(e)),
                    }
                }
            };
            match result {
                Err(e) if e.code == "ResourceConflictException" && attempt == 0 => continue,
                other => return other,
            }
        }
        Err(err(
            "ResourceConflictException",
            "A login is already linked to another identity.",
        ))
    }

    /// Identities named by one request's logins may become one: all exist in this pool and
    /// are enabled, and together they hold at most one login per provider.
    pub(crate) async fn check_mergeable(
        &self,
        pool: &Pool,
        target: &str,
        others: &[String],
        new: &[Login],
    ) -> Result<(), ApiError> {
        let multi = pool.multi();
        let mut providers: Vec<String> = new.iter().map(|l| l.provider.clone()).collect();
        for id in std::iter::once(target).chain(others.iter().map(String::as_str)) {
            let (row, logins) = self
                .store
                .identity(id)
                .await
                .map_err(internal)?
                .filter(|(row, _)| row.pool_id == pool.row.pool_id)
                .ok_or_else(|| identity_not_found(id))?;
            if is_disabled(&row) {
                return Err(not_authorized(format!(
                    "Access to Identity '{id}' is forbidden."
                )));
            }
            let mut own: Vec<String> = logins.into_iter().map(|l| l.provider).collect();
            own.dedup();
            providers.extend(own);
        }
        providers.retain(|p| Some(p.as_str()) != multi);
        let count = providers.len();
        providers.sort();
        providers.dedup();
        if providers.len() != count {
            return Err(err(
                "ResourceConflictException",
                "These logins belong to identities that cannot be merged: two of them are from one provider.",
            ));
        }
        Ok(())
    }

    /// `GetId`: the identity of the logins (created or linked as needed), or a new
    /// unauthenticated identity when there are none and the pool allows it.
    pub async fn get_id(&self, input: &Value, verifier: &impl Verifier) -> Result<Value, ApiError> {
        let input: shapes::GetIdInput = typed(input)?;
        let pool = self.pool(&input.identity_pool_id).await?;
        if let Some(account) = &input.account_id
            && *account != pool.row.account_id
        {
            return Err(not_authorized(format!(
                "Access to IdentityPool '{}' is forbidden.",
                pool.row.pool_id
            )));
        }
        let logins = input.logins.unwrap_or_default();
        let id = if logins.is_empty() {
            if !pool.config.allow_unauthenticated_identities {
                return Err(not_authorized(
                    "Unauthenticated access is not supported for this identity pool.",
                ));
            }
            self.new_identity(&pool, &[]).await?
        } else {
            let verified = self.verify_logins(&pool, &logins, verifier).await?;
            self.identity_for_logins(&pool, &verified).await?
        };
        output(shapes::GetIdResponse {
            identity_id: Some(id),
        })
    }

    /// An identity usable by a public call: it exists, is enabled, and the request's logins
    /// (verified) belong to it. Unauthenticated identities present no logins; one that does
    /// present them is linked to them (it becomes authenticated).
    pub(crate) async fn usable_identity(
        &self,
        id: &str,
        logins: &BTreeMap<String, Sensitive>,
        verifier: &impl Verifier,
    ) -> Result<(Arc<Pool>, String, Vec<VerifiedLogin>), ApiError> {
        let (row, linked) = self
            .store
            .identity(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| identity_not_found(id))?;
        let pool = self.pool(&row.pool_id).await?;
        if is_disabled(&row) {
            return Err(not_authorized(format!(
                "Access to Identity '{id}' is forbidden."
            )));
        }
        if logins.is_empty() {
            if !linked.is_empty() {
                return Err(logins_dont_match());
            }
            if !pool.config.allow_unauthenticated_identities {
                return Err(not_authorized(
                    "Unauthenticated access is not supported for this identity pool.",
                ));
            }
            return Ok((pool, id.to_owned(), Vec::new()));
        }
        let verified = self.verify_logins(&pool, logins, verifier).await?;
        let mut to_link = Vec::new();
        for login in &verified {
            let belongs = if login.provider == BUILTIN_PROVIDER {
                login.subject == id
            } else {
                linked
                    .iter()
                    .any(|l| l.provider == login.provider && l.subject == login.subject)
            };
            if belongs {
                continue;
            }
            // An unauthenticated identity signing in keeps its id: its new logins are linked
            // to it (all at once), if no other identity has them.
            let key = Login {
                provider: login.provider.clone(),
                subject: login.subject.clone(),
            };
            if !linked.is_empty()
                || login.provider == BUILTIN_PROVIDER
                || self
                    .store
                    .identity_of_login(&pool.row.pool_id, &key)
                    .await
                    .map_err(internal)?
                    .is_some()
            {
                return Err(logins_dont_match());
            }
            to_link.push(key);
        }
        if !to_link.is_empty() {
            self.store
                .link_logins_to_guest(id, &pool.row.pool_id, &to_link, self.now())
                .await
                .map_err(|_| logins_dont_match())?;
        }
        Ok((pool, id.to_owned(), verified))
    }

    /// `amr` for a set of verified logins.
    pub(crate) fn amr(logins: &[VerifiedLogin]) -> Vec<String> {
        if logins.is_empty() {
            return vec!["unauthenticated".into()];
        }
        let mut amr = vec!["authenticated".to_owned()];
        for l in logins {
            for entry in &l.amr {
                if !amr.contains(entry) {
                    amr.push(entry.clone());
                }
            }
        }
        amr
    }

    /// `GetCredentialsForIdentity`: which role, with which session keys and tags.
    pub async fn credentials_plan(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<CredentialsPlan, ApiError> {
        let input: shapes::GetCredentialsForIdentityInput = typed(input)?;
        let (pool, identity_id, logins) = self
            .usable_identity(
                &input.identity_id,
                &input.logins.unwrap_or_default(),
                verifier,
            )
            .await?;
        let custom = input.custom_role_arn.as_deref();
        let config = &pool.config;
        let (role_arn, tags) = match logins.first() {
            None => {
                let role = config
                    .roles
                    .get("unauthenticated")
                    .cloned()
                    .ok_or_else(bad_configuration)?;
                (role, Vec::new())
            }
            Some(_) => {
                // The first login whose provider has a role mapping decides; else the default.
                let mapped = logins.iter().find_map(|l| {
                    let client = l.claims.get("aud").and_then(Value::as_str).unwrap_or("");
                    config
                        .role_mappings
                        .get(&format!("{}:{client}", l.provider))
                        .or_else(|| config.role_mappings.get(&l.provider))
                        .map(|m| (m, l))
                });
                let (mapping, login) = match mapped {
                    Some((m, l)) => (Some(m), l),
                    None => (None, logins.first().ok_or_else(ApiError::internal)?),
                };
                let role =
                    choose_role(mapping, &config.roles, &login.claims, custom).map_err(|why| {
                        match why {
                            NoRole::Denied => not_authorized(
                                "The ambiguous role mapping rules denied this request",
                            ),
                            NoRole::CustomRoleRefused => not_authorized(format!(
                                "Access to Role '{}' is forbidden.",
                                custom.unwrap_or("")
                            )),
                            NoRole::NotConfigured => bad_configuration(),
                        }
                    })?;
                (role, principal_tags(config, login))
            }
        };
        let session_context = vec![
            (
                format!("{BUILTIN_PROVIDER}:aud"),
                vec![pool.row.pool_id.clone()],
            ),
            (format!("{BUILTIN_PROVIDER}:sub"), vec![identity_id.clone()]),
            (format!("{BUILTIN_PROVIDER}:amr"), Self::amr(&logins)),
        ];
        Ok(CredentialsPlan {
            identity_id,
            account: pool.row.account_id.clone(),
            role_arn,
            session_context,
            tags,
        })
    }
}
