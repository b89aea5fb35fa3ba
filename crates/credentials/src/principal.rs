//! Who made a request: the identity that authentication yields and authorization consumes.

use serde::{Deserialize, Serialize};

use crate::AccountId;

/// An authenticated AWS principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    /// The account's root user: may do anything in its own account.
    Root { account: AccountId },
    /// An IAM user: may do what its policies allow.
    User {
        account: AccountId,
        name: String,
        /// `AIDA…`
        id: String,
        /// `/` or `/division/`.
        path: String,
    },
}

impl Principal {
    pub fn account(&self) -> &AccountId {
        match self {
            Principal::Root { account } | Principal::User { account, .. } => account,
        }
    }

    /// The principal's ARN as `GetCallerIdentity` reports it.
    pub fn arn(&self) -> String {
        match self {
            Principal::Root { account } => format!("arn:aws:iam::{account}:root"),
            Principal::User {
                account,
                name,
                path,
                ..
            } => format!("arn:aws:iam::{account}:user{path}{name}"),
        }
    }

    /// The `UserId` of `GetCallerIdentity` (and the `aws:userid` condition key).
    pub fn user_id(&self) -> String {
        match self {
            Principal::Root { account } => account.to_string(),
            Principal::User { id, .. } => id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_identity_matches_aws() {
        let p = Principal::Root {
            account: AccountId::parse("111122223333").unwrap(),
        };
        assert_eq!(p.arn(), "arn:aws:iam::111122223333:root");
        assert_eq!(p.user_id(), "111122223333");
        let u = Principal::User {
            account: AccountId::parse("111122223333").unwrap(),
            name: "alice".into(),
            id: "AIDAEXAMPLE".into(),
            path: "/eng/".into(),
        };
        assert_eq!(u.arn(), "arn:aws:iam::111122223333:user/eng/alice");
        assert_eq!(u.user_id(), "AIDAEXAMPLE");
    }
}
