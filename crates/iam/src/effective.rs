//! The policies that apply to a principal: what the authorizer evaluates on every request.

use cognate_credentials::Principal;
use cognate_policy::{Policy, PolicyUse};
use cognate_store::Store;

use crate::aws_managed;
use crate::entities::Attrs;
use crate::{IamError, Result};

/// A principal's parsed identity-based policies and permissions boundary.
#[derive(Debug, Default)]
pub struct PrincipalPolicies {
    /// Its inline and attached policies, and those of its groups.
    pub identity: Vec<Policy>,
    /// `None` when it has no permissions boundary.
    pub boundary: Option<Vec<Policy>>,
    /// Its tags, as `aws:PrincipalTag/<key>` condition keys see them.
    pub tags: Vec<(String, String)>,
    /// The user or role the credentials were issued to no longer exists (it was deleted, or
    /// deleted and made again under the same name, with a new unique id): nothing is allowed.
    pub gone: bool,
}

/// A managed policy's default document: an AWS managed policy, or a customer managed one of
/// `account` (another account's policies do not exist for it, as in IAM).
async fn managed_document(store: &Store, account: &str, arn: &str) -> Result<Option<String>> {
    if let Some(p) = aws_managed::by_arn(arn) {
        return Ok(Some(p.document.to_owned()));
    }
    let Some(row) = store
        .entity_by_arn(arn)
        .await?
        .filter(|r| r.kind == "policy" && r.account_id == account)
    else {
        return Ok(None);
    };
    let default = Attrs::of(&row)?
        .default_version
        .unwrap_or_else(|| "v1".into());
    Ok(store
        .policy_versions(arn)
        .await?
        .into_iter()
        .find(|v| v.version_id == default)
        .map(|v| v.document))
}

fn parse(doc: &str) -> Result<Policy> {
    // Stored documents were validated when written; a failure here is corruption.
    Policy::parse(doc, PolicyUse::Identity)
        .map_err(|e| IamError::Internal(format!("stored policy does not parse: {e}")))
}

/// Loads and parses everything that applies to `principal`. The root user has none: its
/// identity-based permissions are implicit.
pub async fn principal_policies(store: &Store, principal: &Principal) -> Result<PrincipalPolicies> {
    let (account, kind, name, id) = match principal {
        Principal::Root { .. } => return Ok(PrincipalPolicies::default()),
        Principal::User {
            account, name, id, ..
        } => (account, "user", name, id),
        Principal::AssumedRole {
            account,
            role_name,
            role_id,
            ..
        } => (account, "role", role_name, role_id),
    };
    let acct = account.as_str();
    // Credentials are bound to the entity's unique id (AIDA…/AROA…), not to its name.
    let Some(entity) = store
        .entity(acct, kind, name)
        .await?
        .filter(|e| e.id == *id)
    else {
        return Ok(PrincipalPolicies {
            gone: true,
            ..PrincipalPolicies::default()
        });
    };
    let mut holders = vec![(kind.to_owned(), entity.name.clone())];
    if kind == "user" {
        for group in store.groups_for_user(acct, &entity.name).await? {
            holders.push(("group".to_owned(), group.name));
        }
    }
    let mut identity = Vec::new();
    for (kind, holder) in &holders {
        for inline in store.inline_policies(acct, kind, holder).await? {
            identity.push(parse(&inline.document)?);
        }
        for arn in store.attached_policies(acct, kind, holder).await? {
            if let Some(doc) = managed_document(store, acct, &arn).await? {
                identity.push(parse(&doc)?);
            }
        }
    }
    let attrs = Attrs::of(&entity)?;
    let tags = attrs
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    let boundary = match attrs.boundary {
        Some(arn) => Some(
            managed_document(store, acct, &arn)
                .await?
                .map(|d| parse(&d))
                .transpose()?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    Ok(PrincipalPolicies {
        identity,
        boundary,
        tags,
        gone: false,
    })
}

/// The default version's document of a managed policy (built in or stored), by ARN.
pub async fn managed_policy_document(
    store: &Store,
    account: &str,
    arn: &str,
) -> Result<Option<String>> {
    managed_document(store, account, arn).await
}

/// A role by ARN, with its trust policy and session limit.
pub async fn role_by_arn(store: &Store, arn: &str) -> Result<Option<RoleRecord>> {
    let Some(row) = store.entity_by_arn(arn).await?.filter(|r| r.kind == "role") else {
        return Ok(None);
    };
    let attrs = Attrs::of(&row)?;
    let trust = attrs.trust.clone().unwrap_or_default();
    let trust = Policy::parse(&trust, PolicyUse::Trust)
        .map_err(|e| IamError::Internal(format!("stored trust policy does not parse: {e}")))?;
    Ok(Some(RoleRecord {
        account_id: row.account_id,
        name: row.name,
        id: row.id,
        path: row.path,
        max_session_secs: attrs.max_session.unwrap_or(3600),
        tags: attrs
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        trust,
    }))
}

/// A role as STS needs it.
#[derive(Debug)]
pub struct RoleRecord {
    pub account_id: String,
    pub name: String,
    pub id: String,
    pub path: String,
    pub max_session_secs: i64,
    /// The role's tags, which requests to assume it see as `aws:ResourceTag/<key>`.
    pub tags: Vec<(String, String)>,
    pub trust: Policy,
}

/// An IAM OpenID Connect provider as STS needs it.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    pub arn: String,
    /// The issuer URL as registered.
    pub url: String,
    pub client_ids: Vec<String>,
}

/// The account's OpenID Connect provider for an issuer (named without its scheme).
pub async fn oidc_provider(
    store: &Store,
    account_id: &str,
    name: &str,
) -> Result<Option<OidcProvider>> {
    let Some(row) = store.entity(account_id, "oidc-provider", name).await? else {
        return Ok(None);
    };
    let attrs = Attrs::of(&row)?;
    Ok(Some(OidcProvider {
        url: attrs
            .url
            .clone()
            .unwrap_or_else(|| format!("https://{}", row.name)),
        arn: row.arn,
        client_ids: attrs.client_ids,
    }))
}

impl RoleRecord {
    /// `aws:ResourceTag/<key>` and `iam:ResourceTag/<key>` for a request to assume the role.
    pub fn resource_tag_keys(&self) -> impl Iterator<Item = (String, Vec<String>)> + '_ {
        self.tags.iter().flat_map(|(k, v)| {
            [
                (format!("aws:ResourceTag/{k}"), vec![v.clone()]),
                (format!("iam:ResourceTag/{k}"), vec![v.clone()]),
            ]
        })
    }
}
