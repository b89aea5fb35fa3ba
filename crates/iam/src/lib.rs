//! AWS IAM: users, groups, roles, managed and inline policies, access keys, permissions
//! boundaries and policy simulation, behind plain functions over the store.
//!
//! Inputs and outputs are JSON shaped by the IAM service model (member names exactly as
//! AWS spells them): the server decodes Query parameters into that shape and encodes the
//! output shape back to XML, so this crate never sees HTTP.

mod authorization;
mod aws_managed;
mod effective;
mod entities;
mod keys;
mod more;
pub mod organizations;
mod policies;
mod simulate;

pub use authorization::Authorization;
pub use effective::{
    OidcProvider, PrincipalPolicies, RoleRecord, managed_policy_document, oidc_provider,
    principal_policies, role_by_arn,
};

use cognate_credentials::{AccountId, MasterKey};
use cognate_protocol::ApiError;
use cognate_protocol::services::iam::Operation;
use cognate_store::{Store, StoreError};
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

/// IAM's errors, each owning its AWS code and status.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    PolicyNotAttachable(String),
    #[error("{0}")]
    Validation(String),
    #[error("internal failure: {0}")]
    Internal(String),
    /// A change lost a race with another change of the same entity and wrote nothing; the
    /// operation starts again (`Iam::call`), so the caller never sees this.
    #[error("the entity changed while this operation ran")]
    Stale,
}

impl From<StoreError> for IamError {
    fn from(e: StoreError) -> Self {
        IamError::Internal(e.to_string())
    }
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> ApiError {
        let (status, code) = match &e {
            IamError::NoSuchEntity(_) => (StatusCode::NOT_FOUND, "NoSuchEntity"),
            IamError::EntityAlreadyExists(_) => (StatusCode::CONFLICT, "EntityAlreadyExists"),
            IamError::DeleteConflict(_) => (StatusCode::CONFLICT, "DeleteConflict"),
            IamError::MalformedPolicyDocument(_) => {
                (StatusCode::BAD_REQUEST, "MalformedPolicyDocument")
            }
            IamError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
            IamError::LimitExceeded(_) => (StatusCode::CONFLICT, "LimitExceeded"),
            IamError::PolicyNotAttachable(_) => (StatusCode::BAD_REQUEST, "PolicyNotAttachable"),
            IamError::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
            IamError::Stale => (StatusCode::CONFLICT, "ConcurrentModification"),
            IamError::Internal(detail) => {
                tracing::error!(%detail, "iam operation failed inside the server");
                return ApiError::internal();
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

pub type Result<T, E = IamError> = std::result::Result<T, E>;

/// What every IAM operation runs with: the caller's account, the store, time and randomness.
pub struct Iam<'a> {
    pub store: &'a Store,
    pub account: &'a AccountId,
    pub master: &'a MasterKey,
    pub now: OffsetDateTime,
    pub rng: &'a (dyn SecureRandom + Sync),
}

/// The operations this crate implements; others are unknown operations to the caller.
pub fn implements(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        CreateUser
            | GetUser
            | ListUsers
            | DeleteUser
            | CreateGroup
            | GetGroup
            | ListGroups
            | DeleteGroup
            | AddUserToGroup
            | RemoveUserFromGroup
            | ListGroupsForUser
            | CreateRole
            | GetRole
            | ListRoles
            | DeleteRole
            | UpdateRole
            | UpdateAssumeRolePolicy
            | PutUserPolicy
            | GetUserPolicy
            | ListUserPolicies
            | DeleteUserPolicy
            | PutGroupPolicy
            | GetGroupPolicy
            | ListGroupPolicies
            | DeleteGroupPolicy
            | PutRolePolicy
            | GetRolePolicy
            | ListRolePolicies
            | DeleteRolePolicy
            | CreatePolicy
            | GetPolicy
            | ListPolicies
            | DeletePolicy
            | CreatePolicyVersion
            | GetPolicyVersion
            | ListPolicyVersions
            | SetDefaultPolicyVersion
            | DeletePolicyVersion
            | AttachUserPolicy
            | DetachUserPolicy
            | AttachGroupPolicy
            | DetachGroupPolicy
            | AttachRolePolicy
            | DetachRolePolicy
            | ListAttachedUserPolicies
            | ListAttachedGroupPolicies
            | ListAttachedRolePolicies
            | PutUserPermissionsBoundary
            | DeleteUserPermissionsBoundary
            | PutRolePermissionsBoundary
            | DeleteRolePermissionsBoundary
            | CreateAccessKey
            | ListAccessKeys
            | UpdateAccessKey
            | DeleteAccessKey
            | GetAccessKeyLastUsed
            | SimulatePrincipalPolicy
            | SimulateCustomPolicy
            | CreateOpenIDConnectProvider
            | GetOpenIDConnectProvider
            | ListOpenIDConnectProviders
            | DeleteOpenIDConnectProvider
            | AddClientIDToOpenIDConnectProvider
            | RemoveClientIDFromOpenIDConnectProvider
            | UpdateOpenIDConnectProviderThumbprint
            | TagUser
            | UntagUser
            | ListUserTags
            | TagRole
            | UntagRole
            | ListRoleTags
            | TagPolicy
            | UntagPolicy
            | ListPolicyTags
            | TagOpenIDConnectProvider
            | UntagOpenIDConnectProvider
            | ListOpenIDConnectProviderTags
            | GetAccountAuthorizationDetails
    )
}

/// Whether an operation only reads (so it leaves every cached policy valid).
pub fn is_read_only(op: Operation) -> bool {
    let name = op.name();
    name.starts_with("Get") || name.starts_with("List") || name.starts_with("Simulate")
}

fn input<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| IamError::InvalidInput(e.to_string()))
}

/// Sets a member of a JSON object (a no-op on anything else).
fn set(target: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = target {
        map.insert(key.to_owned(), value);
    }
}

fn iso(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The caller (for `GetUser` without a name, and for `ListAccessKeys` of oneself).
#[derive(Debug, Clone)]
pub enum CallerUser<'a> {
    Root,
    User(&'a str),
    /// A role session: it has no user of its own.
    RoleSession,
}

impl Iam<'_> {
    /// Runs one operation on model-shaped JSON input, returning model-shaped JSON output.
    /// Changes are compare-and-swap on what the operation read; one that lost a race starts
    /// again from a fresh read, so it never undoes another change.
    pub async fn call(&self, op: Operation, caller: CallerUser<'_>, value: Value) -> Result<Value> {
        for _ in 0..16 {
            match self.call_once(op, &caller, value.clone()).await {
                Err(IamError::Stale) => continue,
                other => return other,
            }
        }
        Err(IamError::Stale)
    }

    async fn call_once(
        &self,
        op: Operation,
        caller: &CallerUser<'_>,
        value: Value,
    ) -> Result<Value> {
        let caller = caller.clone();
        use Operation::*;
        match op {
            CreateUser => self.create_user(input(value)?).await,
            GetUser => self.get_user(input(value)?, &caller).await,
            ListUsers => self.list_entities("user", input(value)?).await,
            DeleteUser => self.delete_user(input(value)?).await,
            CreateGroup => self.create_group(input(value)?).await,
            GetGroup => self.get_group(input(value)?).await,
            ListGroups => self.list_entities("group", input(value)?).await,
            DeleteGroup => self.delete_group(input(value)?).await,
            AddUserToGroup => self.add_user_to_group(input(value)?).await,
            RemoveUserFromGroup => self.remove_user_from_group(input(value)?).await,
            ListGroupsForUser => self.list_groups_for_user(input(value)?).await,
            CreateRole => self.create_role(input(value)?).await,
            GetRole => self.get_role(input(value)?).await,
            ListRoles => self.list_entities("role", input(value)?).await,
            DeleteRole => self.delete_role(input(value)?).await,
            UpdateRole => self.update_role(input(value)?).await,
            UpdateAssumeRolePolicy => self.update_assume_role_policy(input(value)?).await,
            PutUserPolicy => self.put_inline("user", input(value)?).await,
            PutGroupPolicy => self.put_inline("group", input(value)?).await,
            PutRolePolicy => self.put_inline("role", input(value)?).await,
            GetUserPolicy => self.get_inline("user", input(value)?).await,
            GetGroupPolicy => self.get_inline("group", input(value)?).await,
            GetRolePolicy => self.get_inline("role", input(value)?).await,
            ListUserPolicies => self.list_inline("user", input(value)?).await,
            ListGroupPolicies => self.list_inline("group", input(value)?).await,
            ListRolePolicies => self.list_inline("role", input(value)?).await,
            DeleteUserPolicy => self.delete_inline("user", input(value)?).await,
            DeleteGroupPolicy => self.delete_inline("group", input(value)?).await,
            DeleteRolePolicy => self.delete_inline("role", input(value)?).await,
            CreatePolicy => self.create_policy(input(value)?).await,
            GetPolicy => self.get_policy(input(value)?).await,
            ListPolicies => self.list_policies(input(value)?).await,
            DeletePolicy => self.delete_policy(input(value)?).await,
            CreatePolicyVersion => self.create_policy_version(input(value)?).await,
            GetPolicyVersion => self.get_policy_version(input(value)?).await,
            ListPolicyVersions => self.list_policy_versions(input(value)?).await,
            SetDefaultPolicyVersion => self.set_default_policy_version(input(value)?).await,
            DeletePolicyVersion => self.delete_policy_version(input(value)?).await,
            AttachUserPolicy => self.attach("user", input(value)?).await,
            AttachGroupPolicy => self.attach("group", input(value)?).await,
            AttachRolePolicy => self.attach("role", input(value)?).await,
            DetachUserPolicy => self.detach("user", input(value)?).await,
            DetachGroupPolicy => self.detach("group", input(value)?).await,
            DetachRolePolicy => self.detach("role", input(value)?).await,
            ListAttachedUserPolicies => self.list_attached("user", input(value)?).await,
            ListAttachedGroupPolicies => self.list_attached("group", input(value)?).await,
            ListAttachedRolePolicies => self.list_attached("role", input(value)?).await,
            PutUserPermissionsBoundary => self.put_boundary("user", input(value)?).await,
            PutRolePermissionsBoundary => self.put_boundary("role", input(value)?).await,
            DeleteUserPermissionsBoundary => self.delete_boundary("user", input(value)?).await,
            DeleteRolePermissionsBoundary => self.delete_boundary("role", input(value)?).await,
            CreateAccessKey => self.create_access_key(input(value)?, &caller).await,
            ListAccessKeys => self.list_access_keys(input(value)?, &caller).await,
            UpdateAccessKey => self.update_access_key(input(value)?, &caller).await,
            DeleteAccessKey => self.delete_access_key(input(value)?, &caller).await,
            GetAccessKeyLastUsed => self.access_key_last_used(input(value)?).await,
            SimulatePrincipalPolicy => self.simulate_principal_policy(input(value)?).await,
            SimulateCustomPolicy => self.simulate_custom_policy(input(value)?),
            CreateOpenIDConnectProvider => self.create_oidc_provider(input(value)?).await,
            GetOpenIDConnectProvider => self.get_oidc_provider(input(value)?).await,
            ListOpenIDConnectProviders => self.list_oidc_providers().await,
            DeleteOpenIDConnectProvider => self.delete_oidc_provider(input(value)?).await,
            AddClientIDToOpenIDConnectProvider => self.add_client_id(input(value)?).await,
            RemoveClientIDFromOpenIDConnectProvider => self.remove_client_id(input(value)?).await,
            UpdateOpenIDConnectProviderThumbprint => self.update_thumbprints(input(value)?).await,
            TagUser => self.tag("user", input(value)?).await,
            UntagUser => self.untag("user", input(value)?).await,
            ListUserTags => self.list_tags("user", input(value)?).await,
            TagRole => self.tag("role", input(value)?).await,
            UntagRole => self.untag("role", input(value)?).await,
            ListRoleTags => self.list_tags("role", input(value)?).await,
            TagPolicy => self.tag("policy", input(value)?).await,
            UntagPolicy => self.untag("policy", input(value)?).await,
            ListPolicyTags => self.list_tags("policy", input(value)?).await,
            TagOpenIDConnectProvider => self.tag("oidc-provider", input(value)?).await,
            UntagOpenIDConnectProvider => self.untag("oidc-provider", input(value)?).await,
            ListOpenIDConnectProviderTags => self.list_tags("oidc-provider", input(value)?).await,
            GetAccountAuthorizationDetails => self.account_authorization_details().await,
            _ => Err(IamError::InvalidInput(format!(
                "{} is not implemented",
                op.name()
            ))),
        }
    }
}
