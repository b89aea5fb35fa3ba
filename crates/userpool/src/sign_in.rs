//! Sign-in flows: InitiateAuth / RespondToAuthChallenge (password, SRP, refresh, new password
//! required, MFA challenges) and single-use challenge sessions.

use crate::*;

impl UserPools<'_> {
    /// The app client an authentication call names, with its pool; the administrative forms
    /// name the pool too, which must be the client's.
    pub(crate) async fn auth_client(
        &self,
        input: &Value,
        admin: bool,
    ) -> Result<(ClientRow, ClientConfig, PoolRow, PoolConfig), ApiError> {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        if admin && required(input, "UserPoolId")? != client.pool_id {
            return Err(err(
                "ResourceNotFoundException",
                "User pool client does not exist.",
            ));
        }
        let (pool, config) = self.pool(&client.pool_id).await?;
        Ok((client, client_config, pool, config))
    }

    pub(crate) async fn initiate_auth(
        &self,
        input: &Value,
        admin: bool,
    ) -> Result<Value, ApiError> {
        let (client, client_config, pool, config) = self.auth_client(input, admin).await?;
        let flow = required(input, "AuthFlow")?;
        let params = input
            .get("AuthParameters")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let param = |k: &str| str_of(&params, k);
        let allowed = |name: &str| client_config.allows(name);
        match flow {
            "USER_PASSWORD_AUTH" | "ADMIN_USER_PASSWORD_AUTH" | "ADMIN_NO_SRP_AUTH" => {
                let flag = match flow {
                    "USER_PASSWORD_AUTH" => "ALLOW_USER_PASSWORD_AUTH",
                    _ => "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                };
                if (flow == "USER_PASSWORD_AUTH") == admin || !allowed(flag) {
                    return Err(invalid(format!("{flow} flow not enabled for this client")));
                }
                let username = param("USERNAME")
                    .ok_or_else(|| invalid("Missing required parameter USERNAME"))?;
                let password = param("PASSWORD")
                    .ok_or_else(|| invalid("Missing required parameter PASSWORD"))?;
                self.check_secret_hash(&client, username, param("SECRET_HASH"))?;
                let user = self.find_user(&pool.pool_id, &config, username).await?;
                let wrong = || not_authorized("Incorrect username or password.");
                let Some((row, record)) = user else {
                    // Same work as a wrong password, so timing does not reveal the user.
                    password::verify_off_thread(
                        password,
                        pool_suffix(&pool.pool_id),
                        username,
                        None,
                    )
                    .await;
                    return Err(if client_config.prevent_user_existence_errors {
                        self.ghost_failed(&pool.pool_id, username, wrong()).await
                    } else {
                        err("UserNotFoundException", "User does not exist.")
                    });
                };
                let slot = self.attempt_slot(&row, &record)?;
                let secrets = self.open_secrets(&row)?;
                let ok = password::verify_off_thread(
                    password,
                    pool_suffix(&pool.pool_id),
                    &record.username,
                    Some(&secrets),
                )
                .await;
                if !ok {
                    self.attempt_failed(&config, &row, record, None).await?;
                    return Err(wrong());
                }
                let (row, record) = self.attempt_succeeded(&config, &row, record, None).await?;
                drop(slot);
                self.signed_in(&pool, &client, &client_config, &row, &record)
                    .await
            }
            "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
                self.refresh_token_auth(&pool, &client, &client_config, &params)
                    .await
            }
            "USER_SRP_AUTH" => {
                if !allowed("ALLOW_USER_SRP_AUTH") {
                    return Err(invalid("USER_SRP_AUTH flow not enabled for this client"));
                }
                let username = param("USERNAME")
                    .ok_or_else(|| invalid("Missing required parameter USERNAME"))?;
                let big_a =
                    param("SRP_A").ok_or_else(|| invalid("Missing required parameter SRP_A"))?;
                self.check_secret_hash(&client, username, param("SECRET_HASH"))?;
                let user = self.find_user(&pool.pool_id, &config, username).await?;
                let (username_key, sub, user_id, verifier) = match &user {
                    Some((row, record)) => {
                        let secrets = self.open_secrets(row)?;
                        let verifier = secrets
                            .srp
                            .ok_or_else(|| not_authorized("Incorrect username or password."))?;
                        (
                            row.username_key.clone(),
                            row.sub.clone(),
                            record.username.clone(),
                            verifier,
                        )
                    }
                    None if client_config.prevent_user_existence_errors => {
                        // A challenge like any other, which no password can answer.
                        let fake = srp::verifier(
                            pool_suffix(&pool.pool_id),
                            username,
                            &uuid::Uuid::new_v4().to_string(),
                            self.rng,
                        )
                        .ok_or_else(ApiError::internal)?;
                        (String::new(), String::new(), username.to_owned(), fake)
                    }
                    None => return Err(err("UserNotFoundException", "User does not exist.")),
                };
                let (b, big_b) = srp::server_ephemeral(&verifier.verifier_hex, self.rng)
                    .ok_or_else(ApiError::internal)?;
                let block = SrpBlock {
                    id: uuid::Uuid::new_v4().to_string(),
                    sub,
                    pool_id: pool.pool_id.clone(),
                    client_id: client.client_id.clone(),
                    username_key,
                    user_id: user_id.clone(),
                    a: big_a.to_owned(),
                    b,
                    big_b: big_b.clone(),
                    expires_at: self.now() + client_config.session_secs(),
                };
                let plain = zeroize::Zeroizing::new(serde_json::to_vec(&block).map_err(internal)?);
                let sealed = self
                    .master
                    .seal("userpool-srp", &plain, self.rng)
                    .map_err(internal)?;
                Ok(json!({
                    "ChallengeName": "PASSWORD_VERIFIER",
                    "ChallengeParameters": {
                        "SALT": verifier.salt_hex,
                        "SRP_B": big_b,
                        "SECRET_BLOCK": base64::engine::general_purpose::STANDARD.encode(sealed),
                        "USERNAME": user_id,
                        "USER_ID_FOR_SRP": user_id,
                    },
                }))
            }
            "CUSTOM_AUTH" | "USER_AUTH" => Err(invalid(format!(
                "{flow} is not supported by this server yet"
            ))),
            other => Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'authFlow' failed to satisfy constraint"
            ))),
        }
    }

    /// After the password (or SRP claim) checked out: the user's state decides between
    /// tokens, a challenge, or an error.
    pub(crate) async fn signed_in(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        client_config: &ClientConfig,
        row: &UserRow,
        record: &UserRecord,
    ) -> Result<Value, ApiError> {
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        match record.status.as_str() {
            "UNCONFIRMED" => Err(err("UserNotConfirmedException", "User is not confirmed.")),
            "RESET_REQUIRED" => Err(err(
                "PasswordResetRequiredException",
                "Password reset required for the user",
            )),
            "FORCE_CHANGE_PASSWORD" => {
                let session = self.seal_session(&ChallengeSession {
                    id: uuid::Uuid::new_v4().to_string(),
                    sub: row.sub.clone(),
                    pool_id: pool.pool_id.clone(),
                    client_id: client.client_id.clone(),
                    username_key: row.username_key.clone(),
                    challenge: "NEW_PASSWORD_REQUIRED".into(),
                    expires_at: self.now() + client_config.session_secs(),
                })?;
                let attrs: Map<String, Value> = record
                    .attributes
                    .iter()
                    .filter(|(n, _)| !attributes::is_owned_claim(n) && !n.starts_with("dev:"))
                    .map(|(n, v)| (n.clone(), json!(v)))
                    .collect();
                let config: PoolConfig = serde_json::from_str(&pool.config).map_err(internal)?;
                let required: Vec<String> = config
                    .schema
                    .missing_required(&record.attributes)
                    .iter()
                    .map(|n| format!("userAttributes.{n}"))
                    .collect();
                Ok(json!({
                    "ChallengeName": "NEW_PASSWORD_REQUIRED",
                    "Session": session,
                    "ChallengeParameters": {
                        "USER_ID_FOR_SRP": record.username,
                        "requiredAttributes": json!(required).to_string(),
                        "userAttributes": Value::Object(attrs).to_string(),
                    },
                }))
            }
            _ => {
                let config: PoolConfig = serde_json::from_str(&pool.config).map_err(internal)?;
                let mfa = config.mfa_configuration.as_str();
                let challenge = if record.software_token_mfa && (mfa == "ON" || mfa == "OPTIONAL") {
                    Some("SOFTWARE_TOKEN_MFA")
                } else if mfa == "ON" {
                    Some("MFA_SETUP")
                } else {
                    None
                };
                if let Some(challenge) = challenge {
                    let session = self.seal_session(&ChallengeSession {
                        id: uuid::Uuid::new_v4().to_string(),
                        sub: row.sub.clone(),
                        pool_id: pool.pool_id.clone(),
                        client_id: client.client_id.clone(),
                        username_key: row.username_key.clone(),
                        challenge: challenge.into(),
                        expires_at: self.now() + client_config.session_secs(),
                    })?;
                    let parameters = if challenge == "MFA_SETUP" {
                        json!({ "MFAS_CAN_SETUP": "[\"SOFTWARE_TOKEN_MFA\"]" })
                    } else {
                        json!({ "USER_ID_FOR_SRP": record.username })
                    };
                    return Ok(json!({
                        "ChallengeName": challenge,
                        "Session": session,
                        "ChallengeParameters": parameters,
                    }));
                }
                let result = self
                    .issue_tokens(pool, client, client_config, row, record, None)
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
        }
    }

    /// `PASSWORD_VERIFIER`: checks the SRP claim against the secret block sealed at the
    /// challenge.
    pub(crate) async fn password_verifier(
        &self,
        pool: &PoolRow,
        client: &ClientRow,
        client_config: &ClientConfig,
        responses: &Value,
    ) -> Result<Value, ApiError> {
        let wrong = || not_authorized("Incorrect username or password.");
        let block_b64 = str_of(responses, "PASSWORD_CLAIM_SECRET_BLOCK")
            .ok_or_else(|| invalid("Missing required parameter PASSWORD_CLAIM_SECRET_BLOCK"))?;
        let signature = str_of(responses, "PASSWORD_CLAIM_SIGNATURE")
            .ok_or_else(|| invalid("Missing required parameter PASSWORD_CLAIM_SIGNATURE"))?;
        let timestamp = str_of(responses, "TIMESTAMP")
            .ok_or_else(|| invalid("Missing required parameter TIMESTAMP"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let block_bytes = b64.decode(block_b64).map_err(|_| wrong())?;
        let plain = self
            .master
            .open("userpool-srp", &block_bytes)
            .map_err(|_| wrong())?;
        let block: SrpBlock = serde_json::from_slice(&plain).map_err(|_| wrong())?;
        if block.pool_id != pool.pool_id
            || block.client_id != client.client_id
            || block.expires_at < self.now()
        {
            return Err(wrong());
        }
        self.check_secret_hash(
            client,
            str_of(responses, "USERNAME").unwrap_or(&block.user_id),
            str_of(responses, "SECRET_HASH"),
        )?;
        let user = self
            .store
            .pool_user(&pool.pool_id, &block.username_key)
            .await
            .map_err(internal)?;
        let Some(row) = user.filter(|r| !block.username_key.is_empty() && r.sub == block.sub)
        else {
            if block.username_key.is_empty() {
                // A challenge PreventUserExistenceErrors made up: the SRP work, the counting
                // and the write a real user's wrong answer costs.
                let fake = srp::verifier(
                    pool_suffix(&pool.pool_id),
                    &block.user_id,
                    &block.b,
                    self.rng,
                );
                if let Some(v) = fake {
                    let _ = srp::password_key(&block.a, &block.b, &block.big_b, &v.verifier_hex);
                }
                return Err(self
                    .ghost_failed(&pool.pool_id, &block.user_id, wrong())
                    .await);
            }
            return Err(wrong());
        };
        let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
        if record.session_open(&block.id, block.expires_at).is_err() {
            // A recorded answer replayed: the block was spent when it was first answered.
            return Err(wrong());
        }
        let (_, config) = self.pool(&pool.pool_id).await?;
        let slot = self.attempt_slot(&row, &record)?;
        let spent = Some((block.id.as_str(), block.expires_at));
        let secrets = self.open_secrets(&row)?;
        let verifier = secrets.srp.clone().ok_or_else(wrong)?;
        let key = srp::password_key(&block.a, &block.b, &block.big_b, &verifier.verifier_hex)
            .ok_or_else(wrong)?;
        let signature = b64.decode(signature).map_err(|_| wrong())?;
        let ok = srp::verify_claim(
            &key,
            pool_suffix(&pool.pool_id),
            &block.user_id,
            &block_bytes,
            timestamp,
            &signature,
        );
        if !ok {
            self.attempt_failed(&config, &row, record, spent).await?;
            return Err(wrong());
        }
        let (row, record) = self.attempt_succeeded(&config, &row, record, spent).await?;
        drop(slot);
        self.signed_in(pool, client, client_config, &row, &record)
            .await
    }

    pub(crate) fn seal_session(&self, session: &ChallengeSession) -> Result<String, ApiError> {
        let plain = serde_json::to_vec(session).map_err(internal)?;
        let sealed = self
            .master
            .seal("userpool-session", &plain, self.rng)
            .map_err(internal)?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    pub(crate) fn open_session(&self, session: &str) -> Result<ChallengeSession, ApiError> {
        let invalid_session =
            || not_authorized("Invalid session for the user, session is expired.");
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(session)
            .map_err(|_| invalid_session())?;
        let plain = self
            .master
            .open("userpool-session", &sealed)
            .map_err(|_| invalid_session())?;
        let session: ChallengeSession =
            serde_json::from_slice(&plain).map_err(|_| invalid_session())?;
        if session.expires_at < self.now() {
            return Err(invalid_session());
        }
        Ok(session)
    }

    pub(crate) async fn respond_to_challenge(
        &self,
        input: &Value,
        admin: bool,
    ) -> Result<Value, ApiError> {
        let (client, client_config, pool, config) = self.auth_client(input, admin).await?;
        let challenge = required(input, "ChallengeName")?;
        let responses = input
            .get("ChallengeResponses")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if challenge == "PASSWORD_VERIFIER" {
            return self
                .password_verifier(&pool, &client, &client_config, &responses)
                .await;
        }
        let session = self.open_session(required(input, "Session")?)?;
        if session.client_id != client.client_id
            || session.pool_id != pool.pool_id
            || session.challenge != challenge
        {
            return Err(not_authorized("Invalid session for the user."));
        }
        let responses = input
            .get("ChallengeResponses")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let (row, mut record) = self
            .store
            .pool_user(&pool.pool_id, &session.username_key)
            .await
            .map_err(internal)?
            .map(|r| {
                let rec: Result<UserRecord, _> = serde_json::from_str(&r.record);
                rec.map(|rec| (r, rec))
            })
            .transpose()
            .map_err(internal)?
            .ok_or_else(|| err("UserNotFoundException", "User does not exist."))?;
        self.check_secret_hash(
            &client,
            str_of(&responses, "USERNAME").unwrap_or(&record.username),
            str_of(&responses, "SECRET_HASH"),
        )?;
        // A session answers once, for the user it was issued to (not another of the name),
        // and only for the state it was issued in; a disabled or locked-out user answers
        // nothing.
        if row.sub != session.sub {
            return Err(not_authorized("Invalid session for the user."));
        }
        record.session_open(&session.id, session.expires_at)?;
        if challenge == "NEW_PASSWORD_REQUIRED" && record.status != "FORCE_CHANGE_PASSWORD" {
            return Err(not_authorized(
                "Invalid session for the user, session is expired.",
            ));
        }
        if !record.enabled {
            return Err(not_authorized("User is disabled."));
        }
        if record.locked(self.now_ms()) {
            return Err(not_authorized("Password attempts exceeded"));
        }
        let now = self.now();
        match challenge {
            "NEW_PASSWORD_REQUIRED" => {
                let password = str_of(&responses, "NEW_PASSWORD")
                    .ok_or_else(|| invalid("Missing required parameter NEW_PASSWORD"))?;
                config.password_policy.check(password)?;
                let mut secrets = self.open_secrets(&row)?;
                self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
                    .await?;
                record.status = "CONFIRMED".into();
                let changes: Vec<(String, String)> = responses
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix("userAttributes.")?.to_owned(),
                            v.as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                // The challenge sets the required attributes the user lacks (and any others
                // the client may write); it never replaces a required one already given.
                for (name, _) in &changes {
                    if !attributes::is_owned_claim(name)
                        && config.schema.attribute(name).is_some_and(|a| a.required)
                        && attribute(&record, name).is_some_and(|v| !v.is_empty())
                    {
                        return Err(not_authorized(format!(
                            "Cannot modify an already provided {name}"
                        )));
                    }
                }
                let writable = client_config.write_attributes();
                Self::apply_attributes(
                    &config.schema,
                    &mut record,
                    &changes,
                    Writer::Client(writable.as_deref()),
                )?;
                if let Some(missing) = config.schema.missing_required(&record.attributes).first() {
                    return Err(invalid(format!(
                        "Invalid attributes given, {missing} is missing"
                    )));
                }
                record.note_session(&session.id, session.expires_at, true, now);
                let row = self.save_user(&config, &row, &record, &secrets).await?;
                self.signed_in(&pool, &client, &client_config, &row, &record)
                    .await
            }
            "SOFTWARE_TOKEN_MFA" => {
                let code = str_of(&responses, "SOFTWARE_TOKEN_MFA_CODE")
                    .ok_or_else(|| invalid("Missing required parameter SOFTWARE_TOKEN_MFA_CODE"))?;
                let mut secrets = self.open_secrets(&row)?;
                let secret = secrets
                    .totp_secret
                    .clone()
                    .ok_or_else(|| not_authorized("Invalid session for the user."))?;
                let Some(step) = totp::verify(&secret, code, self.now(), secrets.totp_last_step)
                else {
                    // A wrong code spends part of the session and counts towards the
                    // user's lockout, written before the answer is given.
                    count_failure(&mut record, self.now_ms())?;
                    record.note_session(&session.id, session.expires_at, false, now);
                    self.save_user(&config, &row, &record, &secrets).await?;
                    return Err(err(
                        "CodeMismatchException",
                        "Invalid code received for user",
                    ));
                };
                secrets.totp_last_step = step;
                record.failed_sign_ins = 0;
                record.locked_until_ms = 0;
                record.note_session(&session.id, session.expires_at, true, now);
                let row = self.save_user(&config, &row, &record, &secrets).await?;
                let result = self
                    .issue_tokens(&pool, &client, &client_config, &row, &record, None)
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
            "MFA_SETUP" => {
                if !record.software_token_mfa {
                    return Err(invalid(
                        "Software token MFA has not been set up for the user.",
                    ));
                }
                let secrets = self.open_secrets(&row)?;
                record.note_session(&session.id, session.expires_at, true, now);
                let row = self.save_user(&config, &row, &record, &secrets).await?;
                let result = self
                    .issue_tokens(&pool, &client, &client_config, &row, &record, None)
                    .await?;
                Ok(json!({ "AuthenticationResult": result, "ChallengeParameters": {} }))
            }
            other => Err(invalid(format!(
                "{other} is not supported by this server yet"
            ))),
        }
    }
}
