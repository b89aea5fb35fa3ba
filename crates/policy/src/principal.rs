//! Who is asking, and how a policy's `Principal` element names them.

/// The principal of a request, as the policy engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// `arn:aws:iam::111122223333:user/alice`, `arn:aws:sts::…:assumed-role/R/s`, …
    pub arn: String,
    /// The principal's account (empty for anonymous and service principals).
    pub account: String,
    /// For role sessions: the role's ARN, which a policy may name instead of the session.
    pub role_arn: Option<String>,
    /// An account's root user: its identity-based permissions are implicitly everything.
    pub root: bool,
    /// For web-identity federation: the provider (`cognito-identity.amazonaws.com`, an OIDC
    /// provider ARN, …) as a trust policy's `Federated` names it.
    pub federated: Option<String>,
    /// A service principal (`ec2.amazonaws.com`).
    pub service: Option<String>,
    /// An unsigned request.
    pub anonymous: bool,
}

impl PrincipalInfo {
    /// A principal from its ARN (user, role session, root), with the account read from it.
    pub fn from_arn(arn: &str) -> PrincipalInfo {
        let account = arn.split(':').nth(4).unwrap_or("").to_owned();
        let root = arn.ends_with(":root");
        PrincipalInfo {
            arn: arn.to_owned(),
            account,
            root,
            ..PrincipalInfo::default()
        }
    }
}

/// How a policy's `Principal` matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PrincipalMatch {
    /// Through the account (`"123456789012"` or `arn:aws:iam::123456789012:root`): the grant
    /// is delegated to that account's own identity-based policies.
    Account,
    /// Through a role's ARN, for one of its sessions.
    Role,
    /// The principal itself (its ARN, a federated provider, a service, or `*`).
    Direct,
}

/// One entry of a policy's `Principal` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalName {
    Everyone,
    Account(String),
    Arn(String),
    Federated(String),
    Service(String),
    CanonicalUser(String),
}

impl PrincipalName {
    /// Parses one value of the `AWS` key.
    pub(crate) fn aws(value: &str) -> Option<PrincipalName> {
        if value == "*" {
            return Some(PrincipalName::Everyone);
        }
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            return Some(PrincipalName::Account(value.to_owned()));
        }
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "iam", "", account, "root"] if account.len() == 12 => {
                Some(PrincipalName::Account((*account).to_owned()))
            }
            ["arn", _, "iam" | "sts", "", account, resource]
                if account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && !resource.is_empty()
                    && !resource.contains('*') =>
            {
                Some(PrincipalName::Arn(value.to_owned()))
            }
            _ => None,
        }
    }

    pub(crate) fn matches(&self, p: &PrincipalInfo) -> Option<PrincipalMatch> {
        match self {
            PrincipalName::Everyone => Some(PrincipalMatch::Direct),
            PrincipalName::Account(account) => (!p.anonymous
                && p.federated.is_none()
                && p.service.is_none()
                && *account == p.account)
                .then_some(PrincipalMatch::Account),
            PrincipalName::Arn(arn) => {
                if *arn == p.arn {
                    Some(PrincipalMatch::Direct)
                } else if p.role_arn.as_deref() == Some(arn.as_str()) {
                    Some(PrincipalMatch::Role)
                } else {
                    None
                }
            }
            PrincipalName::Federated(provider) => (p.federated.as_deref()
                == Some(provider.as_str()))
            .then_some(PrincipalMatch::Direct),
            PrincipalName::Service(service) => {
                (p.service.as_deref() == Some(service.as_str())).then_some(PrincipalMatch::Direct)
            }
            PrincipalName::CanonicalUser(_) => None,
        }
    }
}
