//! The SNS mobile-push subset Cognito Sync uses "under the hood": platform applications,
//! their device endpoints, and Publish to an endpoint, with AWS's errors. `GCM` applications
//! deliver through Firebase Cloud Messaging's HTTP v1 API with a service account key (the
//! `PlatformCredential`, sealed at rest and never returned); `APNS` and `APNS_SANDBOX`
//! applications through Apple's HTTP/2 provider API with token authentication (the `.p8`
//! signing key as `PlatformCredential`, its key id as `PlatformPrincipal`,
//! `ApplePlatformTeamID`, `ApplePlatformBundleID`).
//!
//! The server has authenticated the caller and authorized the operation with IAM; this crate
//! keeps each account to its own applications.

mod apns;
mod error;
mod fcm;
mod push;

pub use error::{Result, SnsError};
pub use push::{Providers, Push};

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cognate_credentials::MasterKey;
use cognate_protocol::services;
use cognate_protocol::shapes::sns as shapes;
use cognate_store::{ApplicationRow, EndpointRow, Store};
use ring::rand::SecureRandom;
use serde_json::{Value, json};

pub use services::sns::Operation;

/// Items per page of the list operations.
const PAGE: i64 = 100;
/// The platforms this server delivers to.
const PLATFORMS: &[&str] = &["GCM", "APNS", "APNS_SANDBOX"];
/// Attributes stored sealed, never returned.
const SECRET_ATTRIBUTES: &[&str] = &["PlatformCredential", "PlatformPrincipal"];

/// The operations implemented here.
pub fn implements(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        CreatePlatformApplication
            | GetPlatformApplicationAttributes
            | SetPlatformApplicationAttributes
            | DeletePlatformApplication
            | ListPlatformApplications
            | CreatePlatformEndpoint
            | GetEndpointAttributes
            | SetEndpointAttributes
            | DeleteEndpoint
            | ListEndpointsByPlatformApplication
            | Publish
    )
}

/// One request's view of SNS.
pub struct Sns<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub rng: &'a (dyn SecureRandom + Sync),
    pub push: &'a Arc<Push>,
    pub region: &'a str,
    /// The signed caller's account.
    pub account: &'a str,
    pub now: time::OffsetDateTime,
}

fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T> {
    serde_json::from_value(input).map_err(|e| SnsError::InvalidParameter(e.to_string()))
}

fn to_value<T: serde::Serialize>(out: T) -> Result<Value> {
    serde_json::to_value(out).map_err(SnsError::internal)
}

fn attributes(json: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json).map_err(SnsError::internal)
}

fn page_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

fn page_after(token: Option<&str>) -> Result<String> {
    match token {
        None => Ok(String::new()),
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| SnsError::invalid("NextToken", "Invalid token")),
    }
}

fn not_found_application() -> SnsError {
    SnsError::NotFound("PlatformApplication does not exist".to_owned())
}

fn not_found_endpoint() -> SnsError {
    SnsError::NotFound("Endpoint does not exist".to_owned())
}

/// The sealed credential's context: the application it belongs to.
fn credential_context(arn: &str) -> String {
    format!("sns/application/{arn}")
}

/// Marks an endpoint disabled (its provider refused its token).
pub(crate) async fn disable_endpoint(store: &Store, arn: &str) -> Result<()> {
    for _ in 0..8 {
        let Some(row) = store.sns_endpoint(arn).await? else {
            return Ok(());
        };
        let mut attrs = attributes(&row.attributes)?;
        attrs.insert("Enabled".to_owned(), "false".to_owned());
        let text = serde_json::to_string(&attrs).map_err(SnsError::internal)?;
        if store
            .update_sns_endpoint(arn, &row.attributes, &row.token, &text)
            .await?
        {
            return Ok(());
        }
    }
    Ok(())
}

impl Sns<'_> {
    fn now_ms(&self) -> i64 {
        (self.now.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Runs one operation on its model-shaped input.
    pub async fn call(&self, op: Operation, input: Value) -> Result<Value> {
        use Operation::*;
        match op {
            CreatePlatformApplication => {
                to_value(self.create_platform_application(parse(input)?).await?)
            }
            GetPlatformApplicationAttributes => {
                let input: shapes::GetPlatformApplicationAttributesInput = parse(input)?;
                let app = self.application(&input.platform_application_arn).await?;
                to_value(shapes::GetPlatformApplicationAttributesResponse {
                    attributes: Some(attributes(&app.attributes)?),
                })
            }
            SetPlatformApplicationAttributes => {
                self.set_platform_application_attributes(parse(input)?)
                    .await?;
                Ok(json!({}))
            }
            DeletePlatformApplication => {
                let input: shapes::DeletePlatformApplicationInput = parse(input)?;
                if self
                    .application(&input.platform_application_arn)
                    .await
                    .is_ok()
                {
                    self.store
                        .delete_sns_application(&input.platform_application_arn)
                        .await?;
                }
                Ok(json!({}))
            }
            ListPlatformApplications => {
                let input: shapes::ListPlatformApplicationsInput = parse(input)?;
                let after = page_after(input.next_token.as_deref())?;
                let mut rows = self
                    .store
                    .sns_applications(self.account, &after, PAGE + 1)
                    .await?;
                let next_token = (rows.len() as i64 > PAGE).then(|| {
                    rows.truncate(PAGE as usize);
                    rows.last().map(|r| page_token(&r.arn))
                });
                let apps = rows
                    .iter()
                    .map(|r| {
                        Ok(shapes::PlatformApplication {
                            platform_application_arn: Some(r.arn.clone()),
                            attributes: Some(attributes(&r.attributes)?),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                to_value(shapes::ListPlatformApplicationsResponse {
                    platform_applications: Some(apps),
                    next_token: next_token.flatten(),
                })
            }
            CreatePlatformEndpoint => to_value(self.create_platform_endpoint(parse(input)?).await?),
            GetEndpointAttributes => {
                let input: shapes::GetEndpointAttributesInput = parse(input)?;
                let endpoint = self.endpoint(&input.endpoint_arn).await?;
                let mut attrs = attributes(&endpoint.attributes)?;
                attrs.insert("Token".to_owned(), endpoint.token);
                to_value(shapes::GetEndpointAttributesResponse {
                    attributes: Some(attrs),
                })
            }
            SetEndpointAttributes => {
                self.set_endpoint_attributes(parse(input)?).await?;
                Ok(json!({}))
            }
            DeleteEndpoint => {
                let input: shapes::DeleteEndpointInput = parse(input)?;
                if self.endpoint(&input.endpoint_arn).await.is_ok() {
                    self.store.delete_sns_endpoint(&input.endpoint_arn).await?;
                }
                Ok(json!({}))
            }
            ListEndpointsByPlatformApplication => {
                let input: shapes::ListEndpointsByPlatformApplicationInput = parse(input)?;
                let app = self.application(&input.platform_application_arn).await?;
                let after = page_after(input.next_token.as_deref())?;
                let mut rows = self.store.sns_endpoints(&app.arn, &after, PAGE + 1).await?;
                let next_token = (rows.len() as i64 > PAGE).then(|| {
                    rows.truncate(PAGE as usize);
                    rows.last().map(|r| page_token(&r.arn))
                });
                let endpoints = rows
                    .into_iter()
                    .map(|r| {
                        let mut attrs = attributes(&r.attributes)?;
                        attrs.insert("Token".to_owned(), r.token);
                        Ok(shapes::Endpoint {
                            endpoint_arn: Some(r.arn),
                            attributes: Some(attrs),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                to_value(shapes::ListEndpointsByPlatformApplicationResponse {
                    endpoints: Some(endpoints),
                    next_token: next_token.flatten(),
                })
            }
            Publish => to_value(self.publish(parse(input)?).await?),
            _ => Err(SnsError::internal(format!(
                "{} is not implemented",
                op.name()
            ))),
        }
    }

    /// The caller's application with this ARN.
    async fn application(&self, arn: &str) -> Result<ApplicationRow> {
        self.store
            .sns_application(arn)
            .await?
            .filter(|a| a.account_id == self.account)
            .ok_or_else(not_found_application)
    }

    /// The caller's endpoint with this ARN, with its application.
    async fn endpoint(&self, arn: &str) -> Result<EndpointRow> {
        let endpoint = self
            .store
            .sns_endpoint(arn)
            .await?
            .ok_or_else(not_found_endpoint)?;
        self.application(&endpoint.application_arn)
            .await
            .map_err(|_| not_found_endpoint())?;
        Ok(endpoint)
    }

    /// Checks a platform's credential and returns the public attributes and the sealed ones.
    fn split_attributes(
        &self,
        arn: &str,
        platform: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<(BTreeMap<String, String>, Vec<u8>)> {
        let credential = given
            .get("PlatformCredential")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                SnsError::invalid("Attributes", "PlatformCredential attribute is required")
            })?;
        let readable = match platform {
            // FCM's legacy server keys no longer work anywhere; a service account key does.
            "GCM" => fcm::ServiceAccount::parse(credential).is_some(),
            _ => {
                let attribute = |name: &str| given.get(name).map(String::as_str).unwrap_or("");
                for name in [
                    "PlatformPrincipal",
                    "ApplePlatformTeamID",
                    "ApplePlatformBundleID",
                ] {
                    if attribute(name).is_empty() {
                        return Err(SnsError::invalid(
                            "Attributes",
                            format!("{name} attribute is required for token authentication"),
                        ));
                    }
                }
                apns::SigningKey::parse(
                    credential,
                    attribute("PlatformPrincipal"),
                    attribute("ApplePlatformTeamID"),
                    attribute("ApplePlatformBundleID"),
                )
                .is_some()
            }
        };
        if !readable {
            return Err(SnsError::invalid(
                "Attributes",
                "Platform credentials are invalid",
            ));
        }
        let mut public: BTreeMap<String, String> = given
            .iter()
            .filter(|(k, _)| !SECRET_ATTRIBUTES.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        public
            .entry("Enabled".to_owned())
            .or_insert_with(|| "true".to_owned());
        public.insert("AuthenticationMethod".to_owned(), "Token".to_owned());
        let secret: BTreeMap<&str, &str> = given
            .iter()
            .filter(|(k, _)| SECRET_ATTRIBUTES.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let plain =
            zeroize::Zeroizing::new(serde_json::to_vec(&secret).map_err(SnsError::internal)?);
        let sealed = self
            .master
            .seal(&credential_context(arn), &plain, self.rng)
            .map_err(SnsError::internal)?;
        Ok((public, sealed))
    }

    async fn create_platform_application(
        &self,
        input: shapes::CreatePlatformApplicationInput,
    ) -> Result<shapes::CreatePlatformApplicationResponse> {
        let valid_name = (1..=256).contains(&input.name.len())
            && input
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid_name {
            return Err(SnsError::invalid(
                "Name",
                "must be 1 to 256 letters, digits, underscores, hyphens or periods",
            ));
        }
        if !PLATFORMS.contains(&input.platform.as_str()) {
            return Err(SnsError::invalid(
                "Platform",
                format!("{} is not supported", input.platform),
            ));
        }
        let arn = format!(
            "arn:aws:sns:{}:{}:app/{}/{}",
            self.region, self.account, input.platform, input.name
        );
        let (public, sealed) = self.split_attributes(&arn, &input.platform, &input.attributes)?;
        let attributes_json = serde_json::to_string(&public).map_err(SnsError::internal)?;
        if let Some(existing) = self.store.sns_application(&arn).await? {
            // The same name again is the same application if nothing differs.
            let same_secret = existing
                .credential_sealed
                .as_deref()
                .and_then(|s| self.master.open(&credential_context(&arn), s).ok())
                .is_some_and(|plain| {
                    serde_json::from_slice::<BTreeMap<String, String>>(&plain).ok()
                        == Some(
                            input
                                .attributes
                                .iter()
                                .filter(|(k, _)| SECRET_ATTRIBUTES.contains(&k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        )
                });
            if existing.attributes != attributes_json || !same_secret {
                return Err(SnsError::invalid(
                    "Name",
                    "An application with the same name but different properties already exists",
                ));
            }
        } else {
            self.store
                .put_sns_application(&ApplicationRow {
                    arn: arn.clone(),
                    account_id: self.account.to_owned(),
                    name: input.name,
                    platform: input.platform,
                    attributes: attributes_json,
                    credential_sealed: Some(sealed),
                    created_ms: self.now_ms(),
                })
                .await?;
        }
        Ok(shapes::CreatePlatformApplicationResponse {
            platform_application_arn: Some(arn),
        })
    }

    async fn set_platform_application_attributes(
        &self,
        input: shapes::SetPlatformApplicationAttributesInput,
    ) -> Result<()> {
        for _ in 0..8 {
            let app = self.application(&input.platform_application_arn).await?;
            let mut public = attributes(&app.attributes)?;
            let mut sealed = app.credential_sealed.clone();
            if input
                .attributes
                .keys()
                .any(|k| SECRET_ATTRIBUTES.contains(&k.as_str()))
            {
                let (new_public, new_sealed) =
                    self.split_attributes(&app.arn, &app.platform, &input.attributes)?;
                public.extend(new_public);
                sealed = Some(new_sealed);
            } else {
                for (k, v) in &input.attributes {
                    public.insert(k.clone(), v.clone());
                }
            }
            let text = serde_json::to_string(&public).map_err(SnsError::internal)?;
            if self
                .store
                .update_sns_application(&app.arn, &app.attributes, &text, sealed.as_deref())
                .await?
            {
                return Ok(());
            }
        }
        Err(SnsError::internal("application attributes kept changing"))
    }

    async fn create_platform_endpoint(
        &self,
        input: shapes::CreatePlatformEndpointInput,
    ) -> Result<shapes::CreateEndpointResponse> {
        let app = self.application(&input.platform_application_arn).await?;
        if input.token.is_empty() {
            return Err(SnsError::invalid("Token", "cannot be empty"));
        }
        if input.token.len() > 8192 {
            return Err(SnsError::invalid(
                "Token",
                "must be at most 8192 bytes long in UTF-8 encoding",
            ));
        }
        if !token_fits(&app.platform, &input.token) {
            return Err(SnsError::invalid("Token", APNS_TOKEN));
        }
        let given = input.attributes.unwrap_or_default();
        let custom = input
            .custom_user_data
            .or_else(|| given.get("CustomUserData").cloned());
        if custom.as_ref().is_some_and(|c| c.len() > 2048) {
            return Err(SnsError::invalid(
                "Attributes",
                "Invalid value for attribute: CustomUserData: must be at most 2048 bytes long in UTF-8 encoding",
            ));
        }
        let enabled = given.get("Enabled").cloned();
        if let Some(existing) = self
            .store
            .sns_endpoint_by_token(&app.arn, &input.token)
            .await?
        {
            // The same token again is the same endpoint if what it says matches (Enabled only
            // when given); the endpoint is not changed.
            let attrs = attributes(&existing.attributes)?;
            let same = attrs.get("CustomUserData") == custom.as_ref()
                && enabled
                    .as_ref()
                    .is_none_or(|e| attrs.get("Enabled") == Some(e));
            if !same {
                return Err(SnsError::invalid(
                    "Token",
                    format!(
                        "Endpoint {} already exists with the same Token, but different attributes.",
                        existing.arn
                    ),
                ));
            }
            return Ok(shapes::CreateEndpointResponse {
                endpoint_arn: Some(existing.arn),
            });
        }
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "Enabled".to_owned(),
            enabled.unwrap_or_else(|| "true".to_owned()),
        );
        if let Some(c) = custom {
            attrs.insert("CustomUserData".to_owned(), c);
        }
        let arn = format!(
            "arn:aws:sns:{}:{}:endpoint/{}/{}/{}",
            self.region,
            self.account,
            app.platform,
            app.name,
            uuid::Uuid::new_v4()
        );
        let row = EndpointRow {
            arn: arn.clone(),
            application_arn: app.arn.clone(),
            token: input.token.clone(),
            attributes: serde_json::to_string(&attrs).map_err(SnsError::internal)?,
        };
        match self.store.create_sns_endpoint(&row).await {
            Ok(()) => Ok(shapes::CreateEndpointResponse {
                endpoint_arn: Some(arn),
            }),
            // Another request registered the token first: that endpoint is the answer.
            Err(cognate_store::StoreError::Conflict) => Ok(shapes::CreateEndpointResponse {
                endpoint_arn: self
                    .store
                    .sns_endpoint_by_token(&app.arn, &input.token)
                    .await?
                    .map(|e| e.arn),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_endpoint_attributes(
        &self,
        input: shapes::SetEndpointAttributesInput,
    ) -> Result<()> {
        for (k, v) in &input.attributes {
            match k.as_str() {
                "Token" if v.is_empty() => {
                    return Err(SnsError::invalid(
                        "Attributes",
                        "Invalid value for attribute: Token: cannot be empty",
                    ));
                }
                "Enabled" if v != "true" && v != "false" => {
                    return Err(SnsError::invalid(
                        "Attributes",
                        "Invalid value for attribute: Enabled: must be true or false",
                    ));
                }
                "CustomUserData" if v.len() > 2048 => {
                    return Err(SnsError::invalid(
                        "Attributes",
                        "Invalid value for attribute: CustomUserData: must be at most 2048 bytes long in UTF-8 encoding",
                    ));
                }
                "Token" | "Enabled" | "CustomUserData" => {}
                other => {
                    return Err(SnsError::invalid(
                        "Attributes",
                        format!("Invalid attribute name: {other}"),
                    ));
                }
            }
        }
        for _ in 0..8 {
            let endpoint = self.endpoint(&input.endpoint_arn).await?;
            if let Some(token) = input.attributes.get("Token") {
                let app = self.application(&endpoint.application_arn).await?;
                if !token_fits(&app.platform, token) {
                    return Err(SnsError::invalid(
                        "Attributes",
                        format!("Invalid value for attribute: Token: {APNS_TOKEN}"),
                    ));
                }
            }
            let mut attrs = attributes(&endpoint.attributes)?;
            let mut token = endpoint.token.clone();
            for (k, v) in &input.attributes {
                if k == "Token" {
                    token = v.clone();
                } else {
                    attrs.insert(k.clone(), v.clone());
                }
            }
            let text = serde_json::to_string(&attrs).map_err(SnsError::internal)?;
            if self
                .store
                .update_sns_endpoint(&endpoint.arn, &endpoint.attributes, &token, &text)
                .await?
            {
                return Ok(());
            }
            if token != endpoint.token
                && self
                    .store
                    .sns_endpoint_by_token(&endpoint.application_arn, &token)
                    .await?
                    .is_some()
            {
                return Err(SnsError::invalid(
                    "Attributes",
                    "Invalid value for attribute: Token: another endpoint of the application has it",
                ));
            }
        }
        Err(SnsError::internal("endpoint attributes kept changing"))
    }

    /// Publishes to a platform endpoint: the platform's message from a JSON structure (or the
    /// message as `default`), delivered after the answer.
    async fn publish(&self, input: shapes::PublishInput) -> Result<shapes::PublishResponse> {
        if input.topic_arn.is_some() || input.phone_number.is_some() {
            return Err(SnsError::invalid(
                "TopicArn or PhoneNumber",
                "this server publishes to platform endpoints (TargetArn) only",
            ));
        }
        let Some(target) = input.target_arn.as_deref() else {
            return Err(SnsError::invalid(
                "TargetArn",
                "No endpoint found for the target arn specified",
            ));
        };
        let endpoint = self.endpoint(target).await.map_err(|_| {
            SnsError::invalid(
                "TargetArn",
                "No endpoint found for the target arn specified",
            )
        })?;
        let structure = if input.message_structure.as_deref() == Some("json") {
            let structure: Value = serde_json::from_str(&input.message).map_err(|_| {
                SnsError::InvalidParameter(
                    "Invalid parameter: Message Structure - JSON message body failed to parse"
                        .to_owned(),
                )
            })?;
            Some(structure)
        } else {
            None
        };
        let text = input.message;
        let message = move |platform: &str| -> Result<Value> {
            let Some(structure) = &structure else {
                return Ok(default_message(platform, &text));
            };
            match (
                structure.get(platform).and_then(Value::as_str),
                structure.get("default").and_then(Value::as_str),
            ) {
                (Some(entry), _) if platform == "GCM" => Ok(gcm_message(entry)),
                (Some(entry), _) => Ok(serde_json::from_str::<Value>(entry)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| default_message(platform, entry))),
                (None, Some(default)) => Ok(default_message(platform, default)),
                (None, None) => Err(SnsError::InvalidParameter(format!(
                    "Invalid parameter: JSON must contain an entry for 'default' or '{platform}'."
                ))),
            }
        };
        self.deliver(endpoint, message).await?;
        Ok(shapes::PublishResponse {
            message_id: Some(uuid::Uuid::new_v4().to_string()),
            sequence_number: None,
        })
    }

    /// Sends the message `message` makes for the endpoint's platform (FCM: a v1 message, its
    /// `token` added; APNs: the payload) after checking that the endpoint and its application
    /// are enabled.
    async fn deliver(
        &self,
        endpoint: EndpointRow,
        message: impl FnOnce(&str) -> Result<Value>,
    ) -> Result<()> {
        let app = self.application(&endpoint.application_arn).await?;
        if attributes(&endpoint.attributes)?
            .get("Enabled")
            .map(String::as_str)
            == Some("false")
        {
            return Err(SnsError::EndpointDisabled);
        }
        if attributes(&app.attributes)?
            .get("Enabled")
            .map(String::as_str)
            == Some("false")
        {
            return Err(SnsError::PlatformApplicationDisabled);
        }
        let sealed = app
            .credential_sealed
            .as_deref()
            .ok_or_else(|| SnsError::internal("an application without its credential"))?;
        let plain = self
            .master
            .open(&credential_context(&app.arn), sealed)
            .map_err(SnsError::internal)?;
        let secret: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(SnsError::internal)?;
        let public = attributes(&app.attributes)?;
        let field =
            |map: &BTreeMap<String, String>, name: &str| map.get(name).cloned().unwrap_or_default();
        let credential = match app.platform.as_str() {
            "GCM" => secret
                .get("PlatformCredential")
                .and_then(|c| fcm::ServiceAccount::parse(c))
                .map(push::Credential::Fcm),
            platform => apns::SigningKey::parse(
                &field(&secret, "PlatformCredential"),
                &field(&secret, "PlatformPrincipal"),
                &field(&public, "ApplePlatformTeamID"),
                &field(&public, "ApplePlatformBundleID"),
            )
            .map(|key| push::Credential::Apns {
                key,
                sandbox: platform == "APNS_SANDBOX",
            }),
        }
        .ok_or_else(|| SnsError::internal("an application's credential no longer reads"))?;
        let message = message(&app.platform)?;
        self.push.send(
            self.store.clone(),
            push::Delivery {
                endpoint_arn: endpoint.arn,
                device_token: endpoint.token,
                credential,
                message,
            },
        );
        Ok(())
    }

    /// Publishes data (string values, one key each, as Android reads Cognito Sync's pushes)
    /// to an endpoint of the caller's account. Errors say why nothing was sent.
    pub async fn publish_data(
        &self,
        endpoint_arn: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<()> {
        let endpoint = self.endpoint(endpoint_arn).await?;
        self.deliver(endpoint, |platform| {
            Ok(if platform == "GCM" {
                json!({ "data": data })
            } else {
                // A silent notification the app wakes for, the keys under `data`.
                json!({"aps": {"content-available": 1}, "data": data})
            })
        })
        .await
    }

    /// Creates (or finds, for a token it already has) an endpoint of one of the caller's
    /// applications; returns its ARN.
    pub async fn register(&self, application_arn: &str, token: &str) -> Result<String> {
        let out = self
            .create_platform_endpoint(shapes::CreatePlatformEndpointInput {
                platform_application_arn: application_arn.to_owned(),
                token: token.to_owned(),
                ..Default::default()
            })
            .await?;
        out.endpoint_arn
            .ok_or_else(|| SnsError::internal("an endpoint without an ARN"))
    }

    /// The platform of one of the caller's applications.
    pub async fn platform_of(&self, application_arn: &str) -> Result<String> {
        Ok(self.application(application_arn).await?.platform)
    }
}

/// What SNS says of a token APNs could not have issued.
const APNS_TOKEN: &str = "iOS device tokens must be no more than 400 hexadecimal characters";

/// Whether a device token can be one of the platform's: APNs tokens are hexadecimal (they go
/// into the provider API's URL path).
fn token_fits(platform: &str, token: &str) -> bool {
    platform == "GCM" || (token.len() <= 400 && token.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The message a plain text (or a structure's `default`) stands for on a platform: FCM data
/// with the one key `default`, or an APNs alert.
fn default_message(platform: &str, text: &str) -> Value {
    if platform == "GCM" {
        json!({"data": {"default": text}})
    } else {
        json!({"aps": {"alert": text}})
    }
}

/// The FCM v1 message a `GCM` entry stands for: `fcmV1Message.message` as given, or a legacy
/// payload's `data` (values as strings) and `notification`; text that is no JSON object is
/// the `default` data key.
fn gcm_message(gcm: &str) -> Value {
    let Ok(Value::Object(payload)) = serde_json::from_str::<Value>(gcm) else {
        return json!({"data": {"default": gcm}});
    };
    if let Some(message) = payload.get("fcmV1Message").and_then(|m| m.get("message")) {
        return message.clone();
    }
    let mut message = serde_json::Map::new();
    if let Some(Value::Object(data)) = payload.get("data") {
        let strings: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect();
        message.insert("data".to_owned(), Value::Object(strings));
    }
    if let Some(notification) = payload.get("notification") {
        message.insert("notification".to_owned(), notification.clone());
    }
    Value::Object(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_tokens_are_hexadecimal_and_nothing_else() {
        assert!(token_fits("APNS", "0a1B2c"));
        assert!(!token_fits("APNS", "../../3/device/x"));
        assert!(!token_fits("APNS_SANDBOX", &"a".repeat(401)));
        assert!(token_fits("GCM", "fcm:token-with/anything"));
    }

    #[test]
    fn gcm_entries_become_fcm_v1_messages() {
        assert_eq!(
            gcm_message(r#"{"data":{"a":1,"b":"x"},"notification":{"title":"t"}}"#),
            json!({"data": {"a": "1", "b": "x"}, "notification": {"title": "t"}})
        );
        assert_eq!(
            gcm_message(r#"{"fcmV1Message":{"message":{"data":{"k":"v"}}}}"#),
            json!({"data": {"k": "v"}})
        );
        assert_eq!(gcm_message("hello"), json!({"data": {"default": "hello"}}));
    }
}
