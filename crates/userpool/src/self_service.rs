//! What a signed-in user (or an unauthenticated client) does for itself: forgotten and
//! changed passwords, codes resent, attributes updated and verified, deleting itself.

use crate::*;

impl UserPools<'_> {
    /// A public call's client, pool and named user (checking `SecretHash`).
    pub(crate) async fn client_user(
        &self,
        input: &Value,
    ) -> Result<
        (
            PoolRow,
            PoolConfig,
            ClientConfig,
            Option<(UserRow, UserRecord)>,
        ),
        ApiError,
    > {
        let (client, client_config) = self.client(required(input, "ClientId")?).await?;
        let (pool, config) = self.pool(&client.pool_id).await?;
        let username = required(input, "Username")?;
        self.check_secret_hash(&client, username, str_of(input, "SecretHash"))?;
        let user = self.find_user(&pool.pool_id, &config, username).await?;
        Ok((pool, config, client_config, user))
    }

    /// What ForgotPassword and ResendConfirmationCode answer, with PreventUserExistenceErrors,
    /// for a user that does not exist (or cannot be sent a code): the answer a real user would
    /// get, in shape and in cost. The destination follows the username's form and the pool's
    /// verification settings; its letters are a keyed digest of the name, the same on every
    /// call and unpredictable without the master key.
    pub(crate) async fn simulated_delivery(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        username: &str,
    ) -> Result<Value, ApiError> {
        let digest = self.master.digest(
            "userpool-simulated-delivery",
            format!("{pool_id}\0{}", username.to_lowercase()).as_bytes(),
        );
        let byte = |i: usize| digest.get(i).copied().unwrap_or(0);
        // The same durable write a real user's code costs.
        self.decoy(pool_id, username).await?;
        let by_sms = username.starts_with('+')
            || (!username.contains('@')
                && config
                    .auto_verified_attributes
                    .iter()
                    .any(|a| a == "phone_number")
                && !config.auto_verified_attributes.iter().any(|a| a == "email"));
        let destination = if username.contains('@') || username.starts_with('+') {
            mask(username)
        } else if by_sms {
            let digits: String = (0..4).map(|i| char::from(b'0' + byte(i) % 10)).collect();
            mask(&format!("+1555000{digits}"))
        } else {
            let letter = |i: usize| char::from(b'a' + byte(i) % 26);
            mask(&format!("{}@{}", letter(0), letter(1)))
        };
        let (medium, attr) = if by_sms {
            ("SMS", "phone_number")
        } else {
            ("EMAIL", "email")
        };
        Ok(json!({ "Destination": destination, "DeliveryMedium": medium, "AttributeName": attr }))
    }

    /// ForgotPassword's and ResendConfirmationCode's answer for a name that is no user.
    pub(crate) async fn simulated_answer(
        &self,
        pool_id: &str,
        config: &PoolConfig,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let username = required(input, "Username")?;
        let details = self.simulated_delivery(pool_id, config, username).await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    pub(crate) async fn forgot_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, client_config, user) = self.client_user(input).await?;
        let prevent = client_config.prevent_user_existence_errors;
        let reachable = |record: &UserRecord| {
            record.enabled
                && (attribute(record, "email").is_some()
                    || attribute(record, "phone_number").is_some())
        };
        let (row, record) = match user {
            Some((row, record)) if !prevent || reachable(&record) => (row, record),
            _ if prevent => {
                return self.simulated_answer(&pool.pool_id, &config, input).await;
            }
            _ => return Err(err("UserNotFoundException", "User does not exist.")),
        };
        if attribute(&record, "email").is_none() && attribute(&record, "phone_number").is_none() {
            return Err(invalid(
                "Cannot reset password for the user as there is no registered/verified email or phone_number",
            ));
        }
        let mut secrets = self.open_secrets(&row)?;
        let (code, pending) = self.new_code("ForgotPassword")?;
        secrets.code = Some(pending);
        self.save_user(&config, &row, &record, &secrets).await?;
        let details = self
            .deliver(&pool.pool_id, &record, "ForgotPassword", "code", &code)
            .await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    pub(crate) async fn confirm_forgot_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, client_config, user) = self.client_user(input).await?;
        let Some((row, mut record)) = user else {
            let username = required(input, "Username")?;
            return Err(self
                .unknown_user(&pool.pool_id, &client_config, username)
                .await);
        };
        let mut secrets = self.open_secrets(&row)?;
        if let Err(e) = self.check_code(
            &mut secrets,
            "ForgotPassword",
            required(input, "ConfirmationCode")?,
        ) {
            self.save_user(&config, &row, &record, &secrets).await?;
            return Err(e);
        }
        let password = required(input, "Password")?;
        config.password_policy.check(password)?;
        self.set_password(&mut secrets, &pool.pool_id, &record.username, password)
            .await?;
        if record.status == "RESET_REQUIRED" || record.status == "FORCE_CHANGE_PASSWORD" {
            record.status = "CONFIRMED".into();
        }
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn change_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let mut secrets = self.open_secrets(&row)?;
        let previous = required(input, "PreviousPassword")?;
        // A stolen access token buys no more password guesses than a sign-in does.
        let slot = self.attempt_slot(&row, &record)?;
        if !password::verify_off_thread(
            previous,
            pool_suffix(&row.pool_id),
            &record.username,
            Some(&secrets),
        )
        .await
        {
            self.attempt_failed(&config, &row, record, None).await?;
            return Err(not_authorized("Incorrect username or password."));
        }
        drop(slot);
        let proposed = required(input, "ProposedPassword")?;
        config.password_policy.check(proposed)?;
        self.set_password(&mut secrets, &row.pool_id, &record.username, proposed)
            .await?;
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn resend_code(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, client_config, user) = self.client_user(input).await?;
        let (row, record) = match user {
            Some((row, record))
                if !client_config.prevent_user_existence_errors || record.enabled =>
            {
                (row, record)
            }
            _ if client_config.prevent_user_existence_errors => {
                return self.simulated_answer(&pool.pool_id, &config, input).await;
            }
            _ => return Err(err("UserNotFoundException", "User does not exist.")),
        };
        if record.status != "UNCONFIRMED" {
            return Err(invalid("User is already confirmed."));
        }
        let Some(attr) = sign_up_channel(&config, &record) else {
            return Err(invalid(
                "The user has none of the pool's auto-verified attributes (AutoVerifiedAttributes) to send a code to.",
            ));
        };
        let mut secrets = self.open_secrets(&row)?;
        let (code, mut pending) = self.new_code("SignUp")?;
        pending.sent_to = Some(attr.to_owned());
        secrets.code = Some(pending);
        self.save_user(&config, &row, &record, &secrets).await?;
        let details = self
            .deliver_to(&pool.pool_id, &record, attr, "SignUp", "code", &code)
            .await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    /// Applies attribute changes; a changed email or phone number becomes unverified.
    /// Returns the attributes that now need verification.
    /// Every request's attribute changes pass here: the pool's schema, the writer's
    /// permissions and mutability decide before anything is applied; an empty value removes
    /// the attribute.
    pub(crate) fn apply_attributes(
        schema: &attributes::Schema,
        record: &mut UserRecord,
        changes: &[(String, String)],
        writer: Writer<'_>,
    ) -> Result<Vec<String>, ApiError> {
        schema.check_writes(changes, &record.attributes, writer, When::Update)?;
        let mut to_verify = Vec::new();
        for (name, value) in changes {
            let changed = attribute(record, name) != Some(value.as_str());
            record.attributes.retain(|(n, _)| n != name);
            if value.is_empty() {
                continue;
            }
            record.attributes.push((name.clone(), value.clone()));
            let explicit_flag = changes
                .iter()
                .any(|(n, _)| *n == format!("{name}_verified"));
            if changed && (name == "email" || name == "phone_number") && !explicit_flag {
                let flag = format!("{name}_verified");
                record.attributes.retain(|(n, _)| *n != flag);
                record.attributes.push((flag, "false".into()));
                to_verify.push(name.clone());
            }
        }
        Ok(to_verify)
    }

    /// The user of an access token, and the attributes the client it was issued to may write.
    async fn token_writer(
        &self,
        input: &Value,
    ) -> Result<(PoolConfig, UserRow, UserRecord, Option<Vec<String>>), ApiError> {
        let token = required(input, "AccessToken")?;
        let (config, row, record) = self.access_token_user(token).await?;
        // The token was issued to this client: its write permissions apply.
        let client_id = keys::peek(token)
            .and_then(|(_, claims)| str_of(&claims, "client_id").map(str::to_owned))
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let (_, client_config) = self.client(&client_id).await?;
        Ok((config, row, record, client_config.write_attributes()))
    }

    /// DeleteUserAttributes (the signed-in user, as its client may write) and
    /// AdminDeleteUserAttributes: the attributes go, unless required or immutable; a contact
    /// attribute that goes takes its verification flag with it.
    pub(crate) async fn delete_attributes(
        &self,
        input: &Value,
        admin: bool,
    ) -> Result<Value, ApiError> {
        let removals: Vec<(String, String)> = string_list(input, "UserAttributeNames")
            .unwrap_or_default()
            .into_iter()
            .map(|name| (name, String::new()))
            .collect();
        let (config, row, mut record, writable) = if admin {
            let (_, config, row, record) = self.admin_user(input).await?;
            (config, row, record, None)
        } else {
            self.token_writer(input).await?
        };
        let writer = if admin {
            Writer::Admin
        } else {
            Writer::Client(writable.as_deref())
        };
        Self::apply_attributes(&config.schema, &mut record, &removals, writer)?;
        for contact in ["email", "phone_number"] {
            if attribute(&record, contact).is_none() {
                let flag = format!("{contact}_verified");
                record.attributes.retain(|(n, _)| *n != flag);
            }
        }
        let secrets = self.open_secrets(&row)?;
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn update_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, mut record, writable) = self.token_writer(input).await?;
        let changes = Self::attributes_of(input, "UserAttributes");
        let to_verify = Self::apply_attributes(
            &config.schema,
            &mut record,
            &changes,
            Writer::Client(writable.as_deref()),
        )?;
        let mut secrets = self.open_secrets(&row)?;
        let mut codes = Vec::new();
        for name in to_verify
            .iter()
            .filter(|n| config.auto_verified_attributes.contains(n))
        {
            let purpose = format!("VerifyAttribute:{name}");
            let (code, pending) = self.new_code(&purpose)?;
            secrets.code = Some(pending);
            codes.push((purpose, code));
        }
        // Written first: a change that loses a race (and runs again) sends nothing twice.
        self.save_user(&config, &row, &record, &secrets).await?;
        let mut details = Vec::new();
        for (purpose, code) in codes {
            // A code verifying an attribute goes to that attribute.
            let attr = purpose.strip_prefix("VerifyAttribute:").unwrap_or("email");
            details.push(
                self.deliver_to(&row.pool_id, &record, attr, &purpose, "code", &code)
                    .await?,
            );
        }
        Ok(json!({ "CodeDeliveryDetailsList": details }))
    }

    pub(crate) async fn attribute_code(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let name = required(input, "AttributeName")?;
        if name != "email" && name != "phone_number" {
            return Err(invalid(format!("{name} cannot be verified")));
        }
        if attribute(&record, name).is_none() {
            return Err(invalid(format!("The user has no {name}")));
        }
        let mut secrets = self.open_secrets(&row)?;
        let purpose = format!("VerifyAttribute:{name}");
        let (code, pending) = self.new_code(&purpose)?;
        secrets.code = Some(pending);
        self.save_user(&config, &row, &record, &secrets).await?;
        let details = self
            .deliver_to(&row.pool_id, &record, name, &purpose, "code", &code)
            .await?;
        Ok(json!({ "CodeDeliveryDetails": details }))
    }

    pub(crate) async fn verify_attribute(&self, input: &Value) -> Result<Value, ApiError> {
        let (config, row, mut record) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        let name = required(input, "AttributeName")?;
        let mut secrets = self.open_secrets(&row)?;
        if let Err(e) = self.check_code(
            &mut secrets,
            &format!("VerifyAttribute:{name}"),
            required(input, "Code")?,
        ) {
            self.save_user(&config, &row, &record, &secrets).await?;
            return Err(e);
        }
        let flag = format!("{name}_verified");
        record.attributes.retain(|(n, _)| *n != flag);
        record.attributes.push((flag, "true".into()));
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn delete_self(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, row, _) = self
            .access_token_user(required(input, "AccessToken")?)
            .await?;
        self.store
            .delete_pool_user(&row.pool_id, &row.username_key)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    pub(crate) async fn admin_update_attributes(&self, input: &Value) -> Result<Value, ApiError> {
        let (_, config, row, mut record) = self.admin_user(input).await?;
        let changes = Self::attributes_of(input, "UserAttributes");
        Self::apply_attributes(&config.schema, &mut record, &changes, Writer::Admin)?;
        let secrets = self.open_secrets(&row)?;
        self.save_user(&config, &row, &record, &secrets).await?;
        Ok(json!({}))
    }

    pub(crate) async fn admin_reset_password(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, config, row, mut record) = self.admin_user(input).await?;
        let mut secrets = self.open_secrets(&row)?;
        let (code, pending) = self.new_code("ForgotPassword")?;
        secrets.code = Some(pending);
        record.status = "RESET_REQUIRED".into();
        self.save_user(&config, &row, &record, &secrets).await?;
        self.deliver(&pool.pool_id, &record, "ForgotPassword", "code", &code)
            .await?;
        Ok(json!({}))
    }
}
