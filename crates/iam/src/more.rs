//! OpenID Connect providers, tags, and GetAccountAuthorizationDetails.

use cognate_credentials::generate_id;
use cognate_store::EntityRow;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::entities::{Attrs, Tag, encode_document, entity_json};
use crate::{Iam, IamError, Result, iso, set};

const MAX_TAGS: usize = 50;
const MAX_CLIENT_IDS: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct OidcInput {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, rename = "OpenIDConnectProviderArn")]
    pub arn: Option<String>,
    #[serde(default, rename = "ClientIDList")]
    pub client_ids: Option<Vec<String>>,
    #[serde(default)]
    pub thumbprint_list: Option<Vec<String>>,
    #[serde(default, rename = "ClientID")]
    pub client_id: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagInput {
    #[serde(default, alias = "RoleName")]
    pub user_name: Option<String>,
    #[serde(default)]
    pub policy_arn: Option<String>,
    #[serde(default, rename = "OpenIDConnectProviderArn")]
    pub oidc_arn: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub tag_keys: Vec<String>,
}

/// An issuer URL as IAM names the provider: without its scheme or a trailing slash.
/// `http://` is accepted only for loopback hosts (local development and tests).
pub(crate) fn provider_name(url: &str) -> Result<String> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let authority = rest.split('/').next().unwrap_or("");
        let host = if authority.starts_with('[') {
            authority
        } else {
            authority.split(':').next().unwrap_or("")
        };
        let loopback = host == "localhost" || host.starts_with("127.") || host.starts_with("[::1]");
        if !loopback {
            return Err(IamError::InvalidInput(
                "The URL must use https:// (http:// only for loopback hosts).".into(),
            ));
        }
        rest
    } else {
        return Err(IamError::InvalidInput(format!(
            "Invalid Open ID Connect Provider URL: {url}"
        )));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['?', '#']) {
        return Err(IamError::InvalidInput(format!(
            "Invalid Open ID Connect Provider URL: {url}"
        )));
    }
    Ok(rest.to_owned())
}

impl Iam<'_> {
    async fn require_oidc(&self, arn: Option<&str>) -> Result<(EntityRow, Attrs)> {
        let arn = arn.unwrap_or("");
        let row = self
            .store
            .entity_by_arn(arn)
            .await?
            .filter(|r| r.kind == "oidc-provider" && r.account_id == self.account.as_str())
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"))
            })?;
        let attrs = Attrs::of(&row)?;
        Ok((row, attrs))
    }

    pub(crate) async fn create_oidc_provider(&self, input: OidcInput) -> Result<Value> {
        let url = input.url.unwrap_or_default();
        let name = provider_name(&url)?;
        let attrs = Attrs {
            url: Some(url.trim_end_matches('/').to_owned()),
            client_ids: input.client_ids.unwrap_or_default(),
            thumbprints: input.thumbprint_list.unwrap_or_default(),
            tags: input.tags.unwrap_or_default(),
            ..Attrs::default()
        };
        let row = EntityRow {
            account_id: self.account.to_string(),
            kind: "oidc-provider".into(),
            arn: format!("arn:aws:iam::{}:oidc-provider/{name}", self.account),
            name: name.clone(),
            id: generate_id("OIDC", self.rng).map_err(|_| IamError::Internal("rng".into()))?,
            path: "/".into(),
            attrs: attrs.json(),
            created_at: self.now.unix_timestamp(),
        };
        match self.store.create_entity(&row).await {
            Ok(()) => {}
            Err(cognate_store::StoreError::Conflict) => {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Provider with url {url} already exists."
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let mut out = json!({ "OpenIDConnectProviderArn": row.arn });
        if !attrs.tags.is_empty() {
            set(&mut out, "Tags", json!(attrs.tags));
        }
        Ok(out)
    }

    pub(crate) async fn get_oidc_provider(&self, input: OidcInput) -> Result<Value> {
        let (row, attrs) = self.require_oidc(input.arn.as_deref()).await?;
        Ok(json!({
            "Url": row.name,
            "ClientIDList": attrs.client_ids,
            "ThumbprintList": attrs.thumbprints,
            "CreateDate": iso(row.created_at),
            "Tags": attrs.tags,
        }))
    }

    pub(crate) async fn list_oidc_providers(&self) -> Result<Value> {
        let rows = self
            .store
            .list_entities(self.account.as_str(), "oidc-provider", "/", None, i64::MAX)
            .await?;
        Ok(
            json!({ "OpenIDConnectProviderList": rows.iter().map(|r| json!({ "Arn": r.arn })).collect::<Vec<_>>() }),
        )
    }

    pub(crate) async fn delete_oidc_provider(&self, input: OidcInput) -> Result<Value> {
        let (row, _) = self.require_oidc(input.arn.as_deref()).await?;
        self.store
            .delete_entity(self.account.as_str(), "oidc-provider", &row.name)
            .await?;
        Ok(Value::Null)
    }

    pub(crate) async fn add_client_id(&self, input: OidcInput) -> Result<Value> {
        let (row, mut attrs) = self.require_oidc(input.arn.as_deref()).await?;
        let id = input.client_id.unwrap_or_default();
        if !attrs.client_ids.contains(&id) {
            if attrs.client_ids.len() >= MAX_CLIENT_IDS {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                )));
            }
            attrs.client_ids.push(id);
            self.save(&row, &attrs).await?;
        }
        Ok(Value::Null)
    }

    pub(crate) async fn remove_client_id(&self, input: OidcInput) -> Result<Value> {
        let (row, mut attrs) = self.require_oidc(input.arn.as_deref()).await?;
        let id = input.client_id.unwrap_or_default();
        attrs.client_ids.retain(|c| *c != id);
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn update_thumbprints(&self, input: OidcInput) -> Result<Value> {
        let (row, mut attrs) = self.require_oidc(input.arn.as_deref()).await?;
        attrs.thumbprints = input.thumbprint_list.unwrap_or_default();
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    /// The entity a tagging operation addresses.
    async fn tagged(&self, kind: &str, input: &TagInput) -> Result<EntityRow> {
        match kind {
            "policy" => {
                let arn = input.policy_arn.as_deref().unwrap_or("");
                self.store
                    .entity_by_arn(arn)
                    .await?
                    .filter(|r| r.kind == "policy" && r.account_id == self.account.as_str())
                    .ok_or_else(|| {
                        IamError::NoSuchEntity(format!(
                            "Policy {arn} does not exist or is not attachable."
                        ))
                    })
            }
            "oidc-provider" => Ok(self.require_oidc(input.oidc_arn.as_deref()).await?.0),
            _ => {
                self.require(kind, input.user_name.as_deref().unwrap_or(""))
                    .await
            }
        }
    }

    pub(crate) async fn tag(&self, kind: &str, input: TagInput) -> Result<Value> {
        let row = self.tagged(kind, &input).await?;
        let mut attrs = Attrs::of(&row)?;
        for tag in input.tags {
            match attrs
                .tags
                .iter_mut()
                .find(|t| t.key.eq_ignore_ascii_case(&tag.key))
            {
                Some(existing) => *existing = tag,
                None => attrs.tags.push(tag),
            }
        }
        if attrs.tags.len() > MAX_TAGS {
            return Err(IamError::LimitExceeded(format!(
                "The number of tags has reached the maximum limit of {MAX_TAGS}."
            )));
        }
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn untag(&self, kind: &str, input: TagInput) -> Result<Value> {
        let row = self.tagged(kind, &input).await?;
        let mut attrs = Attrs::of(&row)?;
        attrs.tags.retain(|t| {
            !input
                .tag_keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&t.key))
        });
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn list_tags(&self, kind: &str, input: TagInput) -> Result<Value> {
        let row = self.tagged(kind, &input).await?;
        Ok(json!({ "Tags": Attrs::of(&row)?.tags, "IsTruncated": false }))
    }

    /// Every user, group, role and customer-managed policy of the account, with their policies.
    pub(crate) async fn account_authorization_details(&self) -> Result<Value> {
        let acct = self.account.as_str();
        let inline = |kind: &'static str, name: String| async move {
            let policies = self.store.inline_policies(acct, kind, &name).await?;
            Ok::<_, IamError>(
                policies
                    .iter()
                    .map(|p| json!({ "PolicyName": p.policy_name, "PolicyDocument": encode_document(&p.document) }))
                    .collect::<Vec<_>>(),
            )
        };
        let attached = |kind: &'static str, name: String| async move {
            let arns = self.store.attached_policies(acct, kind, &name).await?;
            Ok::<_, IamError>(
                arns.iter()
                    .map(|arn| json!({ "PolicyName": arn.rsplit('/').next().unwrap_or(arn), "PolicyArn": arn }))
                    .collect::<Vec<_>>(),
            )
        };
        let mut users = Vec::new();
        for row in self
            .store
            .list_entities(acct, "user", "/", None, i64::MAX)
            .await?
        {
            let mut v = entity_json(&row)?;
            set(
                &mut v,
                "UserPolicyList",
                json!(inline("user", row.name.clone()).await?),
            );
            set(
                &mut v,
                "AttachedManagedPolicies",
                json!(attached("user", row.name.clone()).await?),
            );
            let groups: Vec<String> = self
                .store
                .groups_for_user(acct, &row.name)
                .await?
                .into_iter()
                .map(|g| g.name)
                .collect();
            set(&mut v, "GroupList", json!(groups));
            users.push(v);
        }
        let mut groups = Vec::new();
        for row in self
            .store
            .list_entities(acct, "group", "/", None, i64::MAX)
            .await?
        {
            let mut v = entity_json(&row)?;
            set(
                &mut v,
                "GroupPolicyList",
                json!(inline("group", row.name.clone()).await?),
            );
            set(
                &mut v,
                "AttachedManagedPolicies",
                json!(attached("group", row.name.clone()).await?),
            );
            groups.push(v);
        }
        let mut roles = Vec::new();
        for row in self
            .store
            .list_entities(acct, "role", "/", None, i64::MAX)
            .await?
        {
            let mut v = entity_json(&row)?;
            set(
                &mut v,
                "RolePolicyList",
                json!(inline("role", row.name.clone()).await?),
            );
            set(
                &mut v,
                "AttachedManagedPolicies",
                json!(attached("role", row.name.clone()).await?),
            );
            set(&mut v, "InstanceProfileList", json!([]));
            roles.push(v);
        }
        let mut policies = Vec::new();
        for row in self
            .store
            .list_entities(acct, "policy", "/", None, i64::MAX)
            .await?
        {
            let default = Attrs::of(&row)?
                .default_version
                .unwrap_or_else(|| "v1".into());
            let versions: Vec<Value> = self
                .store
                .policy_versions(&row.arn)
                .await?
                .iter()
                .map(|v| {
                    json!({
                        "Document": encode_document(&v.document),
                        "VersionId": v.version_id,
                        "IsDefaultVersion": v.version_id == default,
                        "CreateDate": iso(v.created_at),
                    })
                })
                .collect();
            policies.push(json!({
                "PolicyName": row.name,
                "PolicyId": row.id,
                "Arn": row.arn,
                "Path": row.path,
                "DefaultVersionId": default,
                "AttachmentCount": self.store.attachment_count(&row.arn).await?,
                "IsAttachable": true,
                "CreateDate": iso(row.created_at),
                "PolicyVersionList": versions,
            }));
        }
        Ok(json!({
            "UserDetailList": users,
            "GroupDetailList": groups,
            "RoleDetailList": roles,
            "Policies": policies,
            "IsTruncated": false,
        }))
    }
}
