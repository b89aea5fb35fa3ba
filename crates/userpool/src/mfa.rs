//! Software-token (TOTP) MFA: association, verification, preferences.

use crate::*;

impl UserPools<'_> {
    /// The user an MFA setup call names: by access token, or by an `MFA_SETUP` session.
    pub(crate) async fn mfa_setup_user(
        &self,
        input: &Value,
    ) -> Result<(PoolConfig, UserRow, UserRecord, Option<String>), ApiError> {
        if let Some(token) = str_of(input, "AccessToken") {
            let (config, row, record) = self.access_token_user(token).await?;
            return Ok((config, row, record, None));
        }
        let session_text = required(input, "Session")?;
        let session = self.open_session(session_text)?;
        if session.challenge != "MFA_SETUP" {
            return Err(not_authorized("Invalid session for the user."));
        }
        let (_, config) = self.pool(&session.pool_id).await?;
        let row = self
            .store
            .pool_user(&session.pool_id, &session.username_key)
            .await
            .map_err(internal)?
            .ok_or_else(|| err("UserNotFoundException", "User does not exist."))?;
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        // A session that already produced tokens sets nothing up any more.
        if row.sub != session.sub {
            return Err(not_authorized("Invalid session for the user."));
        }
        record.session_open(&session.id, session.expires_at)?;
        Ok((config, row, record, Some(session_text.to_owned())))
    }

    pub(crate) async fn associate_software_token(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record, session) = self.mfa_setup_user(input).await?;
        let mut secrets = self.open_secrets(&row)?;
        let mut secret = vec![0u8; 20];
        self.rng
            .fill(&mut secret)
            .map_err(|_| ApiError::internal())?;
        let code = totp::base32(&secret);
        secrets.totp_pending = Some(secret);
        self.save_user(&config, &row, &record, &secrets).await?;
        let mut out = json!({ "SecretCode": code });
        if let (Some(s), Some(o)) = (session, out.as_object_mut()) {
            o.insert("Session".into(), json!(s));
        }
        Ok(out)
    }

    pub(crate) async fn verify_software_token(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, mut record, session) = self.mfa_setup_user(input).await?;
        let mut secrets = self.open_secrets(&row)?;
        let pending = secrets.totp_pending.clone().ok_or_else(|| {
            err(
                "InvalidParameterException",
                "User has not associated a software token.",
            )
        })?;
        let Some(step) = totp::verify(&pending, required(input, "UserCode")?, self.now(), i64::MIN)
        else {
            return Err(err("EnableSoftwareTokenMFAException", "Code mismatch"));
        };
        secrets.totp_secret = Some(pending);
        secrets.totp_pending = None;
        secrets.totp_last_step = step;
        if session.is_some() {
            // Set up during sign-in: it is the user's MFA from now on.
            record.software_token_mfa = true;
            record.preferred_mfa = true;
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        let mut out = json!({ "Status": "SUCCESS" });
        if let (Some(s), Some(o)) = (session, out.as_object_mut()) {
            o.insert("Session".into(), json!(s));
        }
        Ok(out)
    }

    pub(crate) async fn set_mfa_preference(
        &self,
        input: &Value,
        admin: bool,
    ) -> Result<Value, ApiError> {
        let (config, row, mut record) = if admin {
            let (pool, config) = self.pool(required(input, "UserPoolId")?).await?;
            let (row, record) = self
                .user_or_error(&pool.pool_id, &config, required(input, "Username")?)
                .await?;
            (config, row, record)
        } else {
            self.access_token_user(required(input, "AccessToken")?)
                .await?
        };
        let secrets = self.open_secrets(&row)?;
        if let Some(settings) = input.get("SoftwareTokenMfaSettings") {
            let enabled = settings
                .get("Enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if enabled && secrets.totp_secret.is_none() {
                return Err(invalid("User has not verified software token mfa"));
            }
            record.software_token_mfa = enabled;
            record.preferred_mfa = enabled
                && settings
                    .get("PreferredMfa")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
        }
        if input
            .pointer("/SMSMfaSettings/Enabled")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Err(invalid("SMS MFA is not supported by this server"));
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }
}
