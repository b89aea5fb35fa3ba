//! The user directory: names and aliases, records and sealed secrets, administrative user
//! operations, sign-up and its confirmation, listing.

use crate::*;

impl UserPools<'_> {
    pub(crate) fn username_key(config: &PoolConfig, username: &str) -> String {
        if config.case_sensitive {
            username.to_owned()
        } else {
            username.to_lowercase()
        }
    }

    pub(crate) fn aliases(config: &PoolConfig, record: &UserRecord) -> Vec<String> {
        let mut out = Vec::new();
        for name in config
            .username_attributes
            .iter()
            .chain(config.alias_attributes.iter())
        {
            if name == "preferred_username" || name == "email" || name == "phone_number" {
                let verified = name == "preferred_username"
                    || config.username_attributes.contains(name)
                    || attribute(record, &format!("{name}_verified")) == Some("true");
                if verified && let Some(v) = attribute(record, name) {
                    out.push(format!("{name}:{}", v.to_lowercase()));
                }
            }
        }
        out
    }

    pub(crate) fn seal_secrets(
        &self,
        pool_id: &str,
        sub: &str,
        secrets: &UserSecrets,
    ) -> Result<Vec<u8>, ApiError> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(secrets).map_err(internal)?);
        self.master
            .seal(&format!("userpool-user:{pool_id}:{sub}"), &plain, self.rng)
            .map_err(internal)
    }

    pub(crate) fn open_secrets(&self, row: &UserRow) -> Result<UserSecrets, ApiError> {
        let plain = self
            .master
            .open(
                &format!("userpool-user:{}:{}", row.pool_id, row.sub),
                &row.secrets_sealed,
            )
            .map_err(internal)?;
        serde_json::from_slice(&plain).map_err(internal)
    }

    /// Finds a user by the name a caller gave: the username, or an email / phone number the
    /// pool uses as username or alias.
    pub(crate) async fn find_user(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        name: &str,
    ) -> Result<Option<(UserRow, UserRecord)>, ApiError> {
        let row = match self
            .store
            .pool_user(pool_id, &Self::username_key(config, name))
            .await
            .map_err(internal)?
        {
            Some(r) => Some(r),
            None => {
                let mut found = None;
                for attr in ["email", "phone_number", "preferred_username"] {
                    let used = config
                        .username_attributes
                        .iter()
                        .chain(config.alias_attributes.iter())
                        .any(|a| a == attr);
                    if used
                        && let Some(r) = self
                            .store
                            .pool_user_by_alias(pool_id, &format!("{attr}:{}", name.to_lowercase()))
                            .await
                            .map_err(internal)?
                    {
                        found = Some(r);
                        break;
                    }
                }
                found
            }
        };
        match row {
            Some(row) => {
                let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
                Ok(Some((row, record)))
            }
            None => Ok(None),
        }
    }

    pub(crate) async fn user_or_error(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        name: &str,
    ) -> Result<(UserRow, UserRecord), ApiError> {
        self.find_user(pool_id, config, name)
            .await?
            .ok_or_else(|| err("UserNotFoundException", "User does not exist."))
    }

    /// Writes a user's new state if it is still at the version `row` was read at, and returns
    /// the row as stored; a lost race is `stale()`, which starts the operation again.
    pub(crate) async fn save_user(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        record: &UserRecord,
        secrets: &UserSecrets,
    ) -> Result<UserRow, ApiError> {
        let mut row = row.clone();
        row.record = serde_json::to_string(record).map_err(internal)?;
        row.secrets_sealed = self.seal_secrets(&row.pool_id, &row.sub, secrets)?;
        row.updated_at = self.now();
        match self
            .store
            .update_pool_user(&row, &Self::aliases(config, record))
            .await
            .map_err(internal)?
        {
            Ok(true) => {
                row.version += 1;
                Ok(row)
            }
            Ok(false) => Err(err("UserNotFoundException", "User does not exist.")),
            Err(UserConflict::Stale) => Err(stale()),
            Err(_) => Err(err(
                "AliasExistsException",
                "An account with the given email already exists.",
            )),
        }
    }

    /// Builds a new user: checks its attributes against the schema and what `writer` may
    /// write, derives the username and `sub`.
    pub(crate) fn new_user(
        &self,
        config: &PoolConfig,
        username: &str,
        attributes: &[(String, String)],
        status: &str,
        (writer, when): (Writer<'_>, When),
    ) -> Result<(String, UserRecord), ApiError> {
        config.schema.check_writes(attributes, &[], writer, when)?;
        let mut attrs: Vec<(String, String)> = Vec::new();
        for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            attrs.retain(|(n, _)| n != name);
            attrs.push((name.clone(), value.clone()));
        }
        // A pool that signs users in by email or phone takes that as the username and gives
        // the user a UUID username, its `sub`.
        let sub = uuid::Uuid::new_v4().to_string();
        let mut display = username.to_owned();
        if !config.username_attributes.is_empty() {
            let looks_like = |attr: &str| match attr {
                "email" => username.contains('@'),
                "phone_number" => username.starts_with('+'),
                _ => false,
            };
            let Some(attr) = config.username_attributes.iter().find(|a| looks_like(a)) else {
                return Err(invalid(
                    "Username should be either an email or a phone number.",
                ));
            };
            attrs.retain(|(n, _)| n != attr);
            attrs.push((attr.clone(), username.to_owned()));
            display = sub.clone();
        } else if username.contains('@') && config.alias_attributes.iter().any(|a| a == "email") {
            return Err(invalid(
                "Username cannot be of email format, since user pool is configured for email alias.",
            ));
        }
        if let Some(missing) = config.schema.missing_required(&attrs).first() {
            return Err(invalid(format!(
                "Attributes did not conform to the schema: {missing}: The attribute is required"
            )));
        }
        attrs.insert(0, ("sub".into(), sub.clone()));
        Ok((
            sub,
            UserRecord {
                username: display,
                attributes: attrs,
                status: status.to_owned(),
                enabled: true,
                tokens_valid_after: 0,
                software_token_mfa: false,
                preferred_mfa: false,
                failed_sign_ins: 0,
                locked_until_ms: 0,
                legacy_locked_until: 0,
                last_attempt_at: 0,
                sessions: Vec::new(),
                sessions_floor: 0,
            },
        ))
    }

    pub(crate) async fn insert_user(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        sub: &str,
        record: &UserRecord,
        secrets: &UserSecrets,
    ) -> Result<UserRow, ApiError> {
        let row = UserRow {
            pool_id: pool_id.to_owned(),
            username_key: Self::username_key(config, &record.username),
            sub: sub.to_owned(),
            record: serde_json::to_string(record).map_err(internal)?,
            secrets_sealed: self.seal_secrets(pool_id, sub, secrets)?,
            created_at: self.now(),
            updated_at: self.now(),
            version: 0,
        };
        match self
            .store
            .create_pool_user(&row, &Self::aliases(config, record))
            .await
            .map_err(internal)?
        {
            Ok(()) => Ok(row),
            Err(UserConflict::Username) => {
                Err(err("UsernameExistsException", "User already exists"))
            }
            Err(UserConflict::Alias(_)) => Err(err(
                "UsernameExistsException",
                "An account with the given email already exists.",
            )),
            Err(UserConflict::Stale) => Err(stale()),
        }
    }

    pub(crate) fn user_json(row: &UserRow, record: &UserRecord, attributes_key: &str) -> Value {
        let attrs: Vec<Value> = record
            .attributes
            .iter()
            .map(|(n, v)| json!({ "Name": n, "Value": v }))
            .collect();
        json!({
            "Username": record.username,
            attributes_key: attrs,
            "UserCreateDate": row.created_at,
            "UserLastModifiedDate": row.updated_at,
            "Enabled": record.enabled,
            "UserStatus": record.status,
        })
    }

    pub(crate) fn mfa_json(record: &UserRecord, out: &mut Map<String, Value>) {
        if record.software_token_mfa {
            out.insert("UserMFASettingList".into(), json!(["SOFTWARE_TOKEN_MFA"]));
            if record.preferred_mfa {
                out.insert("PreferredMfaSetting".into(), json!("SOFTWARE_TOKEN_MFA"));
            }
        }
    }

    pub(crate) fn attributes_of(input: &Value, key: &str) -> Vec<(String, String)> {
        input
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| {
                        Some((
                            str_of(v, "Name")?.to_owned(),
                            str_of(v, "Value").unwrap_or("").to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) async fn admin_create_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config) = self.pool(required(input, "UserPoolId")?).await?;
        let username = required(input, "Username")?;
        let attributes = Self::attributes_of(input, "UserAttributes");
        let temporary = match str_of(input, "TemporaryPassword") {
            Some(p) => {
                config.password_policy.check(p)?;
                p.to_owned()
            }
            None => config.password_policy.generate(self.rng)?,
        };
        let (sub, record) = self.new_user(
            &config,
            username,
            &attributes,
            "FORCE_CHANGE_PASSWORD",
            (Writer::Admin, When::Create),
        )?;
        let mut secrets = UserSecrets::default();
        self.set_password(&mut secrets, &pool.pool_id, &record.username, &temporary)
            .await?;
        let row = self
            .insert_user(&pool.pool_id, &config, &sub, &record, &secrets)
            .await?;
        if str_of(input, "MessageAction") != Some("SUPPRESS") {
            self.deliver(
                &pool.pool_id,
                &record,
                "AdminCreateUser",
                "temporary_password",
                &temporary,
            )
            .await?;
        }
        Ok(json!({ "User": Self::user_json(&row, &record, "Attributes") }))
    }

    /// The pool (of the caller's account) and user an administrative call names.
    pub(crate) async fn admin_user(
        &self,
        input: &Value,
    ) -> Result<(PoolRow, PoolConfig, UserRow, UserRecord), ApiError> {
        let (pool, config) = self.pool(required(input, "UserPoolId")?).await?;
        let (row, record) = self
            .user_or_error(&pool.pool_id, &config, required(input, "Username")?)
            .await?;
        Ok((pool, config, row, record))
    }

    pub(crate) async fn admin_get_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, _, row, record) = self.admin_user(input).await?;
        let mut out = Self::user_json(&row, &record, "UserAttributes");
        if let Some(o) = out.as_object_mut() {
            o.insert("MFAOptions".into(), json!([]));
            Self::mfa_json(&record, o);
        }
        Ok(out)
    }

    pub(crate) async fn admin_delete_user(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _, row, _) = self.admin_user(input).await?;
        self.store
            .delete_pool_user(&pool.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    pub(crate) async fn admin_set_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, row, mut record) = self.admin_user(input).await?;
        let password = required(input, "Password")?;
        config.password_policy.check(password)?;
        let mut secrets = self.open_secrets(&row)?;
        self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
            .await?;
        record.status = if input.get("Permanent").and_then(Value::as_bool) == Some(true) {
            "CONFIRMED".into()
        } else {
            "FORCE_CHANGE_PASSWORD".into()
        };
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn admin_confirm(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, config, row, mut record) = self.admin_user(input).await?;
        if record.status != "UNCONFIRMED" {
            return Err(not_authorized(format!(
                "User cannot be confirmed. Current status is {}",
                record.status
            )));
        }
        let mut secrets = self.open_secrets(&row)?;
        secrets.code = None;
        record.status = "CONFIRMED".into();
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn admin_set_enabled(
        &self,
        input: &Value,
        enabled: bool,
    ) -> Result<Value, ApiError> {
        let (pool, config, row, mut record) = self.admin_user(input).await?;
        let secrets = self.open_secrets(&row)?;
        record.enabled = enabled;
        if !enabled {
            record.tokens_valid_after = self.now();
            self.store
                .revoke_user_refresh_tokens(&pool.pool_id, &row.username_key)
                .await
                .map_err(internal)?;
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn sign_out_user(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        mut record: UserRecord,
    ) -> Result<(), ApiError> {
        let secrets = self.open_secrets(row)?;
        // Every sign-in's refresh token goes, so its access tokens fail the liveness check;
        // the time also refuses any token issued before this second.
        record.tokens_valid_after = self.now();
        self.store
            .revoke_user_refresh_tokens(&row.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        self.save_user(config, row, &record, &secrets)
            .await
            .map(|_| ())
    }

    pub(crate) async fn admin_sign_out(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, config, row, record) = self.admin_user(input).await?;
        self.sign_out_user(&config, &row, record).await?;
        Ok(json!({}))
    }

    /// Checks `SECRET_HASH` when the client has a secret.
    pub(crate) fn check_secret_hash(
        &self,
        client: &ClientRow,
        username: &str,
        given: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(secret) = self.client_secret(client)? else {
            return Ok(());
        };
        let Some(given) = given else {
            return Err(not_authorized(format!(
                "Client {} is configured with secret but SECRET_HASH was not received",
                client.client_id
            )));
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let message = format!("{username}{}", client.client_id);
        let given = base64::engine::general_purpose::STANDARD
            .decode(given)
            .map_err(|_| {
                not_authorized(format!(
                    "Unable to verify secret hash for client {}",
                    client.client_id
                ))
            })?;
        ring::hmac::verify(&key, message.as_bytes(), &given).map_err(|_| {
            not_authorized(format!(
                "Unable to verify secret hash for client {}",
                client.client_id
            ))
        })
    }

    pub(crate) async fn sign_up(&self, input: &Value) -> Result<Value, ApiError> {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        let (pool, config) = self.pool(&client.pool_id).await?;
        let username = required(input, "Username")?;
        self.check_secret_hash(&client, username, str_of(input, "SecretHash"))?;
        let password = required(input, "Password")?;
        config.password_policy.check(password)?;
        let attributes = Self::attributes_of(input, "UserAttributes");
        let writable = client_config.write_attributes();
        let (sub, record) = self.new_user(
            &config,
            username,
            &attributes,
            "UNCONFIRMED",
            (Writer::Client(writable.as_deref()), When::SignUp),
        )?;
        let channel = sign_up_channel(&config, &record);
        let (code, mut pending) = self.new_code("SignUp")?;
        pending.sent_to = channel.map(str::to_owned);
        let mut secrets = UserSecrets {
            code: Some(pending),
            ..UserSecrets::default()
        };
        self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
            .await?;
        self.insert_user(&pool.pool_id, &config, &sub, &record, &secrets)
            .await?;
        let mut out = json!({ "UserConfirmed": false, "UserSub": sub });
        if let Some(attr) = channel {
            let details = self
                .deliver_to(&pool.pool_id, &record, attr, "SignUp", "code", &code)
                .await?;
            if let Some(o) = out.as_object_mut() {
                o.insert("CodeDeliveryDetails".into(), details);
            }
        }
        Ok(out)
    }

    pub(crate) async fn confirm_sign_up(&self, input: &Value) -> Result<Value, ApiError> {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        let (pool, config) = self.pool(&client.pool_id).await?;
        let username = required(input, "Username")?;
        self.check_secret_hash(&client, username, str_of(input, "SecretHash"))?;
        let Some((row, mut record)) = self.find_user(&pool.pool_id, &config, username).await?
        else {
            return Err(self
                .unknown_user(&pool.pool_id, &client_config, username)
                .await);
        };
        if record.status != "UNCONFIRMED" {
            return Err(not_authorized(format!(
                "User cannot be confirmed. Current status is {}",
                record.status
            )));
        }
        let mut secrets = self.open_secrets(&row)?;
        // The code proves the attribute it was sent to (when it was sent), and only that one.
        let sent_to = secrets
            .code
            .as_ref()
            .filter(|c| c.purpose == "SignUp")
            .and_then(|c| c.sent_to.clone());
        if let Err(e) =
            self.check_code(&mut secrets, "SignUp", required(input, "ConfirmationCode")?)
        {
            self.save_user(&config, &row, &record, &secrets).await?;
            return Err(e);
        }
        if let Some(attr) = sent_to.filter(|a| attribute(&record, a).is_some()) {
            let flag = format!("{attr}_verified");
            record.attributes.retain(|(n, _)| *n != flag);
            record.attributes.push((flag, "true".into()));
        }
        record.status = "CONFIRMED".into();
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn list_users(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let filter = match str_of(input, "Filter").filter(|f| !f.trim().is_empty()) {
            Some(f) => Some(UserFilter::parse(f)?),
            None => None,
        };
        let limit =
            usize::try_from(input.get("Limit").and_then(Value::as_i64).unwrap_or(60)).unwrap_or(60);
        let mut after = str_of(input, "PaginationToken").unwrap_or("").to_owned();
        let mut users = Vec::new();
        let mut next = None;
        'pages: loop {
            let rows = self
                .store
                .pool_users(&pool.pool_id, &after, 500)
                .await
                .map_err(internal)?;
            let fetched = rows.len();
            for row in rows {
                after = row.username_key.clone();
                let record: UserRecord = serde_json::from_str(&row.record).map_err(internal)?;
                if filter.as_ref().is_none_or(|f| f.matches(&record)) {
                    if users.len() == limit {
                        next = users
                            .last()
                            .map(|(r, _): &(UserRow, UserRecord)| r.username_key.clone());
                        break 'pages;
                    }
                    users.push((row, record));
                }
            }
            if fetched < 500 {
                break;
            }
        }
        let wanted = string_list(input, "AttributesToGet");
        let out: Vec<Value> = users
            .iter()
            .map(|(row, record)| {
                let mut record = record.clone();
                if let Some(w) = &wanted {
                    record.attributes.retain(|(n, _)| w.contains(n));
                }
                Self::user_json(row, &record, "Attributes")
            })
            .collect();
        let mut result = json!({ "Users": out });
        if let (Some(token), Some(o)) = (next, result.as_object_mut()) {
            o.insert("PaginationToken".into(), json!(token));
        }
        Ok(result)
    }
}
