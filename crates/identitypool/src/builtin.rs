//! The built-in OpenID provider (`cognito-identity.amazonaws.com`): its keys, the basic
//! flow's tokens (GetOpenIdToken) and their verification.

use crate::*;

impl IdentityPools<'_> {
    /// The built-in provider's keys, opened; generates the first one on first use.
    pub(crate) async fn builtin_keys(&self) -> Result<Vec<Arc<SigningKey>>, ApiError> {
        if let Ok(keys) = self.cache.keys.lock()
            && !keys.is_empty()
        {
            return Ok(keys.clone());
        }
        let mut rows = self.store.identity_keys().await.map_err(internal)?;
        if rows.is_empty() {
            let (kid, der) = cognate_userpool::keys::generate(self.rng).map_err(internal)?;
            let kid = format!("{}-{}", self.region, kid.trim_end_matches('='));
            let row = IdentityKeyRow {
                key_sealed: self
                    .master
                    .seal(&format!("identity-key:{kid}"), &der, self.rng)
                    .map_err(internal)?,
                kid,
                created_at: self.now.unix_timestamp() * 1000,
            };
            // Two nodes may both generate one: both keys verify, the newest signs.
            match self.store.add_identity_key(&row).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(internal(e)),
            }
            rows = self.store.identity_keys().await.map_err(internal)?;
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let der = self
                .master
                .open(&format!("identity-key:{}", row.kid), &row.key_sealed)
                .map_err(internal)?;
            keys.push(Arc::new(
                SigningKey::from_pkcs8_with(&row.kid, &der, Alg::Rs512).map_err(internal)?,
            ));
        }
        if let Ok(mut cached) = self.cache.keys.lock() {
            cached.clone_from(&keys);
        }
        Ok(keys)
    }

    /// The built-in provider's JWKS.
    pub async fn jwks(&self) -> Result<Value, ApiError> {
        let keys = self.builtin_keys().await?;
        Ok(json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
    }

    pub(crate) async fn sign_open_id_token(
        &self,
        pool: &Pool,
        identity_id: &str,
        amr: Vec<String>,
        lifetime: i64,
        tags: &[(String, String)],
    ) -> Result<String, ApiError> {
        let keys = self.builtin_keys().await?;
        let key = keys.last().ok_or_else(ApiError::internal)?;
        let now = self.now();
        let mut claims = json!({
            "iss": BUILTIN_ISSUER,
            "sub": identity_id,
            "aud": pool.row.pool_id,
            "amr": amr,
            "exp": now + lifetime,
            "iat": now,
            "https://cognito-identity.amazonaws.com/identity-pool-arn": self.pool_arn(&pool.row),
        });
        if let (false, Some(o)) = (tags.is_empty(), claims.as_object_mut()) {
            let tags: Map<String, Value> =
                tags.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
            o.insert(
                "https://aws.amazon.com/tags".into(),
                json!({ "principal_tags": tags }),
            );
        }
        key.sign(&claims).map_err(internal)
    }

    /// Verifies a token of the built-in provider for the basic flow (any pool) and returns its
    /// claims: signature under one of the keys, issuer, expiry.
    pub async fn verify_open_id_token(&self, token: &str) -> Result<Value, ApiError> {
        let bad = || not_authorized("Invalid login token. Couldn't verify signed token.");
        let kid = cognate_userpool::keys::kid_of(token).ok_or_else(bad)?;
        let keys = self.builtin_keys().await?;
        let key = match keys.iter().find(|k| k.kid == kid) {
            Some(k) => k.clone(),
            None => {
                // Another node may have added a key since this one cached them; unknown key
                // ids reload at most every KEY_RELOAD_INTERVAL (forged ones are cheap to send).
                let now = std::time::Instant::now();
                let due = self.cache.keys_reloaded.lock().is_ok_and(|mut last| {
                    let due = last.is_none_or(|t| now.duration_since(t) >= KEY_RELOAD_INTERVAL);
                    if due {
                        *last = Some(now);
                    }
                    due
                });
                if !due {
                    return Err(bad());
                }
                if let Ok(mut cached) = self.cache.keys.lock() {
                    cached.clear();
                }
                let keys = self.builtin_keys().await?;
                keys.iter()
                    .find(|k| k.kid == kid)
                    .cloned()
                    .ok_or_else(bad)?
            }
        };
        let claims = key.verify(token).ok_or_else(bad)?;
        if str_of(&claims, "iss") != Some(BUILTIN_ISSUER) {
            return Err(not_authorized(
                "Invalid login token. Issuer doesn't match providerName",
            ));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(bad)?;
        if exp <= self.now() {
            return Err(not_authorized(format!(
                "Invalid login token. Token expired: {} >= {exp}",
                self.now()
            )));
        }
        Ok(claims)
    }

    /// A built-in token as a login of `pool`: it must name the pool as its audience.
    pub(crate) async fn verify_builtin(
        &self,
        pool: &Pool,
        token: &str,
    ) -> Result<VerifiedLogin, ApiError> {
        let claims = self.verify_open_id_token(token).await?;
        if str_of(&claims, "aud") != Some(pool.row.pool_id.as_str()) {
            return Err(not_authorized(
                "Invalid login token. Token is not from this identity pool.",
            ));
        }
        let subject = str_of(&claims, "sub").unwrap_or("").to_owned();
        let amr = string_list(&claims, "amr").unwrap_or_default();
        // Only tokens of developer-authenticated identities are logins (what
        // GetOpenIdTokenForDeveloperIdentity returns): a guest's or another provider's
        // OpenID token must not stand in for the login it was issued for.
        let developer = pool.config.developer_provider_name.as_deref();
        let developer_entry = developer.map(|d| format!("{d}:{}:", pool.row.pool_id));
        if amr.first().map(String::as_str) != Some("authenticated")
            || developer.is_none()
            || amr.get(1).map(String::as_str) != developer
            || !amr
                .get(2)
                .zip(developer_entry.as_deref())
                .is_some_and(|(entry, prefix)| entry.starts_with(prefix))
        {
            return Err(not_authorized(
                "Invalid login token. Only tokens of developer-authenticated identities are logins.",
            ));
        }
        let amr = amr.into_iter().skip(1).collect();
        Ok(VerifiedLogin {
            provider: BUILTIN_PROVIDER.into(),
            subject,
            claims,
            amr,
        })
    }

    /// `GetOpenIdToken` (the basic flow): a token of the built-in provider for the identity.
    pub async fn get_open_id_token(
        &self,
        input: &Value,
        verifier: &impl Verifier,
    ) -> Result<Value, ApiError> {
        let input: shapes::GetOpenIdTokenInput = typed(input)?;
        let id = input.identity_id.as_str();
        let (row, _) = self
            .store
            .identity(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| identity_not_found(id))?;
        if !self.pool(&row.pool_id).await?.config.allow_classic_flow {
            return Err(invalid(
                "Basic (classic) flow is not enabled, please use enhanced flow.",
            ));
        }
        let (pool, identity_id, logins) = self
            .usable_identity(id, &input.logins.unwrap_or_default(), verifier)
            .await?;
        // A token issued on the strength of a developer token lives no longer than it.
        let lifetime = logins
            .iter()
            .filter(|l| l.provider == BUILTIN_PROVIDER)
            .filter_map(|l| l.claims.get("exp").and_then(Value::as_i64))
            .map(|exp| exp - self.now())
            .fold(OPEN_ID_TOKEN_SECS, i64::min);
        let tags: Vec<(String, String)> = logins.iter().flat_map(developer_tags).collect();
        let token = self
            .sign_open_id_token(&pool, &identity_id, Self::amr(&logins), lifetime, &tags)
            .await?;
        output(shapes::GetOpenIdTokenResponse {
            identity_id: Some(identity_id),
            token: Some(token.into()),
        })
    }
}
