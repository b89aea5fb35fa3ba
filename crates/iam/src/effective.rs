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
}

async fn managed_document(store: &Store, arn: &str) -> Result<Option<String>> {
    if let Some(p) = aws_managed::by_arn(arn) {
        return Ok(Some(p.document.to_owned()));
    }
    let Some(row) = store.entity_by_arn(arn).await? else {
        return Ok(None);
    };
    let default = Attrs::of(&row)
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
    let (account, kind, name) = match principal {
        Principal::Root { .. } => return Ok(PrincipalPolicies::default()),
        Principal::User { account, name, .. } => (account, "user", name),
        Principal::AssumedRole {
            account, role_name, ..
        } => (account, "role", role_name),
    };
    let acct = account.as_str();
    let Some(entity) = store.entity(acct, kind, name).await? else {
        return Ok(PrincipalPolicies::default());
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
            if let Some(doc) = managed_document(store, &arn).await? {
                identity.push(parse(&doc)?);
            }
        }
    }
    let attrs = Attrs::of(&entity);
    let tags = attrs
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    let boundary = match attrs.boundary {
        Some(arn) => Some(
            managed_document(store, &arn)
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
    })
}

/// The default version's document of a managed policy (built in or stored), by ARN.
pub async fn managed_policy_document(store: &Store, arn: &str) -> Result<Option<String>> {
    managed_document(store, arn).await
}

/// A role by ARN, with its trust policy and session limit.
pub async fn role_by_arn(store: &Store, arn: &str) -> Result<Option<RoleRecord>> {
    let Some(row) = store.entity_by_arn(arn).await?.filter(|r| r.kind == "role") else {
        return Ok(None);
    };
    let attrs = Attrs::of(&row);
    let trust = attrs.trust.clone().unwrap_or_default();
    let trust = Policy::parse(&trust, PolicyUse::Trust)
        .map_err(|e| IamError::Internal(format!("stored trust policy does not parse: {e}")))?;
    Ok(Some(RoleRecord {
        account_id: row.account_id,
        name: row.name,
        id: row.id,
        path: row.path,
        max_session_secs: attrs.max_session.unwrap_or(3600),
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
    let attrs = Attrs::of(&row);
    Ok(Some(OidcProvider {
        url: attrs
            .url
            .clone()
            .unwrap_or_else(|| format!("https://{}", row.name)),
        arn: row.arn,
        client_ids: attrs.client_ids,
    }))
}
