//! Users, groups and roles: create, read, list (with paths and paging), delete, membership,
//! permissions boundaries.

use cognate_credentials::generate_id;
use cognate_policy::{Policy, PolicyUse, significant_len};
use cognate_store::EntityRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{CallerUser, Iam, IamError, Result, iso, set};

/// A tag on a user or role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub key: String,
    pub value: String,
}

/// Kind-specific attributes, stored as JSON with the entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Attrs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// OpenID Connect providers: the issuer URL, audiences and certificate thumbprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thumbprints: Vec<String>,
}

impl Attrs {
    /// The attributes stored with an entity. An unreadable row is an internal error, never
    /// defaults: a boundary or trust policy that silently vanished would widen access.
    pub(crate) fn of(row: &EntityRow) -> Result<Attrs> {
        serde_json::from_str(&row.attrs).map_err(|e| {
            IamError::Internal(format!(
                "stored attributes of {} do not parse: {e}",
                row.arn
            ))
        })
    }

    pub(crate) fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl Iam<'_> {
    /// Writes an entity's new attributes if they are still those `row` was read with; a lost
    /// race is [`IamError::Stale`], which starts the operation again.
    pub(crate) async fn save(&self, row: &EntityRow, attrs: &Attrs) -> Result<()> {
        let written = self
            .store
            .update_entity_attrs(
                self.account.as_str(),
                &row.kind,
                &row.name,
                &row.attrs,
                &attrs.json(),
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(IamError::Stale)
        }
    }
}

/// The human name of an entity kind in IAM's messages.
pub(crate) fn noun(kind: &str) -> &'static str {
    match kind {
        "user" => "user",
        "group" => "group",
        "role" => "role",
        "policy" => "policy",
        _ => "entity",
    }
}

const ROLE_TRUST_POLICY_MAX: usize = 2048;
const MAX_ITEMS_DEFAULT: i64 = 100;

/// Percent-encodes a policy document as IAM returns it (SDKs decode it again).
pub(crate) fn encode_document(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Parses a policy document for `usage`, refusing it as IAM would.
pub(crate) fn parse_document(doc: &str, usage: PolicyUse, max_len: usize) -> Result<Policy> {
    if significant_len(doc) > max_len {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {max_len}"
        )));
    }
    Policy::parse(doc, usage).map_err(|e| IamError::MalformedPolicyDocument(e.message))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Paging {
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub marker: Option<String>,
    #[serde(default)]
    pub max_items: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateEntity {
    #[serde(alias = "GroupName", alias = "RoleName")]
    pub user_name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub assume_role_policy_document: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_session_duration: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Named {
    #[serde(default, alias = "GroupName", alias = "RoleName")]
    pub user_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Membership {
    pub group_name: String,
    pub user_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateRoleInput {
    pub role_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_session_duration: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TrustInput {
    pub role_name: String,
    pub policy_document: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BoundaryInput {
    #[serde(alias = "RoleName")]
    pub user_name: String,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
}

/// The model's JSON for a user, group or role.
pub(crate) fn entity_json(row: &EntityRow) -> Result<Value> {
    let attrs = Attrs::of(row)?;
    let name_key = match row.kind.as_str() {
        "group" => ("GroupName", "GroupId"),
        "role" => ("RoleName", "RoleId"),
        _ => ("UserName", "UserId"),
    };
    let mut v = json!({
        "Path": row.path,
        name_key.0: row.name,
        name_key.1: row.id,
        "Arn": row.arn,
        "CreateDate": iso(row.created_at),
    });
    if row.kind == "role" {
        set(
            &mut v,
            "AssumeRolePolicyDocument",
            json!(attrs.trust.as_deref().map(encode_document)),
        );
        if let Some(d) = &attrs.description {
            set(&mut v, "Description", json!(d));
        }
        set(
            &mut v,
            "MaxSessionDuration",
            json!(attrs.max_session.unwrap_or(3600)),
        );
    }
    if let Some(b) = &attrs.boundary {
        set(
            &mut v,
            "PermissionsBoundary",
            json!({ "PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": b }),
        );
    }
    if !attrs.tags.is_empty() {
        set(&mut v, "Tags", json!(attrs.tags));
    }
    Ok(v)
}

impl Iam<'_> {
    pub(crate) async fn require(&self, kind: &str, name: &str) -> Result<EntityRow> {
        self.store
            .entity(self.account.as_str(), kind, name)
            .await?
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The {} with name {name} cannot be found.",
                    noun(kind)
                ))
            })
    }

    async fn boundary_exists(&self, arn: &str) -> Result<()> {
        if self.managed_policy(arn).await?.is_none() {
            return Err(IamError::InvalidInput(format!("ARN {arn} is not valid.")));
        }
        Ok(())
    }

    async fn create_entity(&self, kind: &str, input: CreateEntity) -> Result<EntityRow> {
        let path = input.path.unwrap_or_else(|| "/".to_owned());
        if let Some(b) = &input.permissions_boundary {
            self.boundary_exists(b).await?;
        }
        let mut attrs = Attrs {
            boundary: input.permissions_boundary,
            tags: input.tags.unwrap_or_default(),
            ..Attrs::default()
        };
        if kind == "role" {
            let trust = input.assume_role_policy_document.ok_or_else(|| {
                IamError::InvalidInput("AssumeRolePolicyDocument is required".into())
            })?;
            parse_document(&trust, PolicyUse::Trust, ROLE_TRUST_POLICY_MAX)?;
            attrs.trust = Some(trust);
            attrs.description = input.description;
            attrs.max_session = Some(input.max_session_duration.unwrap_or(3600));
        }
        let prefix = match kind {
            "group" => "AGPA",
            "role" => "AROA",
            _ => "AIDA",
        };
        let id = generate_id(prefix, self.rng).map_err(|_| IamError::Internal("rng".into()))?;
        let row = EntityRow {
            account_id: self.account.to_string(),
            kind: kind.to_owned(),
            name: input.user_name.clone(),
            id,
            arn: format!(
                "arn:aws:iam::{}:{kind}{path}{}",
                self.account, input.user_name
            ),
            path,
            attrs: attrs.json(),
            created_at: self.now.unix_timestamp(),
        };
        match self.store.create_entity(&row).await {
            Ok(()) => Ok(row),
            Err(cognate_store::StoreError::Conflict) => {
                let noun = match kind {
                    "group" => "Group",
                    "role" => "Role",
                    _ => "User",
                };
                Err(IamError::EntityAlreadyExists(format!(
                    "{noun} with name {} already exists.",
                    input.user_name
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn create_user(&self, input: CreateEntity) -> Result<Value> {
        let row = self.create_entity("user", input).await?;
        Ok(json!({ "User": entity_json(&row)? }))
    }

    pub(crate) async fn get_user(&self, input: Named, caller: &CallerUser<'_>) -> Result<Value> {
        let name = match (&input.user_name, caller) {
            (Some(name), _) => name.clone(),
            (None, CallerUser::User(name)) => (*name).to_owned(),
            (None, CallerUser::RoleSession) => {
                return Err(IamError::Validation(
                    "Must specify userName when calling with non-User credentials".into(),
                ));
            }
            (None, CallerUser::Root) => {
                let arn = format!("arn:aws:iam::{}:root", self.account);
                return Ok(
                    json!({ "User": { "Path": "/", "UserId": self.account.to_string(), "Arn": arn, "CreateDate": iso(0) } }),
                );
            }
        };
        let row = self.require("user", &name).await?;
        Ok(json!({ "User": entity_json(&row)? }))
    }

    pub(crate) async fn create_group(&self, input: CreateEntity) -> Result<Value> {
        let row = self.create_entity("group", input).await?;
        Ok(json!({ "Group": entity_json(&row)? }))
    }

    pub(crate) async fn create_role(&self, input: CreateEntity) -> Result<Value> {
        let row = self.create_entity("role", input).await?;
        Ok(json!({ "Role": entity_json(&row)? }))
    }

    pub(crate) async fn get_role(&self, input: Named) -> Result<Value> {
        let row = self
            .require("role", input.user_name.as_deref().unwrap_or(""))
            .await?;
        Ok(json!({ "Role": entity_json(&row)? }))
    }

    /// ListUsers / ListGroups / ListRoles.
    pub(crate) async fn list_entities(&self, kind: &str, input: Paging) -> Result<Value> {
        let limit = input.max_items.unwrap_or(MAX_ITEMS_DEFAULT);
        let prefix = input.path_prefix.unwrap_or_else(|| "/".to_owned());
        let mut rows = self
            .store
            .list_entities(
                self.account.as_str(),
                kind,
                &prefix,
                input.marker.as_deref(),
                limit + 1,
            )
            .await?;
        let truncated = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let list_name = match kind {
            "group" => "Groups",
            "role" => "Roles",
            _ => "Users",
        };
        // As on IAM, the lists leave out what only Get* returns: boundaries and tags.
        let entries = rows
            .iter()
            .map(|row| {
                let mut v = entity_json(row)?;
                if let Value::Object(m) = &mut v {
                    m.remove("PermissionsBoundary");
                    m.remove("Tags");
                }
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = json!({ list_name: entries, "IsTruncated": truncated });
        if truncated && let Some(last) = rows.last() {
            set(&mut out, "Marker", json!(last.name));
        }
        Ok(out)
    }

    pub(crate) async fn delete_user(&self, input: Named) -> Result<Value> {
        let name = input.user_name.unwrap_or_default();
        let row = self.require("user", &name).await?;
        let acct = self.account.as_str();
        if !self
            .store
            .access_keys_of(acct, Some(&row.name))
            .await?
            .is_empty()
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        self.ensure_no_policies("user", &row.name).await?;
        if !self
            .store
            .groups_for_user(acct, &row.name)
            .await?
            .is_empty()
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove user from all groups first.".into(),
            ));
        }
        self.store.delete_entity(acct, "user", &row.name).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn ensure_no_policies(&self, kind: &str, name: &str) -> Result<()> {
        let acct = self.account.as_str();
        if !self
            .store
            .inline_policies(acct, kind, name)
            .await?
            .is_empty()
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if !self
            .store
            .attached_policies(acct, kind, name)
            .await?
            .is_empty()
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        Ok(())
    }

    pub(crate) async fn get_group(&self, input: Named) -> Result<Value> {
        let row = self
            .require("group", input.user_name.as_deref().unwrap_or(""))
            .await?;
        let users = self
            .store
            .group_members(self.account.as_str(), &row.name)
            .await?;
        Ok(json!({
            "Group": entity_json(&row)?,
            "Users": users.iter().map(entity_json).collect::<Result<Vec<_>>>()?,
            "IsTruncated": false,
        }))
    }

    pub(crate) async fn delete_group(&self, input: Named) -> Result<Value> {
        let row = self
            .require("group", input.user_name.as_deref().unwrap_or(""))
            .await?;
        let acct = self.account.as_str();
        if !self.store.group_members(acct, &row.name).await?.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove users from group first.".into(),
            ));
        }
        self.ensure_no_policies("group", &row.name).await?;
        self.store.delete_entity(acct, "group", &row.name).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn add_user_to_group(&self, input: Membership) -> Result<Value> {
        let group = self.require("group", &input.group_name).await?;
        let user = self.require("user", &input.user_name).await?;
        self.store
            .add_group_member(self.account.as_str(), &group.name, &user.name)
            .await?;
        Ok(Value::Null)
    }

    pub(crate) async fn remove_user_from_group(&self, input: Membership) -> Result<Value> {
        let group = self.require("group", &input.group_name).await?;
        let user = self.require("user", &input.user_name).await?;
        if !self
            .store
            .remove_group_member(self.account.as_str(), &group.name, &user.name)
            .await?
        {
            return Err(IamError::NoSuchEntity(format!(
                "The user with name {} cannot be found in group {}.",
                user.name, group.name
            )));
        }
        Ok(Value::Null)
    }

    pub(crate) async fn list_groups_for_user(&self, input: Named) -> Result<Value> {
        let user = self
            .require("user", input.user_name.as_deref().unwrap_or(""))
            .await?;
        let groups = self
            .store
            .groups_for_user(self.account.as_str(), &user.name)
            .await?;
        Ok(
            json!({ "Groups": groups.iter().map(entity_json).collect::<Result<Vec<_>>>()?, "IsTruncated": false }),
        )
    }

    pub(crate) async fn delete_role(&self, input: Named) -> Result<Value> {
        let row = self
            .require("role", input.user_name.as_deref().unwrap_or(""))
            .await?;
        self.ensure_no_policies("role", &row.name).await?;
        self.store
            .delete_entity(self.account.as_str(), "role", &row.name)
            .await?;
        Ok(Value::Null)
    }

    pub(crate) async fn update_role(&self, input: UpdateRoleInput) -> Result<Value> {
        let row = self.require("role", &input.role_name).await?;
        let mut attrs = Attrs::of(&row)?;
        if input.description.is_some() {
            attrs.description = input.description;
        }
        if input.max_session_duration.is_some() {
            attrs.max_session = input.max_session_duration;
        }
        self.save(&row, &attrs).await?;
        Ok(json!({}))
    }

    pub(crate) async fn update_assume_role_policy(&self, input: TrustInput) -> Result<Value> {
        let row = self.require("role", &input.role_name).await?;
        parse_document(
            &input.policy_document,
            PolicyUse::Trust,
            ROLE_TRUST_POLICY_MAX,
        )?;
        let mut attrs = Attrs::of(&row)?;
        attrs.trust = Some(input.policy_document);
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn put_boundary(&self, kind: &str, input: BoundaryInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let arn = input.permissions_boundary.unwrap_or_default();
        self.boundary_exists(&arn).await?;
        let mut attrs = Attrs::of(&row)?;
        attrs.boundary = Some(arn);
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }

    pub(crate) async fn delete_boundary(&self, kind: &str, input: BoundaryInput) -> Result<Value> {
        let row = self.require(kind, &input.user_name).await?;
        let mut attrs = Attrs::of(&row)?;
        attrs.boundary = None;
        self.save(&row, &attrs).await?;
        Ok(Value::Null)
    }
}
