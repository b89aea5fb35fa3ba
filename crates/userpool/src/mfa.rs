//! Software-token (TOTP) MFA: the pool's MFA configuration, and users' association,
//! verification and preferences under it (OFF: no user sets up MFA; OPTIONAL: each user
//! chooses; ON: every user has it, and one without it sets it up at sign-in).

use crate::*;
use cognate_protocol::cognito::{output, typed};
use cognate_protocol::shapes::cognito_idp as shapes;

/// What AssociateSoftwareToken and VerifySoftwareToken answer in a pool without TOTP MFA.
fn totp_not_activated() -> ApiError {
    err(
        "SoftwareTokenMFANotFoundException",
        "Software token MFA is not activated for this user pool (MfaConfiguration is OFF).",
    )
}

impl UserPools<'_> {
    /// SetUserPoolMfaConfig: the pool's MFA setting and its factors (here TOTP only; this
    /// server sends no text messages and has no passkeys). Omitted members keep their value,
    /// except that turning MFA OFF turns its factors off.
    pub(crate) async fn set_pool_mfa_config(&self, input: &Value) -> Result<Value, ApiError> {
        let input: shapes::SetUserPoolMfaConfigRequest = typed(input)?;
        if input.sms_mfa_configuration.is_some() {
            return Err(invalid(
                "SMS MFA is not supported by this server: it sends no text messages.",
            ));
        }
        if input.email_mfa_configuration.is_some() {
            return Err(invalid("Email MFA is not supported by this server."));
        }
        if input.web_authn_configuration.is_some() {
            return Err(invalid(
                "Passkey (WebAuthn) sign-in is not supported by this server.",
            ));
        }
        let (row, mut config) = self.pool_to_change(&input.user_pool_id).await?;
        if let Some(m) = input.mfa_configuration {
            config.mfa_configuration = m;
        }
        match input.software_token_mfa_configuration {
            Some(totp) => config.software_token_mfa = Some(totp.enabled.unwrap_or(false)),
            None if config.mfa_configuration == "OFF" => config.software_token_mfa = Some(false),
            None => config.software_token_mfa = Some(config.totp_active()),
        }
        config.check_mfa()?;
        self.change_pool(&row, &config).await?;
        output(mfa_config(&config))
    }

    /// GetUserPoolMfaConfig.
    pub(crate) async fn get_pool_mfa_config(&self, input: &Value) -> Result<Value, ApiError> {
        let input: shapes::GetUserPoolMfaConfigRequest = typed(input)?;
        let (_, config) = self.pool(&input.user_pool_id).await?;
        let out = mfa_config(&config);
        output(shapes::GetUserPoolMfaConfigResponse {
            mfa_configuration: out.mfa_configuration,
            software_token_mfa_configuration: out.software_token_mfa_configuration,
            ..Default::default()
        })
    }

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
        if !config.totp_active() {
            return Err(totp_not_activated());
        }
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
        if !config.totp_active() {
            return Err(totp_not_activated());
        }
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
            if enabled && !config.totp_active() {
                return Err(invalid(
                    "Software token MFA is not activated for this user pool (MfaConfiguration is OFF).",
                ));
            }
            if enabled && secrets.totp_secret.is_none() {
                return Err(invalid("User has not verified software token mfa"));
            }
            if !enabled && config.mfa_configuration == "ON" && record.software_token_mfa {
                return Err(invalid(
                    "MFA is required in this user pool (MfaConfiguration is ON): a user's software token MFA cannot be turned off.",
                ));
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

/// The pool's MFA configuration as SetUserPoolMfaConfig and GetUserPoolMfaConfig answer it.
fn mfa_config(config: &PoolConfig) -> shapes::SetUserPoolMfaConfigResponse {
    shapes::SetUserPoolMfaConfigResponse {
        mfa_configuration: Some(match config.mfa_configuration.as_str() {
            "" => "OFF".to_owned(),
            m => m.to_owned(),
        }),
        software_token_mfa_configuration: Some(shapes::SoftwareTokenMfaConfigType {
            enabled: Some(config.totp_active()),
        }),
        ..Default::default()
    }
}
