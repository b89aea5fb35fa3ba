//! A declarative start: one TOML file that sets up accounts, IAM users (with fixed access
//! keys), groups and roles, user pools with fixed pool and client ids and their groups and
//! users, identity pools with their roles, and buckets with policies and CORS. `serve --init`
//! applies it at start; `cognate apply` sends it to a running server (`POST /_cognate/apply`,
//! signed by the default account's root), so a deployment of several nodes needs nothing
//! else. Applying is idempotent: what exists is kept, and policies, trust policies, passwords,
//! memberships, access keys, roles, bucket policies and CORS are set again to what the file
//! says. An error names the file, the line of the entry and what failed.

use std::collections::BTreeMap;

use cognate_credentials::AccountId;
use cognate_iam::organizations::Organizations;
use cognate_iam::{CallerUser, Iam, IamError};
use cognate_protocol::ApiError;
use cognate_protocol::services::iam::Operation as IamOp;
use cognate_store::BucketRow;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use toml::Spanned;

use crate::state::AppState;

/// Everything the file can hold. Keys are kebab-case; `settings` tables hold members of the
/// AWS operation that creates the thing (CreateUserPool, CreateUserPoolClient, CreateGroup,
/// CreateIdentityPool), and policies are documents written as TOML tables or JSON strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Plan {
    #[serde(default)]
    accounts: Vec<Spanned<AccountSpec>>,
    #[serde(default)]
    groups: Vec<Spanned<GroupSpec>>,
    #[serde(default)]
    users: Vec<Spanned<UserSpec>>,
    #[serde(default)]
    roles: Vec<Spanned<RoleSpec>>,
    #[serde(default)]
    user_pools: Vec<Spanned<UserPoolSpec>>,
    #[serde(default)]
    identity_pools: Vec<Spanned<IdentityPoolSpec>>,
    #[serde(default)]
    buckets: Vec<Spanned<BucketSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AccountSpec {
    id: String,
    name: String,
    email: Option<String>,
}

/// An IAM identity's policies: inline ones by name, and managed ones by ARN.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Policies {
    #[serde(default)]
    policies: BTreeMap<String, toml::Value>,
    #[serde(default)]
    managed_policies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GroupSpec {
    account: Option<String>,
    name: String,
    #[serde(flatten)]
    policies: Policies,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct UserSpec {
    account: Option<String>,
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    access_keys: Vec<KeySpec>,
    #[serde(flatten)]
    policies: Policies,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KeySpec {
    id: String,
    secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RoleSpec {
    account: Option<String>,
    name: String,
    trust: toml::Value,
    #[serde(flatten)]
    policies: Policies,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct UserPoolSpec {
    account: Option<String>,
    id: String,
    name: String,
    #[serde(default)]
    settings: toml::Table,
    #[serde(default)]
    clients: Vec<ClientSpec>,
    #[serde(default)]
    groups: Vec<PoolGroupSpec>,
    #[serde(default)]
    users: Vec<PoolUserSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ClientSpec {
    id: String,
    name: String,
    /// A fixed client secret (the client then has one, as with `GenerateSecret`).
    secret: Option<String>,
    #[serde(default)]
    settings: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PoolGroupSpec {
    name: String,
    #[serde(default)]
    settings: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PoolUserSpec {
    username: String,
    password: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct IdentityPoolSpec {
    account: Option<String>,
    id: String,
    name: String,
    #[serde(default)]
    settings: toml::Table,
    /// User pool app clients whose ID tokens are logins (`{ user-pool, client }`).
    #[serde(default)]
    providers: Vec<ProviderSpec>,
    /// `authenticated` / `unauthenticated` role ARNs.
    #[serde(default)]
    roles: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ProviderSpec {
    user_pool: String,
    client: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BucketSpec {
    account: Option<String>,
    name: String,
    policy: Option<toml::Value>,
    /// CORSRule members (`AllowedOrigins`, `AllowedMethods`, …).
    #[serde(default)]
    cors: Vec<toml::Table>,
}

/// Why a file was not applied: its name, the line of the entry, and what failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// What applying did, one line per entry.
pub type Report = Vec<String>;

/// Applies the file `text` (named `file` in errors) as the default account's root.
pub async fn apply(state: &AppState, file: &str, text: &str) -> Result<Report, ApplyError> {
    let plan: Plan = toml::from_str(text)
        .map_err(|e| ApplyError(format!("{file}: {}", e.to_string().trim_end())))?;
    let now = time::OffsetDateTime::now_utc();
    let run = Run {
        state,
        file,
        text,
        now,
    };
    let applied = run.all(&plan).await;
    // Whatever was applied before a failure is live: every node drops its caches either way.
    state.changed().await;
    applied
}

impl Run<'_> {
    async fn all(&self, plan: &Plan) -> Result<Report, ApplyError> {
        let run = self;
        let mut report = Vec::new();
        for a in &plan.accounts {
            report.push(run.at(a, run.account(a.get_ref()).await)?);
        }
        for g in &plan.groups {
            report.push(run.at(g, run.group(g.get_ref()).await)?);
        }
        for r in &plan.roles {
            report.push(run.at(r, run.role(r.get_ref()).await)?);
        }
        for u in &plan.users {
            report.push(run.at(u, run.user(u.get_ref()).await)?);
        }
        for p in &plan.user_pools {
            report.push(run.at(p, run.user_pool(p.get_ref()).await)?);
        }
        for p in &plan.identity_pools {
            report.push(run.at(p, run.identity_pool(p.get_ref()).await)?);
        }
        for b in &plan.buckets {
            report.push(run.at(b, run.bucket(b.get_ref()).await)?);
        }
        Ok(report)
    }
}

struct Run<'a> {
    state: &'a AppState,
    file: &'a str,
    text: &'a str,
    now: time::OffsetDateTime,
}

/// A policy document given as a TOML table or a JSON string, as JSON text.
fn document(what: &str, doc: &toml::Value) -> Result<String, String> {
    match doc {
        toml::Value::String(s) => {
            serde_json::from_str::<Value>(s).map_err(|e| format!("{what}: not JSON: {e}"))?;
            Ok(s.clone())
        }
        other => serde_json::to_string(other).map_err(|e| format!("{what}: {e}")),
    }
}

/// A `settings` table as an operation's JSON input, with the members the entry names.
fn input(settings: &toml::Table, members: &[(&str, Value)]) -> Result<Value, String> {
    let mut out: Map<String, Value> = match serde_json::to_value(settings) {
        Ok(Value::Object(m)) => m,
        _ => return Err("settings must be a table".into()),
    };
    for (k, v) in members {
        out.insert((*k).to_owned(), v.clone());
    }
    Ok(Value::Object(out))
}

fn api(what: &str) -> impl Fn(ApiError) -> String + '_ {
    move |e| format!("{what}: {}: {}", e.code, e.message)
}

fn iam_err(what: &str) -> impl Fn(IamError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Whether the thing an entry names by its fixed id is already there, as read (`Ok(Some(owner))`
/// or `Ok(None)`): an error when another account owns it.
fn exists_for(
    what: &str,
    found: Result<Option<String>, cognate_store::StoreError>,
    account: &str,
) -> Result<bool, String> {
    match found.map_err(|e| format!("{what}: {e}"))? {
        Some(owner) if owner != account => Err(format!("{what}: belongs to another account")),
        Some(_) => Ok(true),
        None => Ok(false),
    }
}

impl Run<'_> {
    /// The entry's outcome, or the error with the file and the entry's line.
    fn at<T>(
        &self,
        entry: &Spanned<T>,
        outcome: Result<String, String>,
    ) -> Result<String, ApplyError> {
        outcome.map_err(|message| {
            let line = self.text[..entry.span().start.min(self.text.len())]
                .matches('\n')
                .count()
                + 1;
            ApplyError(format!("{}:{line}: {message}", self.file))
        })
    }

    /// The account an entry names (the default one if none): one that exists, so that a
    /// mistyped id cannot create identities in an account nobody can see.
    async fn account_of(&self, named: Option<&str>) -> Result<AccountId, String> {
        let Some(id) = named else {
            return Ok(self.state.default_account.clone());
        };
        let account = AccountId::parse(id)
            .map_err(|_| format!("account: {id:?} is not a 12-digit account id"))?;
        match self.state.store.account(id).await {
            Ok(Some(_)) => Ok(account),
            Ok(None) => Err(format!(
                "account: {id} does not exist (declare it under [[accounts]])"
            )),
            Err(e) => Err(format!("account {id}: {e}")),
        }
    }

    /// Refuses an operation's input that its model refuses, as the API would.
    fn validated(
        model: &cognate_protocol::Model,
        operation: &str,
        input: Value,
    ) -> Result<Value, String> {
        let violations = model.validate_json(operation, &input);
        if violations.is_empty() {
            Ok(input)
        } else {
            Err(format!("{operation}: {}", violations.join("; ")))
        }
    }

    fn iam<'s>(&'s self, account: &'s AccountId) -> Iam<'s> {
        Iam {
            store: &self.state.store,
            account,
            master: &self.state.master,
            now: self.now,
            rng: &self.state.rng,
        }
    }

    async fn account(&self, spec: &AccountSpec) -> Result<String, String> {
        let id = AccountId::parse(&spec.id)
            .map_err(|_| format!("account: {:?} is not a 12-digit account id", spec.id))?;
        if id == self.state.default_account {
            return Ok(format!("account {id}: the default account"));
        }
        Organizations {
            store: &self.state.store,
            account: &self.state.default_account,
            master: &self.state.master,
            now: self.now,
            rng: &self.state.rng,
        }
        .ensure_member_account(&id, &spec.name, spec.email.as_deref())
        .await
        .map_err(|e| format!("account {id}: {e}"))?;
        Ok(format!("account {id} ({})", spec.name))
    }

    /// Creates an IAM entity unless it exists.
    async fn create(&self, iam: &Iam<'_>, op: IamOp, input: Value) -> Result<(), String> {
        match iam.call(op, CallerUser::Root, input).await {
            Ok(_) | Err(IamError::EntityAlreadyExists(_)) => Ok(()),
            Err(e) => Err(format!("{}: {e}", op_name(op))),
        }
    }

    /// Puts an identity's inline policies and attaches its managed ones.
    async fn policies(
        &self,
        iam: &Iam<'_>,
        kind: &str,
        name: &str,
        p: &Policies,
    ) -> Result<(), String> {
        use IamOp::*;
        let (put, attach, key) = match kind {
            "user" => (PutUserPolicy, AttachUserPolicy, "UserName"),
            "group" => (PutGroupPolicy, AttachGroupPolicy, "GroupName"),
            _ => (PutRolePolicy, AttachRolePolicy, "RoleName"),
        };
        for (policy, doc) in &p.policies {
            let what = format!("policies.{policy}");
            let text = document(&what, doc)?;
            iam.call(
                put,
                CallerUser::Root,
                json!({ key: name, "PolicyName": policy, "PolicyDocument": text }),
            )
            .await
            .map_err(iam_err(&what))?;
        }
        for arn in &p.managed_policies {
            iam.call(
                attach,
                CallerUser::Root,
                json!({ key: name, "PolicyArn": arn }),
            )
            .await
            .map_err(iam_err(&format!("managed-policies {arn}")))?;
        }
        Ok(())
    }

    async fn group(&self, spec: &GroupSpec) -> Result<String, String> {
        let account = self.account_of(spec.account.as_deref()).await?;
        let iam = self.iam(&account);
        self.create(&iam, IamOp::CreateGroup, json!({ "GroupName": spec.name }))
            .await?;
        self.policies(&iam, "group", &spec.name, &spec.policies)
            .await?;
        Ok(format!("group {} in {account}", spec.name))
    }

    async fn role(&self, spec: &RoleSpec) -> Result<String, String> {
        let account = self.account_of(spec.account.as_deref()).await?;
        let iam = self.iam(&account);
        let trust = document("trust", &spec.trust)?;
        self.create(
            &iam,
            IamOp::CreateRole,
            json!({ "RoleName": spec.name, "AssumeRolePolicyDocument": trust }),
        )
        .await?;
        iam.call(
            IamOp::UpdateAssumeRolePolicy,
            CallerUser::Root,
            json!({ "RoleName": spec.name, "PolicyDocument": trust }),
        )
        .await
        .map_err(iam_err("trust"))?;
        self.policies(&iam, "role", &spec.name, &spec.policies)
            .await?;
        Ok(format!("role arn:aws:iam::{account}:role/{}", spec.name))
    }

    async fn user(&self, spec: &UserSpec) -> Result<String, String> {
        let account = self.account_of(spec.account.as_deref()).await?;
        let iam = self.iam(&account);
        self.create(&iam, IamOp::CreateUser, json!({ "UserName": spec.name }))
            .await?;
        for group in &spec.groups {
            iam.call(
                IamOp::AddUserToGroup,
                CallerUser::Root,
                json!({ "UserName": spec.name, "GroupName": group }),
            )
            .await
            .map_err(iam_err(&format!("groups {group}")))?;
        }
        self.policies(&iam, "user", &spec.name, &spec.policies)
            .await?;
        for key in &spec.access_keys {
            iam.install_access_key(&spec.name, &key.id, &key.secret)
                .await
                .map_err(iam_err(&format!("access-keys {}", key.id)))?;
        }
        Ok(format!("user arn:aws:iam::{account}:user/{}", spec.name))
    }

    async fn user_pool(&self, spec: &UserPoolSpec) -> Result<String, String> {
        use cognate_userpool::Operation::*;
        let account = self.account_of(spec.account.as_deref()).await?;
        let account_text = account.to_string();
        let pools = self.state.user_pools(self.now, Some(&account_text));
        let found = self.state.store.user_pool(&spec.id).await;
        let what = format!("user pool {}", spec.id);
        if !exists_for(&what, found.map(|p| p.map(|p| p.account_id)), &account_text)? {
            let create = input(&spec.settings, &[("PoolName", json!(spec.name))])?;
            let create = Self::validated(
                cognate_protocol::Model::cognito_idp(),
                "CreateUserPool",
                create,
            )?;
            pools
                .create_pool_with_id(&create, &spec.id)
                .await
                .map_err(api("CreateUserPool"))?;
        }
        for c in &spec.clients {
            let what = format!("clients {}", c.id);
            match self
                .state
                .store
                .app_client(&c.id)
                .await
                .map_err(|e| format!("{what}: {e}"))?
            {
                Some(existing) if existing.pool_id != spec.id => {
                    return Err(format!("{what}: a client of another pool has this id"));
                }
                Some(_) => {}
                None => {
                    let mut members = vec![
                        ("UserPoolId", json!(spec.id)),
                        ("ClientName", json!(c.name)),
                    ];
                    if c.secret.is_some() {
                        members.push(("GenerateSecret", json!(true)));
                    }
                    let create = input(&c.settings, &members)
                        .and_then(|create| {
                            Self::validated(
                                cognate_protocol::Model::cognito_idp(),
                                "CreateUserPoolClient",
                                create,
                            )
                        })
                        .map_err(|e| format!("{what}: {e}"))?;
                    pools
                        .create_client_with_id(&create, &c.id, c.secret.as_deref())
                        .await
                        .map_err(api(&what))?;
                }
            }
        }
        for g in &spec.groups {
            let what = format!("groups {}", g.name);
            let create = input(
                &g.settings,
                &[("UserPoolId", json!(spec.id)), ("GroupName", json!(g.name))],
            )
            .and_then(|create| {
                Self::validated(
                    cognate_protocol::Model::cognito_idp(),
                    "CreateGroup",
                    create,
                )
            })
            .map_err(|e| format!("{what}: {e}"))?;
            match pools.call(CreateGroup, &create).await {
                Ok(_) => {}
                Err(e) if e.code == "GroupExistsException" => {
                    pools.call(UpdateGroup, &create).await.map_err(api(&what))?;
                }
                Err(e) => return Err(api(&what)(e)),
            }
        }
        for u in &spec.users {
            let what = format!("users {}", u.username);
            let name = json!({ "UserPoolId": spec.id, "Username": u.username });
            let attributes: Vec<Value> = u
                .attributes
                .iter()
                .map(|(k, v)| json!({ "Name": k, "Value": v }))
                .collect();
            match pools.call(AdminGetUser, &name).await {
                Ok(_) => {
                    if !attributes.is_empty() {
                        let update = json!({ "UserPoolId": spec.id, "Username": u.username, "UserAttributes": attributes });
                        pools
                            .call(AdminUpdateUserAttributes, &update)
                            .await
                            .map_err(api(&what))?;
                    }
                }
                Err(e) if e.code == "UserNotFoundException" => {
                    let create = json!({
                        "UserPoolId": spec.id, "Username": u.username,
                        "UserAttributes": attributes, "MessageAction": "SUPPRESS",
                    });
                    pools
                        .call(AdminCreateUser, &create)
                        .await
                        .map_err(api(&what))?;
                }
                Err(e) => return Err(api(&what)(e)),
            }
            let password = json!({ "UserPoolId": spec.id, "Username": u.username, "Password": u.password, "Permanent": true });
            pools
                .call(AdminSetUserPassword, &password)
                .await
                .map_err(api(&what))?;
            for group in &u.groups {
                let member =
                    json!({ "UserPoolId": spec.id, "Username": u.username, "GroupName": group });
                pools
                    .call(AdminAddUserToGroup, &member)
                    .await
                    .map_err(api(&format!("{what}: groups {group}")))?;
            }
        }
        Ok(format!("user pool {} ({})", spec.id, spec.name))
    }

    async fn identity_pool(&self, spec: &IdentityPoolSpec) -> Result<String, String> {
        let account = self.account_of(spec.account.as_deref()).await?;
        let account_text = account.to_string();
        let pools = self.state.identity_pools(self.now, Some(&account_text));
        let found = self.state.store.identity_pool(&spec.id).await;
        let what = format!("identity pool {}", spec.id);
        if !exists_for(&what, found.map(|p| p.map(|p| p.account_id)), &account_text)? {
            let region = &self.state.region;
            let providers: Vec<Value> = spec
                .providers
                .iter()
                .map(|p| {
                    json!({
                        "ProviderName": format!("cognito-idp.{region}.amazonaws.com/{}", p.user_pool),
                        "ClientId": p.client,
                    })
                })
                .collect();
            let mut members = vec![("IdentityPoolName", json!(spec.name))];
            if !spec.settings.contains_key("AllowUnauthenticatedIdentities") {
                members.push(("AllowUnauthenticatedIdentities", json!(false)));
            }
            if !providers.is_empty() {
                members.push(("CognitoIdentityProviders", json!(providers)));
            }
            let create = input(&spec.settings, &members)?;
            let create = Self::validated(
                cognate_protocol::Model::cognito_identity(),
                "CreateIdentityPool",
                create,
            )?;
            pools
                .create_pool_with_id(&create, &spec.id)
                .await
                .map_err(api("CreateIdentityPool"))?;
        }
        if !spec.roles.is_empty() {
            pools
                .call(
                    cognate_identitypool::Operation::SetIdentityPoolRoles,
                    &json!({ "IdentityPoolId": spec.id, "Roles": spec.roles }),
                )
                .await
                .map_err(api("roles"))?;
        }
        Ok(format!("identity pool {} ({})", spec.id, spec.name))
    }

    async fn bucket(&self, spec: &BucketSpec) -> Result<String, String> {
        let account = self.account_of(spec.account.as_deref()).await?;
        let store = &self.state.store;
        let what = format!("bucket {}", spec.name);
        if !cognate_s3::valid_bucket_name(&spec.name) {
            return Err(format!("{what}: not a valid bucket name"));
        }
        match store
            .bucket(&spec.name)
            .await
            .map_err(|e| format!("{what}: {e}"))?
        {
            Some(b) if b.account_id != account.as_str() => {
                return Err(format!("{what}: the name is another account's bucket"));
            }
            Some(_) => {}
            None => {
                let row = BucketRow {
                    name: spec.name.clone(),
                    account_id: account.to_string(),
                    region: self.state.region.clone(),
                    created_at: self.now.unix_timestamp(),
                    policy: None,
                    cors: None,
                    versioning: None,
                    tags: None,
                };
                match store.create_bucket(&row).await {
                    Ok(()) => {}
                    // Made meanwhile: ours only if our account made it.
                    Err(cognate_store::StoreError::Conflict) => {
                        let owner = store
                            .bucket(&spec.name)
                            .await
                            .map_err(|e| format!("{what}: {e}"))?;
                        if owner.is_none_or(|b| b.account_id != account.as_str()) {
                            return Err(format!("{what}: the name is another account's bucket"));
                        }
                    }
                    Err(e) => return Err(format!("{what}: {e}")),
                }
            }
        }
        let policy = match &spec.policy {
            Some(doc) => {
                let text = document("policy", doc)?;
                cognate_policy::Policy::parse(&text, cognate_policy::PolicyUse::Resource)
                    .map_err(|e| format!("{what}: policy: {}", e.message))?;
                Some(text)
            }
            None => None,
        };
        store
            .set_bucket_policy(&spec.name, policy.as_deref())
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let cors = if spec.cors.is_empty() {
            None
        } else {
            Some(cors_xml(&spec.cors).map_err(|e| format!("{what}: cors: {e}"))?)
        };
        store
            .set_bucket_cors(&spec.name, cors.as_deref())
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(format!("bucket {} in {account}", spec.name))
    }
}

/// CORSRule tables as the checked `CORSConfiguration` document.
fn cors_xml(rules: &[toml::Table]) -> Result<String, String> {
    let list = |rule: &toml::Table, key: &str| -> Result<Vec<String>, String> {
        match rule.get(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{key} holds strings"))
                })
                .collect(),
            Some(_) => Err(format!("{key} is a list of strings")),
        }
    };
    let mut config = cognate_s3::cors::CorsConfiguration::default();
    for rule in rules {
        for key in rule.keys() {
            if !matches!(
                key.as_str(),
                "ID" | "AllowedOrigins"
                    | "AllowedMethods"
                    | "AllowedHeaders"
                    | "ExposeHeaders"
                    | "MaxAgeSeconds"
            ) {
                return Err(format!("{key} is not a CORSRule member"));
            }
        }
        config.rules.push(cognate_s3::cors::CorsRule {
            id: rule
                .get("ID")
                .and_then(toml::Value::as_str)
                .map(str::to_owned),
            allowed_origins: list(rule, "AllowedOrigins")?,
            allowed_methods: list(rule, "AllowedMethods")?,
            allowed_headers: list(rule, "AllowedHeaders")?,
            expose_headers: list(rule, "ExposeHeaders")?,
            max_age_seconds: rule
                .get("MaxAgeSeconds")
                .and_then(toml::Value::as_integer)
                .and_then(|n| u64::try_from(n).ok()),
        });
    }
    let xml = config.to_xml();
    cognate_s3::cors::parse(xml.as_bytes()).map_err(|e| match e {
        cognate_s3::cors::CorsInvalid::Malformed => {
            "each rule needs AllowedOrigins and AllowedMethods".to_owned()
        }
        cognate_s3::cors::CorsInvalid::Invalid(m) => m,
    })?;
    Ok(xml)
}

fn op_name(op: IamOp) -> &'static str {
    cognate_protocol::ServiceOperation::name(op)
}
