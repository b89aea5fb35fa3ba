//! Tokens: signing keys, ID / access / refresh tokens, their verification, sign-out and
//! revocation, the JWKS and the OpenID discovery document.

use crate::*;

impl UserPools<'_> {
    /// The pool's current signing key, opened.
    pub(crate) async fn signing_key(&self, pool_id: &str) -> Result<Arc<SigningKey>, ApiError> {
        let rows = self.store.signing_keys(pool_id).await.map_err(internal)?;
        let row = rows.last().ok_or_else(ApiError::internal)?;
        self.open_key(row)
    }

    /// Opens a stored key, once per process.
    pub(crate) fn open_key(&self, row: &SigningKeyRow) -> Result<Arc<SigningKey>, ApiError> {
        let id = (row.pool_id.clone(), row.kid.clone());
        if let Some(key) = self.keys.get(&id) {
            return Ok(key);
        }
        let der = self
            .master
            .open(
                &format!("userpool-key:{}:{}", row.pool_id, row.kid),
                &row.key_sealed,
            )
            .map_err(internal)?;
        let key = Arc::new(SigningKey::from_pkcs8(&row.kid, &der).map_err(internal)?);
        self.keys.insert(id, key.clone());
        Ok(key)
    }

    /// The key with `kid` of a pool: from the cache, else from the store.
    pub(crate) async fn verifying_key(
        &self,
        pool_id: &str,
        kid: &str,
    ) -> Result<Option<Arc<SigningKey>>, ApiError> {
        if let Some(key) = self.keys.get(&(pool_id.to_owned(), kid.to_owned())) {
            return Ok(Some(key));
        }
        let rows = self.store.signing_keys(pool_id).await.map_err(internal)?;
        match rows.iter().find(|k| k.kid == kid) {
            Some(row) => Ok(Some(self.open_key(row)?)),
            None => Ok(None),
        }
    }

    /// Mints ID and access tokens (and, on a fresh sign-in, a refresh token).
    pub(crate) async fn issue_tokens(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        config: &ClientConfig,
        row: &UserRow,
        record: &UserRecord,
        refreshed: Option<&RefreshTokenRow>,
    ) -> Result<Value, ApiError> {
        let key = self.signing_key(&pool.pool_id).await?;
        let now = self.now();
        let issuer = format!(
            "{}/{}",
            self.issuer_base.trim_end_matches('/'),
            pool.pool_id
        );
        let origin_jti = match refreshed {
            Some(r) => r.origin_jti.clone(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let auth_time = refreshed.map_or(now, |r| r.issued_at);
        let mut groups = Vec::new();
        for g in self
            .store
            .pool_groups_of_user(&pool.pool_id, &row.username_key)
            .await
            .map_err(internal)?
        {
            let record: GroupRecord = serde_json::from_str(&g.record).map_err(internal)?;
            groups.push((g.name, record));
        }
        let (group_names, roles, preferred_role) = group_claims(&groups);
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut id_claims = Map::new();
        let readable = config.read_attributes();
        for (name, value) in &record.attributes {
            // Claims Cognito owns come from Cognate below, never from stored attributes.
            if attributes::is_owned_claim(name)
                || name.starts_with("dev:")
                || readable.as_ref().is_some_and(|r| !r.contains(name))
            {
                continue;
            }
            let v = match name.as_str() {
                "email_verified" | "phone_number_verified" => json!(value == "true"),
                _ => json!(value),
            };
            id_claims.insert(name.clone(), v);
        }
        for (k, v) in [
            ("sub", json!(row.sub)),
            ("iss", json!(issuer)),
            ("cognito:username", json!(record.username)),
            ("origin_jti", json!(origin_jti)),
            ("aud", json!(client.client_id)),
            ("event_id", json!(event_id)),
            ("token_use", json!("id")),
            ("auth_time", json!(auth_time)),
            ("exp", json!(now + config.id_token_minutes * 60)),
            ("iat", json!(now)),
            ("jti", json!(uuid::Uuid::new_v4().to_string())),
        ] {
            id_claims.insert(k.into(), v);
        }
        let access_claims = json!({
            "sub": row.sub,
            "iss": issuer,
            "client_id": client.client_id,
            "origin_jti": origin_jti,
            "event_id": event_id,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": auth_time,
            "exp": now + config.access_token_minutes * 60,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "username": record.username,
        });
        let mut access_claims = access_claims;
        if !group_names.is_empty() {
            id_claims.insert("cognito:groups".into(), json!(group_names));
            if let Some(o) = access_claims.as_object_mut() {
                o.insert("cognito:groups".into(), json!(group_names));
            }
        }
        if !roles.is_empty() {
            id_claims.insert("cognito:roles".into(), json!(roles));
        }
        if let Some(r) = preferred_role {
            id_claims.insert("cognito:preferred_role".into(), json!(r));
        }
        let id_token = key.sign(&Value::Object(id_claims)).map_err(internal)?;
        let access_token = key.sign(&access_claims).map_err(internal)?;
        let mut out = json!({
            "AccessToken": access_token,
            "ExpiresIn": config.access_token_minutes * 60,
            "TokenType": "Bearer",
            "IdToken": id_token,
        });
        if refreshed.is_none() {
            let refresh = self.new_refresh_token()?;
            self.store
                .insert_refresh_token(&RefreshTokenRow {
                    token_hash: token_hash(&refresh),
                    pool_id: pool.pool_id.clone(),
                    username_key: row.username_key.clone(),
                    client_id: client.client_id.clone(),
                    origin_jti,
                    issued_at: now,
                    expires_at: now + config.refresh_token_minutes * 60,
                    previous_hash: None,
                    rotated_at_ms: None,
                    current_sealed: None,
                })
                .await
                .map_err(internal)?;
            // The sign-in counts only if the user is still as it was checked: a password set,
            // a disable or a sign-out that landed meanwhile (and revoked refresh tokens
            // before this one existed) makes it start again from a fresh read.
            let current = self
                .store
                .pool_user(&pool.pool_id, &row.username_key)
                .await
                .map_err(internal)?
                .map(|r| r.version);
            if current != Some(row.version) {
                self.store
                    .revoke_refresh_token(&token_hash(&refresh))
                    .await
                    .map_err(internal)?;
                return Err(stale());
            }
            if let Some(o) = out.as_object_mut() {
                o.insert("RefreshToken".into(), json!(refresh));
            }
        }
        Ok(out)
    }

    /// Verifies an access token and returns its user: signature under one of the pool's keys,
    /// issuer, `token_use`, expiry, the user's sign-out time and the sign-in still live.
    pub(crate) async fn access_token_user(
        &self,
        token: &str,
    ) -> Result<(PoolConfig, UserRow, UserRecord), ApiError> {
        let invalid_token = || not_authorized("Invalid Access Token");
        let (_, claims) = keys::peek(token).ok_or_else(invalid_token)?;
        let issuer = str_of(&claims, "iss").ok_or_else(invalid_token)?;
        let pool_id = issuer
            .strip_prefix(self.issuer_base.trim_end_matches('/'))
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(invalid_token)?;
        let (_, config) = self.pool(pool_id).await.map_err(|_| invalid_token())?;
        let kid = keys::kid_of(token).ok_or_else(invalid_token)?;
        let key = self
            .verifying_key(pool_id, &kid)
            .await?
            .ok_or_else(invalid_token)?;
        let claims = key.verify(token).ok_or_else(invalid_token)?;
        if str_of(&claims, "token_use") != Some("access") {
            return Err(invalid_token());
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(invalid_token)?;
        if exp <= self.now() {
            return Err(not_authorized("Access Token has expired"));
        }
        let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
        let sub = str_of(&claims, "sub").ok_or_else(invalid_token)?;
        let origin = str_of(&claims, "origin_jti").ok_or_else(invalid_token)?;
        let revoked = || not_authorized("Access Token has been revoked");
        let (row, live) = self
            .store
            .pool_user_for_token(pool_id, sub, origin)
            .await
            .map_err(internal)?
            .ok_or_else(revoked)?;
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        if iat < record.tokens_valid_after || !live {
            return Err(revoked());
        }
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        Ok((config, row, record))
    }

    /// Verifies a pool's ID token presented to an identity pool as a login: signature under
    /// one of the pool's keys, issuer, `token_use`, expiry and an audience among `client_ids`;
    /// with `server_side_check`, also that the user is enabled, its sign-in still live and
    /// not signed out since. Returns the claims. Errors are Cognito Identity's.
    pub async fn verify_id_token(
        &self,
        pool_id: &str,
        token: &str,
        client_ids: &[String],
        server_side_check: bool,
    ) -> Result<Value, ApiError> {
        let unverifiable = || not_authorized("Invalid login token. Couldn't verify signed token.");
        let kid = keys::kid_of(token).ok_or_else(unverifiable)?;
        let key = self
            .verifying_key(pool_id, &kid)
            .await?
            .ok_or_else(unverifiable)?;
        let claims = key.verify(token).ok_or_else(unverifiable)?;
        let issuer = format!("{}/{pool_id}", self.issuer_base.trim_end_matches('/'));
        if str_of(&claims, "iss") != Some(issuer.as_str()) {
            return Err(not_authorized(
                "Invalid login token. Issuer doesn't match providerName",
            ));
        }
        let Some(aud) = str_of(&claims, "aud") else {
            return Err(not_authorized(
                "Invalid login token. Missing a required claim: aud",
            ));
        };
        if str_of(&claims, "token_use") != Some("id") {
            return Err(not_authorized(
                "Invalid login token. Not a valid OpenId Connect identity token.",
            ));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(unverifiable)?;
        if exp <= self.now() {
            return Err(err(
                "NotAuthorizedException",
                format!(
                    "Invalid login token. Token expired: {} >= {exp}",
                    self.now()
                ),
            ));
        }
        if !client_ids.iter().any(|c| c == aud) {
            return Err(not_authorized(
                "Token is not from a supported provider of this identity pool.",
            ));
        }
        if server_side_check {
            let revoked = || not_authorized("Invalid login token. Token has been revoked.");
            let sub = str_of(&claims, "sub").ok_or_else(unverifiable)?;
            let origin = str_of(&claims, "origin_jti").ok_or_else(unverifiable)?;
            let (row, live) = self
                .store
                .pool_user_for_token(pool_id, sub, origin)
                .await
                .map_err(internal)?
                .ok_or_else(revoked)?;
            let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
            let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
            if !live || iat < record.tokens_valid_after || !record.enabled {
                return Err(revoked());
            }
        }
        Ok(claims)
    }

    pub(crate) async fn get_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let mut out = Self::user_json(&row, &record, "UserAttributes");
        if let Some(o) = out.as_object_mut() {
            o.remove("Enabled");
            o.remove("UserStatus");
            o.remove("UserCreateDate");
            o.remove("UserLastModifiedDate");
            o.insert("MFAOptions".into(), json!([]));
            Self::mfa_json(&record, o);
        }
        Ok(out)
    }

    pub(crate) async fn global_sign_out(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        self.sign_out_user(&config, &row, record).await?;
        Ok(json!({}))
    }

    pub(crate) async fn revoke_token(&self, input: &Value) -> Result<Value, ApiError> {
        let (client, _) = self.client(required(input, "ClientId")?).await?;
        let token = required(input, "Token")?;
        if let Some(stored) = self
            .store
            .refresh_token(&token_hash(token))
            .await
            .map_err(internal)?
        {
            if stored.client_id != client.client_id {
                return Err(err(
                    "UnauthorizedException",
                    "Client is not authorized to revoke this token.",
                ));
            }
            self.check_client_secret(&client, str_of(input, "ClientSecret"))?;
            self.store
                .revoke_sign_in(&stored.origin_jti)
                .await
                .map_err(internal)?;
        }
        Ok(json!({}))
    }

    /// The JWKS of a pool: every key whose tokens may still be valid.
    pub async fn jwks(&self, pool_id: &str) -> Result<Value, ApiError> {
        let rows = self.store.signing_keys(pool_id).await.map_err(internal)?;
        if rows.is_empty() {
            return Err(err(
                "ResourceNotFoundException",
                "User pool does not exist.",
            ));
        }
        let mut keys = Vec::new();
        for row in &rows {
            keys.push(self.open_key(row)?.jwk.clone());
        }
        Ok(json!({ "keys": keys }))
    }

    /// The OpenID Connect discovery document of a pool.
    pub async fn openid_configuration(&self, pool_id: &str) -> Result<Value, ApiError> {
        self.store
            .user_pool(pool_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| err("ResourceNotFoundException", "User pool does not exist."))?;
        let issuer = format!("{}/{}", self.issuer_base.trim_end_matches('/'), pool_id);
        Ok(json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "email", "email_verified", "phone_number", "phone_number_verified", "cognito:username", "cognito:groups"],
        }))
    }
}
