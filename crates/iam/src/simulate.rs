//! SimulatePrincipalPolicy and SimulateCustomPolicy: the real evaluation logic over the
//! principal's stored policies (or the caller's documents), with the statements that matched.

use cognate_policy::{
    Context, Policy, PolicyKind, PolicySet, PolicyUse, PrincipalInfo, Request, evaluate,
    matched_statements,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::aws_managed;
use crate::entities::Attrs;
use crate::{Iam, IamError, Result};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContextEntry {
    pub context_key_name: String,
    #[serde(default)]
    pub context_key_values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SimulateInput {
    #[serde(default)]
    pub policy_source_arn: Option<String>,
    #[serde(default)]
    pub policy_input_list: Vec<String>,
    #[serde(default)]
    pub permissions_boundary_policy_input_list: Vec<String>,
    pub action_names: Vec<String>,
    #[serde(default)]
    pub resource_arns: Vec<String>,
    #[serde(default)]
    pub resource_policy: Option<String>,
    #[serde(default)]
    pub resource_owner: Option<String>,
    #[serde(default)]
    pub caller_arn: Option<String>,
    #[serde(default)]
    pub context_entries: Vec<ContextEntry>,
}

/// A policy with where it came from, as MatchedStatements names it.
struct Sourced {
    id: String,
    source_type: &'static str,
    policy: Policy,
}

fn parse_input(doc: &str, usage: PolicyUse) -> Result<Policy> {
    Policy::parse(doc, usage).map_err(|e| IamError::MalformedPolicyDocument(e.message))
}

impl Iam<'_> {
    /// The stored policies of a user (with its groups'), group or role.
    async fn sourced_policies(&self, arn: &str) -> Result<(Vec<Sourced>, Option<String>)> {
        let row = self
            .store
            .entity_by_arn(arn)
            .await?
            .filter(|r| {
                r.account_id == self.account.as_str()
                    && matches!(r.kind.as_str(), "user" | "group" | "role")
            })
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The entity with ARN {arn} cannot be found."))
            })?;
        let acct = self.account.as_str();
        let mut holders = vec![(row.kind.clone(), row.name.clone())];
        if row.kind == "user" {
            for g in self.store.groups_for_user(acct, &row.name).await? {
                holders.push(("group".into(), g.name));
            }
        }
        let mut out = Vec::new();
        for (kind, name) in &holders {
            let source_type = match kind.as_str() {
                "group" => "group",
                "role" => "role",
                _ => "user",
            };
            for p in self.store.inline_policies(acct, kind, name).await? {
                out.push(Sourced {
                    id: p.policy_name,
                    source_type,
                    policy: parse_input(&p.document, PolicyUse::Identity)?,
                });
            }
            for policy_arn in self.store.attached_policies(acct, kind, name).await? {
                if let Some(m) = self.managed_policy(&policy_arn).await? {
                    let doc = self.managed_document(&m).await?;
                    let source_type = if aws_managed::by_arn(&policy_arn).is_some() {
                        "aws-managed"
                    } else {
                        "user-managed"
                    };
                    out.push(Sourced {
                        id: m.name,
                        source_type,
                        policy: parse_input(&doc, PolicyUse::Identity)?,
                    });
                }
            }
        }
        Ok((out, Attrs::of(&row)?.boundary))
    }

    pub(crate) async fn simulate_principal_policy(&self, input: SimulateInput) -> Result<Value> {
        let source = input.policy_source_arn.clone().unwrap_or_default();
        let (mut identity, boundary_arn) = self.sourced_policies(&source).await?;
        for (i, doc) in input.policy_input_list.iter().enumerate() {
            identity.push(Sourced {
                id: format!("PolicyInputList.{}", i + 1),
                source_type: "none",
                policy: parse_input(doc, PolicyUse::Identity)?,
            });
        }
        let mut boundary = Vec::new();
        if let Some(arn) = boundary_arn
            && let Some(m) = self.managed_policy(&arn).await?
        {
            let doc = self.managed_document(&m).await?;
            boundary.push(Sourced {
                id: m.name,
                source_type: "aws-managed",
                policy: parse_input(&doc, PolicyUse::Identity)?,
            });
        }
        let caller = input.caller_arn.clone().unwrap_or_else(|| source.clone());
        self.simulate(identity, boundary, caller, &input)
    }

    pub(crate) fn simulate_custom_policy(&self, input: SimulateInput) -> Result<Value> {
        let identity = input
            .policy_input_list
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                Ok(Sourced {
                    id: format!("PolicyInputList.{}", i + 1),
                    source_type: "none",
                    policy: parse_input(doc, PolicyUse::Identity)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let caller = input
            .caller_arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:iam::{}:user/SimulatedUser", self.account));
        self.simulate(identity, Vec::new(), caller, &input)
    }

    fn simulate(
        &self,
        identity: Vec<Sourced>,
        mut boundary: Vec<Sourced>,
        caller: String,
        input: &SimulateInput,
    ) -> Result<Value> {
        for (i, doc) in input
            .permissions_boundary_policy_input_list
            .iter()
            .enumerate()
        {
            boundary.push(Sourced {
                id: format!("PermissionsBoundaryPolicyInputList.{}", i + 1),
                source_type: "none",
                policy: parse_input(doc, PolicyUse::Identity)?,
            });
        }
        let resource_policy = input
            .resource_policy
            .as_deref()
            .map(|d| parse_input(d, PolicyUse::Resource))
            .transpose()?;
        let mut context = Context::new();
        for entry in &input.context_entries {
            context.insert(&entry.context_key_name, entry.context_key_values.clone());
        }
        let principal = PrincipalInfo::from_arn(&caller);
        let identity_refs: Vec<&Policy> = identity.iter().map(|s| &s.policy).collect();
        let boundary_refs: Vec<&Policy> = boundary.iter().map(|s| &s.policy).collect();
        let owner_account = input
            .resource_owner
            .as_deref()
            .map(|o| o.split(':').nth(4).filter(|a| !a.is_empty()).unwrap_or(o));
        let set = PolicySet {
            identity: &identity_refs,
            resource: resource_policy.as_ref(),
            resource_account: owner_account,
            boundary: (!boundary_refs.is_empty()).then_some(boundary_refs.as_slice()),
            session: None,
        };
        // Keys the policies use that the caller gave no value for.
        let provided: Vec<&str> = input
            .context_entries
            .iter()
            .map(|e| e.context_key_name.as_str())
            .collect();
        let mut missing: Vec<String> = Vec::new();
        let all = identity
            .iter()
            .chain(boundary.iter())
            .map(|s| &s.policy)
            .chain(resource_policy.iter());
        for key in all.flat_map(Policy::context_keys) {
            if !provided.iter().any(|p| p.eq_ignore_ascii_case(&key))
                && !missing.iter().any(|m| m.eq_ignore_ascii_case(&key))
            {
                missing.push(key);
            }
        }
        let resources: Vec<String> = if input.resource_arns.is_empty() {
            vec!["*".into()]
        } else {
            input.resource_arns.clone()
        };
        let mut results = Vec::new();
        for action in &input.action_names {
            for resource in &resources {
                let request = Request {
                    principal: &principal,
                    action,
                    resource,
                    context: &context,
                };
                let evaluation = evaluate(&set, &request);
                let matched: Vec<Value> = matched_statements(&set, &request)
                    .into_iter()
                    .filter_map(|m| {
                        let (id, source_type) = match m.kind {
                            PolicyKind::Identity => identity
                                .get(m.policy)
                                .map(|s| (s.id.clone(), s.source_type))?,
                            PolicyKind::PermissionsBoundary => boundary
                                .get(m.policy)
                                .map(|s| (s.id.clone(), s.source_type))?,
                            PolicyKind::Resource => ("ResourcePolicy".to_owned(), "resource"),
                            PolicyKind::Session => return None,
                        };
                        Some(json!({ "SourcePolicyId": id, "SourcePolicyType": source_type }))
                    })
                    .collect();
                let mut result = json!({
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": evaluation.decision.as_str(),
                    "MatchedStatements": matched,
                    "MissingContextValues": missing,
                });
                if !boundary.is_empty() {
                    let allowed_by_boundary = evaluation.reason
                        != cognate_policy::Reason::NoAllow(PolicyKind::PermissionsBoundary)
                        && evaluation.reason
                            != cognate_policy::Reason::ExplicitDeny(
                                PolicyKind::PermissionsBoundary,
                            );
                    crate::set(
                        &mut result,
                        "PermissionsBoundaryDecisionDetail",
                        json!({ "AllowedByPermissionsBoundary": allowed_by_boundary }),
                    );
                }
                results.push(result);
            }
        }
        Ok(json!({ "EvaluationResults": results, "IsTruncated": false }))
    }
}
