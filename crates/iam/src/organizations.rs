//! AWS Organizations: an organization per management account, and `CreateAccount`, which
//! makes a member account whose `OrganizationAccountAccessRole` trusts the management account.
//! This is how a second account comes to exist with nothing but an AWS SDK.

use cognate_credentials::{AccountId, MasterKey};
use cognate_protocol::ApiError;
use cognate_protocol::services::organizations::Operation;
use cognate_store::{AccountRow, CreateAccountRequestRow, OrganizationRow, Store, StoreError};
use http::StatusCode;
use ring::rand::SecureRandom;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{CallerUser, Iam};

/// Organizations' errors, with its AWS codes.
#[derive(Debug, thiserror::Error)]
pub enum OrganizationsError {
    #[error("Your account is not a member of an organization.")]
    NotInUse,
    #[error("The AWS account is already a member of an organization.")]
    AlreadyInOrganization,
    #[error("You specified an account that doesn't exist.")]
    AccountNotFound,
    #[error(
        "We can't find a create account request with the CreateAccountRequestId that you specified."
    )]
    CreateAccountStatusNotFound,
    #[error(
        "You don't have permissions to perform the requested operation. The user or role that is making the request must have at least one IAM permissions policy attached that grants the required permissions."
    )]
    AccessDenied,
    #[error("{0}")]
    InvalidInput(String),
    #[error("internal failure: {0}")]
    Internal(String),
}

impl From<StoreError> for OrganizationsError {
    fn from(e: StoreError) -> Self {
        OrganizationsError::Internal(e.to_string())
    }
}

impl From<crate::IamError> for OrganizationsError {
    fn from(e: crate::IamError) -> Self {
        OrganizationsError::Internal(e.to_string())
    }
}

impl From<OrganizationsError> for ApiError {
    fn from(e: OrganizationsError) -> ApiError {
        let code = match &e {
            OrganizationsError::NotInUse => "AWSOrganizationsNotInUseException",
            OrganizationsError::AlreadyInOrganization => "AlreadyInOrganizationException",
            OrganizationsError::AccountNotFound => "AccountNotFoundException",
            OrganizationsError::CreateAccountStatusNotFound => {
                "CreateAccountStatusNotFoundException"
            }
            OrganizationsError::AccessDenied => "AccessDeniedException",
            OrganizationsError::InvalidInput(_) => "InvalidInputException",
            OrganizationsError::Internal(detail) => {
                tracing::error!(%detail, "organizations operation failed inside the server");
                return ApiError::internal();
            }
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

type Result<T, E = OrganizationsError> = std::result::Result<T, E>;

/// The role every created account gets unless `RoleName` says otherwise.
pub const DEFAULT_ACCESS_ROLE: &str = "OrganizationAccountAccessRole";

/// What every Organizations operation runs with.
pub struct Organizations<'a> {
    pub store: &'a Store,
    /// The caller's account.
    pub account: &'a AccountId,
    pub master: &'a MasterKey,
    pub now: OffsetDateTime,
    pub rng: &'a (dyn SecureRandom + Sync),
}

/// The operations implemented; others are unknown operations.
pub fn implements(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        CreateOrganization
            | DescribeOrganization
            | CreateAccount
            | DescribeCreateAccountStatus
            | ListAccounts
            | DescribeAccount
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Input {
    #[serde(default)]
    feature_set: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    account_name: Option<String>,
    #[serde(default)]
    role_name: Option<String>,
    #[serde(default)]
    create_account_request_id: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
}

fn random_text(rng: &(dyn SecureRandom + Sync), n: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes)
        .map_err(|_| OrganizationsError::Internal("rng".into()))?;
    Ok(bytes
        .iter()
        .map(|b| {
            char::from(
                ALPHABET
                    .get(usize::from(*b) % ALPHABET.len())
                    .copied()
                    .unwrap_or(b'a'),
            )
        })
        .collect())
}

impl Organizations<'_> {
    /// Runs one operation on JSON input (already validated against the model).
    pub async fn call(&self, op: Operation, input: Value) -> Result<Value> {
        let input: Input = serde_json::from_value(input)
            .map_err(|e| OrganizationsError::InvalidInput(e.to_string()))?;
        use Operation::*;
        match op {
            CreateOrganization => self.create_organization(input).await,
            DescribeOrganization => Ok(
                json!({ "Organization": self.organization_json(&self.my_organization().await?).await? }),
            ),
            CreateAccount => self.create_account(input).await,
            DescribeCreateAccountStatus => self.describe_create_account_status(input).await,
            ListAccounts => self.list_accounts().await,
            DescribeAccount => self.describe_account(input).await,
            _ => Err(OrganizationsError::InvalidInput(format!(
                "{} is not implemented",
                op.name()
            ))),
        }
    }

    async fn my_organization(&self) -> Result<OrganizationRow> {
        self.store
            .organization_of(self.account.as_str())
            .await?
            .ok_or(OrganizationsError::NotInUse)
    }

    /// The caller's organization, if the caller is its management account.
    async fn managed_organization(&self) -> Result<OrganizationRow> {
        let org = self.my_organization().await?;
        if org.management_account_id != self.account.as_str() {
            return Err(OrganizationsError::AccessDenied);
        }
        Ok(org)
    }

    async fn organization_json(&self, org: &OrganizationRow) -> Result<Value> {
        let mgmt = &org.management_account_id;
        let email = self.store.account(mgmt).await?.and_then(|a| a.email);
        Ok(json!({
            "Id": org.org_id,
            "Arn": format!("arn:aws:organizations::{mgmt}:organization/{}", org.org_id),
            "FeatureSet": org.feature_set,
            "MasterAccountArn": format!("arn:aws:organizations::{mgmt}:account/{}/{mgmt}", org.org_id),
            "MasterAccountId": mgmt,
            "MasterAccountEmail": email,
            "AvailablePolicyTypes": [],
        }))
    }

    async fn create_organization(&self, input: Input) -> Result<Value> {
        let org = OrganizationRow {
            org_id: format!("o-{}", random_text(self.rng, 10)?),
            management_account_id: self.account.to_string(),
            feature_set: input.feature_set.unwrap_or_else(|| "ALL".into()),
            created_at: self.now.unix_timestamp(),
        };
        if self
            .store
            .organization_of(self.account.as_str())
            .await?
            .is_some()
        {
            return Err(OrganizationsError::AlreadyInOrganization);
        }
        match self.store.create_organization(&org).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(OrganizationsError::AlreadyInOrganization),
            Err(e) => return Err(e.into()),
        }
        Ok(json!({ "Organization": self.organization_json(&org).await? }))
    }

    /// Makes `account_id` a member account of this (management) account's organization, under
    /// the id the operator chose (`cognate apply`), with `OrganizationAccountAccessRole`; the
    /// organization is created first if there is none. An account already in the organization
    /// is left as it is.
    pub async fn ensure_member_account(
        &self,
        account_id: &AccountId,
        name: &str,
        email: Option<&str>,
    ) -> Result<()> {
        if self
            .store
            .organization_of(self.account.as_str())
            .await?
            .is_none()
        {
            self.create_organization(Input::default()).await?;
        }
        let org = self.managed_organization().await?;
        match self.store.organization_of(account_id.as_str()).await? {
            Some(theirs) if theirs.org_id == org.org_id => return Ok(()),
            Some(_) => return Err(OrganizationsError::AlreadyInOrganization),
            None => {}
        }
        let row = AccountRow {
            account_id: account_id.to_string(),
            name: name.to_owned(),
            email: email.map(str::to_owned),
            created_at: self.now.unix_timestamp(),
        };
        match self.store.create_member_account(&org.org_id, &row).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(OrganizationsError::InvalidInput(format!(
                    "The account id {account_id} is taken."
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.create_access_role(account_id, &org.management_account_id, DEFAULT_ACCESS_ROLE)
            .await
    }

    async fn create_account(&self, input: Input) -> Result<Value> {
        let org = self.managed_organization().await?;
        let name = input.account_name.unwrap_or_default();
        let now = self.now.unix_timestamp();
        let mut account_id = AccountId::generate(self.rng)
            .map_err(|_| OrganizationsError::Internal("rng".into()))?;
        let mut attempts = 0;
        loop {
            let row = AccountRow {
                account_id: account_id.to_string(),
                name: name.clone(),
                email: input.email.clone(),
                created_at: now,
            };
            match self.store.create_member_account(&org.org_id, &row).await {
                Ok(()) => break,
                Err(StoreError::Conflict) if attempts < 3 => {
                    attempts += 1;
                    account_id = AccountId::generate(self.rng)
                        .map_err(|_| OrganizationsError::Internal("rng".into()))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let role = input
            .role_name
            .unwrap_or_else(|| DEFAULT_ACCESS_ROLE.into());
        self.create_access_role(&account_id, &org.management_account_id, &role)
            .await?;
        let request = CreateAccountRequestRow {
            request_id: format!("car-{}", random_text(self.rng, 32)?),
            org_id: org.org_id,
            account_name: name,
            account_id: Some(account_id.to_string()),
            // Accounts are created synchronously, so the request has already succeeded.
            state: "SUCCEEDED".into(),
            requested_at: now,
            completed_at: Some(now),
        };
        self.store.put_create_account_request(&request).await?;
        Ok(json!({ "CreateAccountStatus": status_json(&request) }))
    }

    /// The member account's administrator role, trusting the management account.
    async fn create_access_role(
        &self,
        account: &AccountId,
        management: &str,
        role: &str,
    ) -> Result<()> {
        let iam = Iam {
            store: self.store,
            account,
            master: self.master,
            now: self.now,
            rng: self.rng,
        };
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "AWS": format!("arn:aws:iam::{management}:root") }, "Action": "sts:AssumeRole" }],
        });
        let admin = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }] });
        use cognate_protocol::services::iam::Operation as IamOp;
        iam.call(
            IamOp::CreateRole,
            CallerUser::Root,
            json!({ "RoleName": role, "AssumeRolePolicyDocument": trust.to_string() }),
        )
        .await?;
        iam.call(
            IamOp::PutRolePolicy,
            CallerUser::Root,
            json!({ "RoleName": role, "PolicyName": "AdministratorAccess", "PolicyDocument": admin.to_string() }),
        )
        .await?;
        Ok(())
    }

    async fn describe_create_account_status(&self, input: Input) -> Result<Value> {
        let org = self.managed_organization().await?;
        let id = input.create_account_request_id.unwrap_or_default();
        let request = self
            .store
            .create_account_request(&id)
            .await?
            .filter(|r| r.org_id == org.org_id)
            .ok_or(OrganizationsError::CreateAccountStatusNotFound)?;
        Ok(json!({ "CreateAccountStatus": status_json(&request) }))
    }

    async fn list_accounts(&self) -> Result<Value> {
        let org = self.managed_organization().await?;
        let accounts: Vec<Value> = self
            .store
            .organization_accounts(&org.org_id)
            .await?
            .iter()
            .map(|m| account_json(&org, m))
            .collect();
        Ok(json!({ "Accounts": accounts }))
    }

    async fn describe_account(&self, input: Input) -> Result<Value> {
        let org = self.managed_organization().await?;
        let id = input.account_id.unwrap_or_default();
        let member = self
            .store
            .organization_accounts(&org.org_id)
            .await?
            .into_iter()
            .find(|m| m.account.account_id == id)
            .ok_or(OrganizationsError::AccountNotFound)?;
        Ok(json!({ "Account": account_json(&org, &member) }))
    }
}

fn status_json(r: &CreateAccountRequestRow) -> Value {
    json!({
        "Id": r.request_id,
        "AccountName": r.account_name,
        "State": r.state,
        "RequestedTimestamp": r.requested_at,
        "CompletedTimestamp": r.completed_at,
        "AccountId": r.account_id,
    })
}

fn account_json(org: &OrganizationRow, m: &cognate_store::MemberRow) -> Value {
    let mgmt = &org.management_account_id;
    json!({
        "Id": m.account.account_id,
        "Arn": format!("arn:aws:organizations::{mgmt}:account/{}/{}", org.org_id, m.account.account_id),
        "Email": m.account.email,
        "Name": m.account.name,
        "Status": "ACTIVE",
        "State": "ACTIVE",
        "JoinedMethod": m.joined_method,
        "JoinedTimestamp": m.joined_at,
    })
}
