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
    /// A session of an IAM role (from `AssumeRole` and friends).
    AssumedRole {
        /// The role's account.
        account: AccountId,
        role_name: String,
        /// `AROA…`
        role_id: String,
        role_path: String,
        session_name: String,
    },
}

impl Principal {
    pub fn account(&self) -> &AccountId {
        match self {
            Principal::Root { account }
            | Principal::User { account, .. }
            | Principal::AssumedRole { account, .. } => account,
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
            Principal::AssumedRole {
                account,
                role_name,
                session_name,
                ..
            } => format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
        }
    }

    /// The `UserId` of `GetCallerIdentity` (and the `aws:userid` condition key).
    pub fn user_id(&self) -> String {
        match self {
            Principal::Root { account } => account.to_string(),
            Principal::User { id, .. } => id.clone(),
            Principal::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
        }
    }
}

impl Principal {
    /// For a role session, the role's ARN (which policies may name instead of the session).
    pub fn role_arn(&self) -> Option<String> {
        match self {
            Principal::AssumedRole {
                account,
                role_name,
                role_path,
                ..
            } => Some(format!("arn:aws:iam::{account}:role{role_path}{role_name}")),
            _ => None,
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
        let r = Principal::AssumedRole {
            account: AccountId::parse("444455556666").unwrap(),
            role_name: "LogReader".into(),
            role_id: "AROAEXAMPLE".into(),
            role_path: "/ops/".into(),
            session_name: "alice".into(),
        };
        assert_eq!(
            r.arn(),
            "arn:aws:sts::444455556666:assumed-role/LogReader/alice"
        );
        assert_eq!(r.user_id(), "AROAEXAMPLE:alice");
        assert_eq!(
            r.role_arn().unwrap(),
            "arn:aws:iam::444455556666:role/ops/LogReader"
        );
    }
}
