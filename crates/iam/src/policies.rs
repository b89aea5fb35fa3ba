//! Inline policies, managed policies with versions, and attaching them.

use cognate_credentials::generate_id;
use cognate_policy::PolicyUse;
use cognate_store::{EntityRow, InlinePolicyRow, PolicyVersionRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::aws_managed;
use crate::entities::{Attrs, Paging, Tag, encode_document, noun, parse_document};
use crate::{Iam, IamError, Result, iso, set};

const MANAGED_POLICY_MAX: usize = 6144;
const MAX_VERSIONS: usize = 5;
const MAX_ATTACHED: usize = 10;

/// IAM's size quota for an inline policy of each kind of entity.
fn inline_max(kind: &str) -> usize {
    match kind {
        "user" => 2048,
        "group" => 5120,
        _ => 10_240,
    }
}

/// A managed policy, customer-managed or built in.
#[derive(Debug, Clone)]
pub(crate) struct Managed {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub description: Option<String>,
    pub default_version: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The customer-managed row; `None` for AWS managed policies.
    pub row: Option<EntityRow>,
    pub builtin_document: Option<&'static str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InlineInput {
    #[serde(alias = "GroupName", alias = "RoleName")]
    pub user_name: String,
    #[serde(default)]
    pub policy_name: Option<String>,
    #[serde(default)]
    pub policy_document: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreatePolicyInput {
    pub policy_name: String,
    #[serde(default)]
    pub path: Option<String>,
    pub policy_document: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PolicyRef {
    pub policy_arn: String,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub policy_document: Option<String>,
    #[serde(default)]
    pub set_as_default: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListPoliciesInput {
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub only_attached: Option<bool>,
    #[serde(flatten)]
    pub paging: Paging,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AttachInput {
    #[serde(alias = "GroupName", alias = "RoleName")]
    pub user_name: String,
    pub policy_arn: String,
}

fn not_attachable(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

impl Iam<'_> {
    pub(crate) async fn put_inline(&self, kind: &str, input: InlineInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let name = input.policy_name.unwrap_or_default();
        let document = input.policy_document.unwrap_or_default();
        parse_document(&document, PolicyUse::Identity, inline_max(kind))?;
        let policy = InlinePolicyRow {
            policy_name: name,
            document,
        };
        self.store
            .put_inline_policy(self.account.as_str(), kind, &row.name, &policy)
            .await?;
        Ok(Value::Null)
    }

    async fn find_inline(&self, kind: &str, entity: &str, name: &str) -> Result<InlinePolicyRow> {
        let policies = self
            .store
            .inline_policies(self.account.as_str(), kind, entity)
            .await?;
        policies
            .into_iter()
            .find(|p| p.policy_name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The {} policy with name {name} cannot be found.",
                    noun(kind)
                ))
            })
    }

    pub(crate) async fn get_inline(&self, kind: &str, input: InlineInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let policy = self
            .find_inline(kind, &row.name, input.policy_name.as_deref().unwrap_or(""))
            .await?;
        let entity_member = match kind {
            "group" => "GroupName",
            "role" => "RoleName",
            _ => "UserName",
        };
        Ok(json!({
            entity_member: row.name,
            "PolicyName": policy.policy_name,
            "PolicyDocument": encode_document(&policy.document),
        }))
    }

    pub(crate) async fn list_inline(&self, kind: &str, input: InlineInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let names: Vec<String> = self
            .store
            .inline_policies(self.account.as_str(), kind, &row.name)
            .await?
            .into_iter()
            .map(|p| p.policy_name)
            .collect();
        Ok(json!({ "PolicyNames": names, "IsTruncated": false }))
    }

    pub(crate) async fn delete_inline(&self, kind: &str, input: InlineInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let name = input.policy_name.unwrap_or_default();
        if !self
            .store
            .delete_inline_policy(self.account.as_str(), kind, &row.name, &name)
            .await?
        {
            return Err(IamError::NoSuchEntity(format!(
                "The {} policy with name {name} cannot be found.",
                noun(kind)
            )));
        }
        Ok(Value::Null)
    }

    /// A managed policy by ARN: built in, or customer managed in this account (another
    /// account's policies are not there for it: not readable, attachable or usable as a
    /// boundary, and indistinguishable from ones that do not exist).
    pub(crate) async fn managed_policy(&self, arn: &str) -> Result<Option<Managed>> {
        if let Some(p) = aws_managed::by_arn(arn) {
            return Ok(Some(Managed {
                name: p.name.to_owned(),
                id: format!(
                    "ANPA{}",
                    &p.name
                        .to_uppercase()
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(16)
                        .collect::<String>()
                ),
                path: p.path.to_owned(),
                arn: p.arn(),
                description: Some(p.description.to_owned()),
                default_version: "v1".to_owned(),
                created_at: 1_423_000_000,
                updated_at: 1_423_000_000,
                row: None,
                builtin_document: Some(p.document),
            }));
        }
        let Some(row) = self
            .store
            .entity_by_arn(arn)
            .await?
            .filter(|r| r.kind == "policy" && r.account_id == self.account.as_str())
        else {
            return Ok(None);
        };
        let attrs = Attrs::of(&row)?;
        Ok(Some(Managed {
            name: row.name.clone(),
            id: row.id.clone(),
            path: row.path.clone(),
            arn: row.arn.clone(),
            description: attrs.description.clone(),
            default_version: attrs
                .default_version
                .clone()
                .unwrap_or_else(|| "v1".to_owned()),
            created_at: row.created_at,
            updated_at: attrs.updated_at.unwrap_or(row.created_at),
            row: Some(row),
            builtin_document: None,
        }))
    }

    /// The default version's document of a managed policy.
    pub(crate) async fn managed_document(&self, policy: &Managed) -> Result<String> {
        if let Some(doc) = policy.builtin_document {
            return Ok(doc.to_owned());
        }
        let versions = self.store.policy_versions(&policy.arn).await?;
        versions
            .into_iter()
            .find(|v| v.version_id == policy.default_version)
            .map(|v| v.document)
            .ok_or_else(|| {
                IamError::Internal(format!("policy {} has no default version", policy.arn))
            })
    }

    async fn managed_json(&self, p: &Managed) -> Result<Value> {
        let count = self.store.attachment_count(&p.arn).await?;
        let mut v = json!({
            "PolicyName": p.name,
            "PolicyId": p.id,
            "Arn": p.arn,
            "Path": p.path,
            "DefaultVersionId": p.default_version,
            "AttachmentCount": count,
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": true,
            "CreateDate": iso(p.created_at),
            "UpdateDate": iso(p.updated_at),
        });
        if let Some(d) = &p.description {
            set(&mut v, "Description", json!(d));
        }
        Ok(v)
    }

    async fn require_managed(&self, arn: &str) -> Result<Managed> {
        self.managed_policy(arn)
            .await?
            .ok_or_else(|| not_attachable(arn))
    }

    /// A customer-managed policy of the caller's account (the only kind that can change).
    async fn require_local(&self, arn: &str) -> Result<(Managed, EntityRow)> {
        let policy = self.require_managed(arn).await?;
        match policy.row.clone() {
            Some(row) if row.account_id == self.account.as_str() => Ok((policy, row)),
            _ => Err(IamError::InvalidInput(format!(
                "Policy {arn} is not a customer managed policy of this account."
            ))),
        }
    }

    pub(crate) async fn create_policy(&self, input: CreatePolicyInput) -> Result<Value> {
        parse_document(
            &input.policy_document,
            PolicyUse::Identity,
            MANAGED_POLICY_MAX,
        )?;
        let path = input.path.unwrap_or_else(|| "/".to_owned());
        let now = self.now.unix_timestamp();
        let attrs = Attrs {
            description: input.description,
            tags: input.tags.unwrap_or_default(),
            default_version: Some("v1".into()),
            next_version: Some(2),
            updated_at: Some(now),
            ..Attrs::default()
        };
        let row = EntityRow {
            account_id: self.account.to_string(),
            kind: "policy".into(),
            name: input.policy_name.clone(),
            id: generate_id("ANPA", self.rng).map_err(|_| IamError::Internal("rng".into()))?,
            arn: format!(
                "arn:aws:iam::{}:policy{path}{}",
                self.account, input.policy_name
            ),
            path,
            attrs: attrs.json(),
            created_at: now,
        };
        match self.store.create_entity(&row).await {
            Ok(()) => {}
            Err(cognate_store::StoreError::Conflict) => {
                return Err(IamError::EntityAlreadyExists(format!(
                    "A policy called {} already exists. Duplicate names are not allowed.",
                    input.policy_name
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let version = PolicyVersionRow {
            policy_arn: row.arn.clone(),
            version_id: "v1".into(),
            document: input.policy_document,
            created_at: now,
        };
        self.store.put_policy_version(&version).await?;
        let policy = self.require_managed(&row.arn).await?;
        Ok(json!({ "Policy": self.managed_json(&policy).await? }))
    }

    /// GetPolicy: as the policy's other answers, and with its tags (`[]` when it has none).
    pub(crate) async fn get_policy(&self, input: PolicyRef) -> Result<Value> {
        let policy = self.require_managed(&input.policy_arn).await?;
        let tags = match &policy.row {
            Some(row) => crate::entities::Attrs::of(row)?.tags,
            None => Vec::new(),
        };
        let mut out = self.managed_json(&policy).await?;
        set(&mut out, "Tags", json!(tags));
        Ok(json!({ "Policy": out }))
    }

    pub(crate) async fn list_policies(&self, input: ListPoliciesInput) -> Result<Value> {
        let scope = input.scope.as_deref().unwrap_or("All");
        let prefix = input
            .paging
            .path_prefix
            .clone()
            .unwrap_or_else(|| "/".to_owned());
        let mut all = Vec::new();
        if scope != "Local" {
            for p in aws_managed::POLICIES
                .iter()
                .filter(|p| p.path.starts_with(&prefix))
            {
                if let Some(m) = self.managed_policy(&p.arn()).await? {
                    all.push(m);
                }
            }
        }
        if scope != "AWS" {
            for row in self
                .store
                .list_entities(self.account.as_str(), "policy", &prefix, None, i64::MAX)
                .await?
            {
                if let Some(m) = self.managed_policy(&row.arn).await? {
                    all.push(m);
                }
            }
        }
        let mut out = Vec::new();
        for p in &all {
            let v = self.managed_json(p).await?;
            if input.only_attached == Some(true)
                && v.get("AttachmentCount").unwrap_or(&Value::Null).as_i64() == Some(0)
            {
                continue;
            }
            out.push(v);
        }
        let start = input
            .paging
            .marker
            .as_deref()
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(0);
        let limit = usize::try_from(input.paging.max_items.unwrap_or(100)).unwrap_or(100);
        let page: Vec<Value> = out.iter().skip(start).take(limit).cloned().collect();
        let truncated = start + page.len() < out.len();
        let mut v = json!({ "Policies": page, "IsTruncated": truncated });
        if truncated {
            set(&mut v, "Marker", json!((start + limit).to_string()));
        }
        Ok(v)
    }

    pub(crate) async fn delete_policy(&self, input: PolicyRef) -> Result<Value> {
        let (policy, row) = self.require_local(&input.policy_arn).await?;
        if self.store.attachment_count(&policy.arn).await? > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete a policy attached to entities.".into(),
            ));
        }
        let versions = self.store.policy_versions(&policy.arn).await?;
        if versions.len() > 1 {
            return Err(IamError::DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
            ));
        }
        for v in versions {
            self.store
                .delete_policy_version(&policy.arn, &v.version_id)
                .await?;
        }
        self.store
            .delete_entity(self.account.as_str(), "policy", &row.name)
            .await?;
        Ok(Value::Null)
    }

    pub(crate) async fn create_policy_version(&self, input: PolicyRef) -> Result<Value> {
        let (policy, row) = self.require_local(&input.policy_arn).await?;
        let document = input.policy_document.unwrap_or_default();
        parse_document(&document, PolicyUse::Identity, MANAGED_POLICY_MAX)?;
        if self.store.policy_versions(&policy.arn).await?.len() >= MAX_VERSIONS {
            return Err(IamError::LimitExceeded(
                "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into(),
            ));
        }
        let mut attrs = Attrs::of(&row)?;
        let n = attrs.next_version.unwrap_or(2);
        let version_id = format!("v{n}");
        let now = self.now.unix_timestamp();
        attrs.next_version = Some(n + 1);
        attrs.updated_at = Some(now);
        let is_default = input.set_as_default == Some(true);
        if is_default {
            attrs.default_version = Some(version_id.clone());
        }
        // Two versions made at once must not both be `vN`: the version row and the policy's
        // counter are written together, or neither is.
        let added = self
            .store
            .add_policy_version(
                &PolicyVersionRow {
                    policy_arn: policy.arn.clone(),
                    version_id: version_id.clone(),
                    document,
                    created_at: now,
                },
                (self.account.as_str(), &row.name),
                &row.attrs,
                &attrs.json(),
            )
            .await?;
        if !added {
            return Err(IamError::Stale);
        }
        Ok(
            json!({ "PolicyVersion": { "VersionId": version_id, "IsDefaultVersion": is_default, "CreateDate": iso(now) } }),
        )
    }

    pub(crate) async fn get_policy_version(&self, input: PolicyRef) -> Result<Value> {
        let policy = self.require_managed(&input.policy_arn).await?;
        let wanted = input.version_id.unwrap_or_default();
        let no_version = || {
            IamError::NoSuchEntity(format!(
                "Policy {} version {wanted} does not exist or is not attachable.",
                policy.arn
            ))
        };
        let (document, created) = if let Some(doc) = policy.builtin_document {
            if wanted != "v1" {
                return Err(no_version());
            }
            (doc.to_owned(), policy.created_at)
        } else {
            let v = self
                .store
                .policy_versions(&policy.arn)
                .await?
                .into_iter()
                .find(|v| v.version_id == wanted)
                .ok_or_else(no_version)?;
            (v.document, v.created_at)
        };
        Ok(json!({ "PolicyVersion": {
            "Document": encode_document(&document),
            "VersionId": wanted,
            "IsDefaultVersion": wanted == policy.default_version,
            "CreateDate": iso(created),
        }}))
    }

    pub(crate) async fn list_policy_versions(&self, input: PolicyRef) -> Result<Value> {
        let policy = self.require_managed(&input.policy_arn).await?;
        let versions: Vec<Value> = if policy.builtin_document.is_some() {
            vec![
                json!({ "VersionId": "v1", "IsDefaultVersion": true, "CreateDate": iso(policy.created_at) }),
            ]
        } else {
            let mut vs = self.store.policy_versions(&policy.arn).await?;
            vs.reverse();
            vs.iter()
                .map(|v| json!({ "VersionId": v.version_id, "IsDefaultVersion": v.version_id == policy.default_version, "CreateDate": iso(v.created_at) }))
                .collect()
        };
        Ok(json!({ "Versions": versions, "IsTruncated": false }))
    }

    pub(crate) async fn set_default_policy_version(&self, input: PolicyRef) -> Result<Value> {
        let (policy, row) = self.require_local(&input.policy_arn).await?;
        let wanted = input.version_id.unwrap_or_default();
        if !self
            .store
            .policy_versions(&policy.arn)
            .await?
            .iter()
            .any(|v| v.version_id == wanted)
        {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {} version {wanted} does not exist or is not attachable.",
                policy.arn
            )));
        }
        let mut attrs = Attrs::of(&row)?;
        attrs.default_version = Some(wanted);
        attrs.updated_at = Some(self.now.unix_timestamp());
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn delete_policy_version(&self, input: PolicyRef) -> Result<Value> {
        let (policy, _) = self.require_local(&input.policy_arn).await?;
        let wanted = input.version_id.unwrap_or_default();
        if wanted == policy.default_version {
            return Err(IamError::DeleteConflict(
                "Cannot delete the default version of a policy.".into(),
            ));
        }
        if !self
            .store
            .delete_policy_version(&policy.arn, &wanted)
            .await?
        {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {} version {wanted} does not exist or is not attachable.",
                policy.arn
            )));
        }
        Ok(Value::Null)
    }

    pub(crate) async fn attach(&self, kind: &str, input: AttachInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let policy = self.require_managed(&input.policy_arn).await?;
        if policy
            .row
            .as_ref()
            .is_some_and(|r| r.account_id != self.account.as_str())
        {
            return Err(not_attachable(&input.policy_arn));
        }
        let attached = self
            .store
            .attached_policies(self.account.as_str(), kind, &row.name)
            .await?;
        if !attached.contains(&policy.arn) && attached.len() >= MAX_ATTACHED {
            let quota = match kind {
                "group" => "PoliciesPerGroup",
                "role" => "PoliciesPerRole",
                _ => "PoliciesPerUser",
            };
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for {quota}: {MAX_ATTACHED}"
            )));
        }
        self.store
            .attach_policy(self.account.as_str(), kind, &row.name, &policy.arn)
            .await?;
        Ok(Value::Null)
    }

    pub(crate) async fn detach(&self, kind: &str, input: AttachInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        if !self
            .store
            .detach_policy(self.account.as_str(), kind, &row.name, &input.policy_arn)
            .await?
        {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {} was not found.",
                input.policy_arn
            )));
        }
        Ok(Value::Null)
    }

    pub(crate) async fn list_attached(&self, kind: &str, input: InlineInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let arns = self
            .store
            .attached_policies(self.account.as_str(), kind, &row.name)
            .await?;
        let attached: Vec<Value> = arns
            .iter()
            .map(|arn| {
                let name = arn.rsplit('/').next().unwrap_or(arn);
                json!({ "PolicyName": name, "PolicyArn": arn })
            })
            .collect();
        Ok(json!({ "AttachedPolicies": attached, "IsTruncated": false }))
    }
}
