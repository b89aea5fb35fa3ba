//! Refreshing a sign-in: `REFRESH_TOKEN_AUTH` and GetTokensFromRefreshToken, with refresh
//! token rotation where the app client has it (`RefreshTokenRotation`): each refresh returns
//! a new refresh token, the one it replaces still works for the client's grace period (for
//! retries), and a later use of it is refused and ends the sign-in, since whoever used the
//! token first may not be its owner.

use crate::*;
use cognate_protocol::cognito::typed;
use cognate_protocol::shapes::cognito_idp as shapes;
use subtle::ConstantTimeEq as _;

/// How often a rotation that lost a race with another refresh is tried again.
const ROTATION_TRIES: usize = 3;

fn invalid_token() -> ApiError {
    not_authorized("Invalid Refresh Token.")
}

impl UserPools<'_> {
    /// `REFRESH_TOKEN_AUTH` (InitiateAuth, AdminInitiateAuth): new ID and access tokens.
    /// Not for clients that rotate refresh tokens, which refresh only with
    /// GetTokensFromRefreshToken.
    pub(crate) async fn refresh_token_auth(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        client_config: &ClientConfig,
        params: &Value,
    ) -> Result<Value, ApiError> {
        if client_config.rotation().is_some() {
            return Err(invalid(
                "REFRESH_TOKEN_AUTH is not available to app clients with refresh token rotation: refresh with GetTokensFromRefreshToken",
            ));
        }
        if !client_config.allows("ALLOW_REFRESH_TOKEN_AUTH") {
            return Err(invalid("Refresh Token flow not enabled for this client"));
        }
        let token = str_of(params, "REFRESH_TOKEN")
            .ok_or_else(|| invalid("Missing required parameter REFRESH_TOKEN"))?;
        let (stored, row, record) = self.refreshing(client, client_config, token).await?;
        if client.secret_sealed.is_some() {
            self.check_secret_hash(
                client,
                str_of(params, "USERNAME").unwrap_or(&record.username),
                str_of(params, "SECRET_HASH"),
            )?;
        }
        let result = self
            .issue_tokens(pool, client, client_config, &row, &record, Some(&stored))
            .await?;
        Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
    }

    /// GetTokensFromRefreshToken: new ID and access tokens, and with rotation a new refresh
    /// token that replaces the one given.
    pub(crate) async fn get_tokens_from_refresh_token(
        &self,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let input: shapes::GetTokensFromRefreshTokenRequest = typed(input)?;
        let (client, client_config) = self.client(input.client_id.as_str()).await?;
        self.check_client_secret(&client, input.client_secret.as_ref().map(|s| s.as_str()))?;
        let rotation = client_config.rotation();
        if rotation.is_none() && !client_config.allows("ALLOW_REFRESH_TOKEN_AUTH") {
            return Err(invalid("Refresh Token flow not enabled for this client"));
        }
        let (pool, _) = self.pool(&client.pool_id).await?;
        let token = input.refresh_token.as_str();
        let presented = token_hash(token);
        for _ in 0..ROTATION_TRIES {
            let (stored, row, record) = self.refreshing(&client, &client_config, token).await?;
            let mut result = self
                .issue_tokens(&pool, &client, &client_config, &row, &record, Some(&stored))
                .await?;
            if rotation.is_none() {
                return Ok(json!({ "AuthenticationResult": result }));
            }
            let context = format!("userpool-refresh:{}", stored.origin_jti);
            if stored.token_hash != presented {
                // A retry of the rotated-out token within the grace period: it gets the token
                // that replaced it (its answer may have been lost), and nothing rotates, so
                // the holder of that token keeps it.
                let sealed = stored.current_sealed.as_deref().ok_or_else(invalid_token)?;
                let current = self.master.open(&context, sealed).map_err(internal)?;
                let current = std::str::from_utf8(&current).map_err(internal)?.to_owned();
                if let Some(o) = result.as_object_mut() {
                    o.insert("RefreshToken".into(), json!(current));
                }
                return Ok(json!({ "AuthenticationResult": result }));
            }
            let new = self.new_refresh_token()?;
            let sealed = self
                .master
                .seal(&context, new.as_bytes(), self.rng)
                .map_err(internal)?;
            if self
                .store
                .rotate_refresh_token(&presented, &token_hash(&new), &sealed, self.now_ms())
                .await
                .map_err(internal)?
            {
                if let Some(o) = result.as_object_mut() {
                    o.insert("RefreshToken".into(), json!(new));
                }
                return Ok(json!({ "AuthenticationResult": result }));
            }
        }
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TooManyRequestsException",
            "Too many refreshes of the same sign-in at once; try again.",
        ))
    }

    /// The sign-in a refresh token continues, with its user: the token is this client's,
    /// unexpired, and current or rotated out less than the client's grace period ago; its
    /// user exists and is enabled. A rotated-out token used later ends the sign-in.
    async fn refreshing(
        &self,
        client: &ClientRow,
        config: &ClientConfig,
        token: &str,
    ) -> Result<(RefreshTokenRow, UserRow, UserRecord), ApiError> {
        let presented = token_hash(token);
        let stored = self
            .store
            .refresh_token(&presented)
            .await
            .map_err(internal)?
            .filter(|r| r.client_id == client.client_id && r.expires_at > self.now())
            .ok_or_else(invalid_token)?;
        if stored.token_hash != presented {
            // Without a grace period a rotated-out token is never good again (a request that
            // started before the rotation but read after it included).
            let grace_ms = config.rotation().unwrap_or(0).saturating_mul(1000);
            let rotated_at_ms = stored.rotated_at_ms.unwrap_or(i64::MIN);
            if grace_ms == 0 || self.now_ms().saturating_sub(rotated_at_ms) >= grace_ms {
                self.store
                    .revoke_sign_in(&stored.origin_jti)
                    .await
                    .map_err(internal)?;
                return Err(err(
                    "RefreshTokenReuseException",
                    "This refresh token was replaced by refresh token rotation; its sign-in has ended. Sign in again.",
                ));
            }
        }
        let row = self
            .store
            .pool_user(&client.pool_id, &stored.username_key)
            .await
            .map_err(internal)?
            .ok_or_else(invalid_token)?;
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        Ok((stored, row, record))
    }

    /// A new refresh token: 48 random bytes, URL-safe base64.
    pub(crate) fn new_refresh_token(&self) -> Result<String, ApiError> {
        let mut raw = [0u8; 48];
        self.rng.fill(&mut raw).map_err(|_| ApiError::internal())?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }

    /// The `ClientSecret` a call gives for a client that has a secret (compared in constant
    /// time); nothing for a client without one.
    pub(crate) fn check_client_secret(
        &self,
        client: &ClientRow,
        given: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(secret) = self.client_secret(client)? else {
            return Ok(());
        };
        let Some(given) = given else {
            return Err(not_authorized(format!(
                "Client {} is configured with secret but ClientSecret was not received",
                client.client_id
            )));
        };
        if bool::from(secret.as_bytes().ct_eq(given.as_bytes())) {
            Ok(())
        } else {
            Err(not_authorized(format!(
                "Unable to verify secret for client {}",
                client.client_id
            )))
        }
    }
}
