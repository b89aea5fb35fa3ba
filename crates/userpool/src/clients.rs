//! App clients: secrets, token validity, read/write attributes, auth flows.

use crate::*;

impl UserPools<'_> {
    pub(crate) async fn client(
        &self,
        client_id: &str,
    ) -> Result<(ClientRow, ClientConfig), ApiError> {
        let row = self
            .store
            .app_client(client_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                err(
                    "ResourceNotFoundException",
                    format!("User pool client {client_id} does not exist."),
                )
            })?;
        let config: ClientConfig = serde_json::from_str(&row.config).map_err(internal)?;
        Ok((row, config))
    }

    pub(crate) fn client_secret(&self, row: &ClientRow) -> Result<Option<String>, ApiError> {
        match &row.secret_sealed {
            None => Ok(None),
            Some(sealed) => {
                let plain = self
                    .master
                    .open(&format!("userpool-client:{}", row.client_id), sealed)
                    .map_err(internal)?;
                Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
            }
        }
    }

    pub(crate) fn client_json(
        &self,
        row: &ClientRow,
        config: &ClientConfig,
        secret: Option<&str>,
    ) -> Value {
        let mut out = config.extra.clone();
        out.insert("UserPoolId".into(), json!(row.pool_id));
        out.insert("ClientName".into(), json!(config.name));
        out.insert("ClientId".into(), json!(row.client_id));
        if let Some(s) = secret {
            out.insert("ClientSecret".into(), json!(s));
        }
        out.insert(
            "ExplicitAuthFlows".into(),
            json!(config.explicit_auth_flows),
        );
        out.insert(
            "PreventUserExistenceErrors".into(),
            json!(if config.prevent_user_existence_errors {
                "ENABLED"
            } else {
                "LEGACY"
            }),
        );
        out.insert(
            "AccessTokenValidity".into(),
            json!(config.access_token_minutes),
        );
        out.insert("IdTokenValidity".into(), json!(config.id_token_minutes));
        out.insert(
            "RefreshTokenValidity".into(),
            json!(config.refresh_token_minutes / (24 * 60)),
        );
        out.insert(
            "TokenValidityUnits".into(),
            json!({ "AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days" }),
        );
        out.insert("CreationDate".into(), json!(row.created_at));
        out.insert("LastModifiedDate".into(), json!(row.updated_at));
        Value::Object(out)
    }

    pub(crate) async fn create_client(&self, input: &Value) -> Result<Value, ApiError> {
        self.create_client_as(input, None).await
    }

    /// CreateUserPoolClient under a client id (and, with `GenerateSecret`, a secret) chosen
    /// by the operator (`cognate apply`): the id is 1 to 128 letters, digits or `_`/`+`.
    pub async fn create_client_with_id(
        &self,
        input: &Value,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<Value, ApiError> {
        let valid = |v: &str, max: usize| {
            !v.is_empty()
                && v.len() <= max
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'+')
        };
        if !valid(client_id, 128) {
            return Err(invalid("A client id is 1 to 128 letters, digits, _ or +"));
        }
        if secret.is_some_and(|s| !valid(s, 64) || s.len() < 16) {
            return Err(invalid(
                "A client secret is 16 to 64 letters, digits, _ or +",
            ));
        }
        self.create_client_as(input, Some((client_id, secret)))
            .await
    }

    async fn create_client_as(
        &self,
        input: &Value,
        fixed: Option<(&str, Option<&str>)>,
    ) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let name = required(input, "ClientName")?;
        let access = validity_minutes(input, "AccessToken").unwrap_or(60);
        let id = validity_minutes(input, "IdToken").unwrap_or(60);
        let refresh = validity_minutes(input, "RefreshToken").unwrap_or(30 * 24 * 60);
        check_validity(access, id, refresh)?;
        let flows: Vec<String> = string_list(input, "ExplicitAuthFlows").unwrap_or_else(|| {
            vec![
                "ALLOW_REFRESH_TOKEN_AUTH".into(),
                "ALLOW_USER_SRP_AUTH".into(),
                "ALLOW_CUSTOM_AUTH".into(),
            ]
        });
        check_flows(&flows)?;
        let mut extra = input.as_object().cloned().unwrap_or_default();
        for k in CLIENT_FIELDS {
            extra.remove(*k);
        }
        let config = ClientConfig {
            name: name.to_owned(),
            explicit_auth_flows: flows,
            prevent_user_existence_errors: str_of(input, "PreventUserExistenceErrors")
                == Some("ENABLED"),
            access_token_minutes: access,
            id_token_minutes: id,
            refresh_token_minutes: refresh,
            extra,
        };
        self.check_client_attributes(&pool.pool_id, &config).await?;
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let client_id = match fixed {
            Some((id, _)) => id.to_owned(),
            None => self.random_string(26, alphabet)?,
        };
        let secret = match (input.get("GenerateSecret").and_then(Value::as_bool), fixed) {
            (Some(true), Some((_, Some(secret)))) => Some(secret.to_owned()),
            (Some(true), _) => Some(self.random_string(51, alphabet)?),
            _ => None,
        };
        let secret_sealed = match &secret {
            Some(s) => Some(
                self.master
                    .seal(
                        &format!("userpool-client:{client_id}"),
                        s.as_bytes(),
                        self.rng,
                    )
                    .map_err(internal)?,
            ),
            None => None,
        };
        let row = ClientRow {
            client_id,
            pool_id: pool.pool_id,
            secret_sealed,
            config: serde_json::to_string(&config).map_err(internal)?,
            created_at: self.now(),
            updated_at: self.now(),
        };
        if !self.store.create_app_client(&row).await.map_err(internal)? {
            return Err(err(
                "ResourceNotFoundException",
                "User pool does not exist.",
            ));
        }
        Ok(json!({ "UserPoolClient": self.client_json(&row, &config, secret.as_deref()) }))
    }

    /// A client's `ReadAttributes` and `WriteAttributes` must name attributes of its pool.
    pub(crate) async fn check_client_attributes(
        &self,
        pool_id: &str,
        config: &ClientConfig,
    ) -> Result<(), ApiError> {
        let (_, pool) = self.pool(pool_id).await?;
        for (list, word) in [
            (config.read_attributes(), "read"),
            (config.write_attributes(), "write"),
        ] {
            let unknown = list
                .into_iter()
                .flatten()
                .any(|a| pool.schema.attribute(&a).is_none() || (word == "write" && a == "sub"));
            if unknown {
                return Err(invalid(format!(
                    "Invalid {word} attributes specified while creating a client"
                )));
            }
        }
        Ok(())
    }

    /// A client of a pool of the caller's account.
    pub(crate) async fn owned_client(
        &self,
        input: &Value,
    ) -> Result<(ClientRow, ClientConfig), ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let (row, config) = self.client(required(input, "ClientId")?).await?;
        if row.pool_id != pool.pool_id {
            return Err(err(
                "ResourceNotFoundException",
                "User pool client does not exist.",
            ));
        }
        Ok((row, config))
    }

    pub(crate) async fn update_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (mut row, mut config) = self.owned_client(input).await?;
        if let Some(name) = str_of(input, "ClientName") {
            config.name = name.to_owned();
        }
        if let Some(flows) = string_list(input, "ExplicitAuthFlows") {
            check_flows(&flows)?;
            config.explicit_auth_flows = flows;
        }
        if let Some(p) = str_of(input, "PreventUserExistenceErrors") {
            config.prevent_user_existence_errors = p == "ENABLED";
        }
        if let Some(m) = validity_minutes(input, "AccessToken") {
            config.access_token_minutes = m;
        }
        if let Some(m) = validity_minutes(input, "IdToken") {
            config.id_token_minutes = m;
        }
        if let Some(m) = validity_minutes(input, "RefreshToken") {
            config.refresh_token_minutes = m;
        }
        for (k, v) in input.as_object().into_iter().flatten() {
            if !CLIENT_FIELDS.contains(&k.as_str()) && k != "ClientId" {
                config.extra.insert(k.clone(), v.clone());
            }
        }
        self.check_client_attributes(&row.pool_id, &config).await?;
        check_validity(
            config.access_token_minutes,
            config.id_token_minutes,
            config.refresh_token_minutes,
        )?;
        let expected = std::mem::replace(
            &mut row.config,
            serde_json::to_string(&config).map_err(internal)?,
        );
        row.updated_at = self.now();
        swapped(self.store.update_app_client(&row, &expected).await)?;
        let secret = self.client_secret(&row)?;
        Ok(json!({ "UserPoolClient": self.client_json(&row, &config, secret.as_deref()) }))
    }

    pub(crate) async fn describe_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, config) = self.owned_client(input).await?;
        let secret = self.client_secret(&row)?;
        Ok(json!({ "UserPoolClient": self.client_json(&row, &config, secret.as_deref()) }))
    }

    pub(crate) async fn delete_client(&self, input: &Value) -> Result<Value, ApiError> {
        let (row, _) = self.owned_client(input).await?;
        self.store
            .delete_app_client(&row.client_id)
            .await
            .map_err(internal)?;
        Ok(json!({}))
    }

    pub(crate) async fn list_clients(&self, input: &Value) -> Result<Value, ApiError> {
        let (pool, _) = self.pool(required(input, "UserPoolId")?).await?;
        let max = input
            .get("MaxResults")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let after = str_of(input, "NextToken").unwrap_or("");
        let mut rows = self
            .store
            .app_clients_of(&pool.pool_id, after, max + 1)
            .await
            .map_err(internal)?;
        let more = keep_page(&mut rows, max);
        let mut clients = Vec::new();
        for r in &rows {
            let config: ClientConfig = serde_json::from_str(&r.config).map_err(internal)?;
            clients.push(json!({ "ClientId": r.client_id, "UserPoolId": r.pool_id, "ClientName": config.name }));
        }
        let mut out = json!({ "UserPoolClients": clients });
        if more && let (Some(last), Some(obj)) = (rows.last(), out.as_object_mut()) {
            obj.insert("NextToken".into(), json!(last.client_id));
        }
        Ok(out)
    }
}

/// Cognito's rule for `ExplicitAuthFlows`: the legacy names (`ADMIN_NO_SRP_AUTH`,
/// `USER_PASSWORD_AUTH`, `CUSTOM_AUTH_FLOW_ONLY`) and the `ALLOW_` names are not mixed.
fn check_flows(flows: &[String]) -> Result<(), ApiError> {
    let legacy = flows.iter().filter(|f| !f.starts_with("ALLOW_")).count();
    if legacy > 0 && legacy < flows.len() {
        return Err(invalid(
            "ExplicitAuthFlows cannot mix the legacy values (ADMIN_NO_SRP_AUTH, USER_PASSWORD_AUTH, CUSTOM_AUTH_FLOW_ONLY) with values that begin with ALLOW_.",
        ));
    }
    Ok(())
}
