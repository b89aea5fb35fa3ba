//! CreateAccount gives the new member account an `OrganizationAccountAccessRole` that the
//! management account (and only it) may assume. Runs against a real SQLite store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cognate_credentials::{AccountId, MasterKey};
use cognate_iam::organizations::Organizations;
use cognate_iam::{CallerUser, Iam};
use cognate_policy::{
    Context, Decision, Policy, PolicySet, PolicyUse, PrincipalInfo, Request, evaluate,
};
use cognate_protocol::services::{iam::Operation as IamOp, organizations::Operation as OrgOp};
use cognate_store::{AccountRow, Store};
use serde_json::json;

#[tokio::test]
async fn created_accounts_trust_the_management_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db")).await.unwrap();
    let rng = ring::rand::SystemRandom::new();
    let (master, _) = MasterKey::generate(&rng).unwrap();
    let management = AccountId::parse("111122223333").unwrap();
    store
        .create_account(&AccountRow {
            account_id: management.to_string(),
            name: "default".into(),
            email: Some("root@example.com".into()),
            created_at: 0,
        })
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let orgs = Organizations {
        store: &store,
        account: &management,
        master: &master,
        now,
        rng: &rng,
    };
    let org = orgs
        .call(OrgOp::CreateOrganization, json!({}))
        .await
        .unwrap();
    assert!(
        org["Organization"]["Id"]
            .as_str()
            .unwrap()
            .starts_with("o-")
    );
    assert_eq!(
        org["Organization"]["MasterAccountEmail"],
        "root@example.com"
    );

    let status = orgs
        .call(
            OrgOp::CreateAccount,
            json!({ "Email": "logs@example.com", "AccountName": "logs" }),
        )
        .await
        .unwrap();
    let status = &status["CreateAccountStatus"];
    assert_eq!(status["State"], "SUCCEEDED");
    let member = AccountId::parse(status["AccountId"].as_str().unwrap()).unwrap();
    let again = orgs
        .call(
            OrgOp::DescribeCreateAccountStatus,
            json!({ "CreateAccountRequestId": status["Id"] }),
        )
        .await
        .unwrap();
    assert_eq!(
        again["CreateAccountStatus"]["AccountId"],
        member.to_string()
    );
    let listed = orgs.call(OrgOp::ListAccounts, json!({})).await.unwrap();
    assert_eq!(listed["Accounts"].as_array().unwrap().len(), 2);

    // The role exists in the member account, trusting the management account's root.
    let iam = Iam {
        store: &store,
        account: &member,
        master: &master,
        now,
        rng: &rng,
    };
    let role = iam
        .call(
            IamOp::GetRole,
            CallerUser::Root,
            json!({ "RoleName": "OrganizationAccountAccessRole" }),
        )
        .await
        .unwrap();
    assert_eq!(
        role["Role"]["Arn"],
        format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole")
    );
    let trust_text = percent_decode(role["Role"]["AssumeRolePolicyDocument"].as_str().unwrap());
    let trust = Policy::parse(&trust_text, PolicyUse::Trust).unwrap();
    let inline = iam
        .call(
            IamOp::ListRolePolicies,
            CallerUser::Root,
            json!({ "RoleName": "OrganizationAccountAccessRole" }),
        )
        .await
        .unwrap();
    assert_eq!(inline["PolicyNames"], json!(["AdministratorAccess"]));

    // A management-account user allowed sts:AssumeRole may assume it; another account's may not.
    let assume = |principal_arn: &str, caller_allows: bool| {
        let principal = PrincipalInfo::from_arn(principal_arn);
        let allow = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#, PolicyUse::Identity).unwrap();
        let identity = if caller_allows { vec![&allow] } else { vec![] };
        let set = PolicySet {
            identity: &identity,
            resource: Some(&trust),
            resource_account: Some(member.as_str()),
            ..PolicySet::default()
        };
        let role_arn = format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole");
        let context = Context::new();
        evaluate(
            &set,
            &Request {
                principal: &principal,
                action: "sts:AssumeRole",
                resource: &role_arn,
                context: &context,
            },
        )
        .decision
    };
    assert_eq!(
        assume("arn:aws:iam::111122223333:user/admin", true),
        Decision::Allowed
    );
    assert_eq!(
        assume("arn:aws:iam::111122223333:user/admin", false),
        Decision::ImplicitDeny
    );
    assert_eq!(
        assume("arn:aws:iam::444455556666:user/outsider", true),
        Decision::ImplicitDeny
    );

    // Only the management account manages the organization.
    let member_orgs = Organizations {
        store: &store,
        account: &member,
        master: &master,
        now,
        rng: &rng,
    };
    let err = member_orgs
        .call(OrgOp::ListAccounts, json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        cognate_protocol::ApiError::from(err).code,
        "AccessDeniedException"
    );
    assert_eq!(
        member_orgs
            .call(OrgOp::DescribeOrganization, json!({}))
            .await
            .unwrap()["Organization"]["Id"],
        org["Organization"]["Id"]
    );
    let err = orgs
        .call(OrgOp::CreateOrganization, json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        cognate_protocol::ApiError::from(err).code,
        "AlreadyInOrganizationException"
    );
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}
