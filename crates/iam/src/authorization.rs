//! What each IAM operation is authorized on, as the Service Authorization Reference lists it:
//! the resource (the user, group, role, policy or OpenID Connect provider the operation acts
//! on, never merely the first ARN in its input) and the condition keys that go with it
//! (`iam:PolicyARN`, `iam:PermissionsBoundary`, `aws:ResourceTag/…`, `aws:RequestTag/…`,
//! `aws:TagKeys`).

use cognate_protocol::services::iam::Operation;
use serde_json::Value;

use crate::entities::Attrs;
use crate::{CallerUser, Iam, Result};

/// The resource and condition keys one request is authorized with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub resource: String,
    pub keys: Vec<(String, Vec<String>)>,
}

/// The kind of resource an operation acts on (`None`: only `"Resource": "*"`).
fn resource_kind(op: Operation) -> Option<&'static str> {
    use Operation::*;
    Some(match op {
        CreateUser
        | GetUser
        | DeleteUser
        | ListGroupsForUser
        | PutUserPolicy
        | GetUserPolicy
        | ListUserPolicies
        | DeleteUserPolicy
        | AttachUserPolicy
        | DetachUserPolicy
        | ListAttachedUserPolicies
        | PutUserPermissionsBoundary
        | DeleteUserPermissionsBoundary
        | CreateAccessKey
        | ListAccessKeys
        | UpdateAccessKey
        | DeleteAccessKey
        | GetAccessKeyLastUsed
        | TagUser
        | UntagUser
        | ListUserTags => "user",
        CreateGroup
        | GetGroup
        | DeleteGroup
        | AddUserToGroup
        | RemoveUserFromGroup
        | PutGroupPolicy
        | GetGroupPolicy
        | ListGroupPolicies
        | DeleteGroupPolicy
        | AttachGroupPolicy
        | DetachGroupPolicy
        | ListAttachedGroupPolicies => "group",
        CreateRole
        | GetRole
        | DeleteRole
        | UpdateRole
        | UpdateAssumeRolePolicy
        | PutRolePolicy
        | GetRolePolicy
        | ListRolePolicies
        | DeleteRolePolicy
        | AttachRolePolicy
        | DetachRolePolicy
        | ListAttachedRolePolicies
        | PutRolePermissionsBoundary
        | DeleteRolePermissionsBoundary
        | TagRole
        | UntagRole
        | ListRoleTags => "role",
        CreatePolicy
        | GetPolicy
        | DeletePolicy
        | CreatePolicyVersion
        | GetPolicyVersion
        | ListPolicyVersions
        | SetDefaultPolicyVersion
        | DeletePolicyVersion
        | TagPolicy
        | UntagPolicy
        | ListPolicyTags => "policy",
        CreateOpenIDConnectProvider
        | GetOpenIDConnectProvider
        | DeleteOpenIDConnectProvider
        | AddClientIDToOpenIDConnectProvider
        | RemoveClientIDFromOpenIDConnectProvider
        | UpdateOpenIDConnectProviderThumbprint
        | TagOpenIDConnectProvider
        | UntagOpenIDConnectProvider
        | ListOpenIDConnectProviderTags => "oidc-provider",
        SimulatePrincipalPolicy => "principal",
        _ => return None,
    })
}

/// Operations whose `iam:PermissionsBoundary` key is the boundary the target entity already
/// has (the others that carry the key take it from their input).
fn boundary_of_target(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        PutUserPolicy
            | DeleteUserPolicy
            | PutRolePolicy
            | DeleteRolePolicy
            | AttachUserPolicy
            | DetachUserPolicy
            | AttachRolePolicy
            | DetachRolePolicy
            | DeleteUserPermissionsBoundary
            | DeleteRolePermissionsBoundary
    )
}

fn attachment(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        AttachUserPolicy
            | DetachUserPolicy
            | AttachGroupPolicy
            | DetachGroupPolicy
            | AttachRolePolicy
            | DetachRolePolicy
    )
}

impl Iam<'_> {
    /// The resource and condition keys of one operation on model-shaped input.
    pub async fn authorization(
        &self,
        op: Operation,
        caller: &CallerUser<'_>,
        input: &Value,
    ) -> Result<Authorization> {
        let acct = self.account;
        let field = |k: &str| input.get(k).and_then(Value::as_str);
        let mut keys: Vec<(String, Vec<String>)> = Vec::new();
        let Some(kind) = resource_kind(op) else {
            return Ok(Authorization {
                resource: "*".to_owned(),
                keys: request_tags(input),
            });
        };
        // The path of an entity being created; existing entities answer with their own.
        let path = field("Path").unwrap_or("/");
        let named = |kind: &str, name: &str| format!("arn:aws:iam::{acct}:{kind}{path}{name}");
        let (resource, row) = match kind {
            "policy" => match (op, field("PolicyArn")) {
                (Operation::CreatePolicy, _) => {
                    (named("policy", field("PolicyName").unwrap_or("")), None)
                }
                (_, arn) => {
                    let arn = arn.unwrap_or("").to_owned();
                    let row = self.own_entity_by_arn("policy", &arn).await?;
                    (arn, row)
                }
            },
            "oidc-provider" => match (op, field("OpenIDConnectProviderArn")) {
                (Operation::CreateOpenIDConnectProvider, _) => {
                    let name =
                        crate::more::provider_name(field("Url").unwrap_or("")).unwrap_or_default();
                    (format!("arn:aws:iam::{acct}:oidc-provider/{name}"), None)
                }
                (_, arn) => {
                    let arn = arn.unwrap_or("").to_owned();
                    let row = self.own_entity_by_arn("oidc-provider", &arn).await?;
                    (arn, row)
                }
            },
            "principal" => (field("PolicySourceArn").unwrap_or("*").to_owned(), None),
            _ => {
                let member = match kind {
                    "user" => "UserName",
                    "group" => "GroupName",
                    _ => "RoleName",
                };
                let name = match (field(member), op) {
                    (Some(name), _) => Some(name.to_owned()),
                    (None, Operation::GetAccessKeyLastUsed) => {
                        let id = field("AccessKeyId").unwrap_or("");
                        self.store
                            .access_key(id)
                            .await?
                            .filter(|k| k.account_id == acct.as_str())
                            .and_then(|k| k.user_name)
                    }
                    // Without a user name, a user acts on itself and the root on the account.
                    (None, _) if kind == "user" => match caller {
                        CallerUser::User(name) => Some((*name).to_owned()),
                        _ => None,
                    },
                    (None, _) => None,
                };
                match name {
                    Some(name) => match self.store.entity(acct.as_str(), kind, &name).await? {
                        Some(row) => (row.arn.clone(), Some(row)),
                        None => (named(kind, &name), None),
                    },
                    None => (format!("arn:aws:iam::{acct}:root"), None),
                }
            }
        };
        let attrs = row.as_ref().map(Attrs::of).transpose()?;
        if let Some(attrs) = &attrs {
            // Groups carry no tags; the other kinds answer `aws:ResourceTag/…` (users and roles
            // `iam:ResourceTag/…` too).
            for tag in &attrs.tags {
                keys.push((
                    format!("aws:ResourceTag/{}", tag.key),
                    vec![tag.value.clone()],
                ));
                if kind == "user" || kind == "role" {
                    keys.push((
                        format!("iam:ResourceTag/{}", tag.key),
                        vec![tag.value.clone()],
                    ));
                }
            }
        }
        if attachment(op)
            && let Some(arn) = field("PolicyArn")
        {
            keys.push(("iam:PolicyARN".to_owned(), vec![arn.to_owned()]));
        }
        let boundary = if boundary_of_target(op) {
            attrs.as_ref().and_then(|a| a.boundary.clone())
        } else {
            use Operation::*;
            match op {
                CreateUser
                | CreateRole
                | PutUserPermissionsBoundary
                | PutRolePermissionsBoundary => field("PermissionsBoundary").map(str::to_owned),
                _ => None,
            }
        };
        if let Some(boundary) = boundary {
            keys.push(("iam:PermissionsBoundary".to_owned(), vec![boundary]));
        }
        keys.extend(request_tags(input));
        Ok(Authorization { resource, keys })
    }

    /// An entity of this account by ARN (another account's is not there for this caller).
    async fn own_entity_by_arn(
        &self,
        kind: &str,
        arn: &str,
    ) -> Result<Option<cognate_store::EntityRow>> {
        Ok(self
            .store
            .entity_by_arn(arn)
            .await?
            .filter(|r| r.kind == kind && r.account_id == self.account.as_str()))
    }
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` for requests that carry tags or tag keys.
fn request_tags(input: &Value) -> Vec<(String, Vec<String>)> {
    let mut keys = Vec::new();
    let mut tag_keys = Vec::new();
    for tag in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = tag.get("Key").and_then(Value::as_str).unwrap_or("");
        let value = tag.get("Value").and_then(Value::as_str).unwrap_or("");
        keys.push((format!("aws:RequestTag/{key}"), vec![value.to_owned()]));
        tag_keys.push(key.to_owned());
    }
    tag_keys.extend(
        input
            .get("TagKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_owned)),
    );
    if !tag_keys.is_empty() {
        keys.push(("aws:TagKeys".to_owned(), tag_keys));
    }
    keys
}
