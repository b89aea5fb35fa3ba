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
    let Principal::User { account, name, .. } = principal else {
        return Ok(PrincipalPolicies::default());
    };
    let acct = account.as_str();
    let Some(user) = store.entity(acct, "user", name).await? else {
        return Ok(PrincipalPolicies::default());
    };
    let mut holders = vec![("user".to_owned(), user.name.clone())];
    for group in store.groups_for_user(acct, &user.name).await? {
        holders.push(("group".to_owned(), group.name));
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
    let attrs = Attrs::of(&user);
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
