//! The evaluation logic of the IAM User Guide ("Policy evaluation logic" and "Cross-account
//! policy evaluation logic"): explicit deny first, then resource-based, identity-based,
//! permissions-boundary and session policies.

use crate::parse::{Effect, Policy, PolicyUse, Statement};
use crate::principal::PrincipalMatch;
use crate::{Context, Request};

/// The kinds of policy that take part in a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Resource,
    PermissionsBoundary,
    Session,
}

impl PolicyKind {
    /// The phrase AWS uses in AccessDenied messages.
    pub fn phrase(self) -> &'static str {
        match self {
            PolicyKind::Identity => "identity-based policy",
            PolicyKind::Resource => "resource-based policy",
            PolicyKind::PermissionsBoundary => "permissions boundary",
            PolicyKind::Session => "session policy",
        }
    }
}

/// Every policy that applies to one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySet<'a> {
    /// The principal's identity-based policies (its own, its groups', its role's).
    pub identity: &'a [&'a Policy],
    /// The resource's policy (a bucket policy, a role's trust policy). A trust policy
    /// (`PolicyUse::Trust`) must admit the caller even within its own account.
    pub resource: Option<&'a Policy>,
    /// The account that owns the resource; a different account from the principal's makes
    /// the request cross-account. `None` means the principal's own account.
    pub resource_account: Option<&'a str>,
    /// `None` when the principal has no permissions boundary.
    pub boundary: Option<&'a [&'a Policy]>,
    /// `None` when the session has no session policies.
    pub session: Option<&'a [&'a Policy]>,
}

/// The outcome, in SimulatePrincipalPolicy's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl Decision {
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ExplicitDeny => "explicitDeny",
            Decision::ImplicitDeny => "implicitDeny",
        }
    }
}

/// Why the decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Allowed,
    /// A `Deny` statement of this kind of policy matched.
    ExplicitDeny(PolicyKind),
    /// No policy of this kind allows the action.
    NoAllow(PolicyKind),
}

/// A statement: which kind of policy, which policy of that kind, which statement in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef {
    pub kind: PolicyKind,
    pub policy: usize,
    pub statement: usize,
}

/// A decision and the statement that made it, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    pub reason: Reason,
    pub deciding: Option<StatementRef>,
}

impl Evaluation {
    /// AWS's AccessDenied message: "User: … is not authorized to perform: … on resource: …
    /// because no identity-based policy allows the … action".
    pub fn message(&self, request: &Request<'_>) -> String {
        let who = &request.principal.arn;
        let base = format!(
            "User: {who} is not authorized to perform: {} on resource: {}",
            request.action, request.resource
        );
        match self.reason {
            Reason::Allowed => format!("User: {who} is authorized to perform: {}", request.action),
            Reason::ExplicitDeny(kind) => {
                let article = if kind == PolicyKind::Identity {
                    "an"
                } else {
                    "a"
                };
                format!(
                    "{base} with an explicit deny in {article} {}",
                    kind.phrase()
                )
            }
            Reason::NoAllow(kind) => format!(
                "{base} because no {} allows the {} action",
                kind.phrase(),
                request.action
            ),
        }
    }
}

fn statement_applies(
    s: &Statement,
    request: &Request<'_>,
    check_principal: bool,
) -> Option<PrincipalMatch> {
    let context: &Context = request.context;
    let action_hit = s
        .actions
        .patterns
        .iter()
        .any(|p| p.matches(request.action, context, true));
    if action_hit == s.actions.negated {
        return None;
    }
    if let Some(resources) = &s.resources {
        let hit = resources
            .patterns
            .iter()
            .any(|p| p.matches_arn(request.resource, context));
        if hit == resources.negated {
            return None;
        }
    }
    let how = if check_principal {
        let set = s.principal.as_ref()?;
        let best = set
            .names
            .iter()
            .filter_map(|n| n.matches(request.principal))
            .max();
        match (set.negated, best) {
            (false, Some(how)) => how,
            (false, None) => return None,
            (true, Some(_)) => return None,
            (true, None) => PrincipalMatch::Direct,
        }
    } else {
        PrincipalMatch::Direct
    };
    // An unknowable key fails closed: it keeps an Allow from applying and a Deny from being
    // escaped.
    let unknown_applies = s.effect == Effect::Deny;
    s.conditions
        .iter()
        .all(|c| c.evaluate(context).unwrap_or(unknown_applies))
        .then_some(how)
}

/// The first statement of `effect` that applies, with how its principal matched.
fn find(
    policies: &[&Policy],
    kind: PolicyKind,
    effect: Effect,
    request: &Request<'_>,
) -> Option<(StatementRef, PrincipalMatch)> {
    let check_principal = kind == PolicyKind::Resource;
    policies.iter().enumerate().find_map(|(pi, policy)| {
        policy.statements.iter().enumerate().find_map(|(si, s)| {
            if s.effect != effect {
                return None;
            }
            statement_applies(s, request, check_principal).map(|how| {
                (
                    StatementRef {
                        kind,
                        policy: pi,
                        statement: si,
                    },
                    how,
                )
            })
        })
    })
}

/// The strongest principal match among the allowing statements of a resource policy.
fn best_resource_allow(
    policy: &Policy,
    request: &Request<'_>,
) -> Option<(StatementRef, PrincipalMatch)> {
    policy
        .statements
        .iter()
        .enumerate()
        .filter(|(_, s)| s.effect == Effect::Allow)
        .filter_map(|(si, s)| {
            statement_applies(s, request, true).map(|how| {
                (
                    StatementRef {
                        kind: PolicyKind::Resource,
                        policy: 0,
                        statement: si,
                    },
                    how,
                )
            })
        })
        .max_by_key(|(_, how)| *how)
}

fn deny(kind: PolicyKind, at: Option<StatementRef>) -> Evaluation {
    Evaluation {
        decision: Decision::ExplicitDeny,
        reason: Reason::ExplicitDeny(kind),
        deciding: at,
    }
}

fn implicit(kind: PolicyKind) -> Evaluation {
    Evaluation {
        decision: Decision::ImplicitDeny,
        reason: Reason::NoAllow(kind),
        deciding: None,
    }
}

fn allowed(at: Option<StatementRef>) -> Evaluation {
    Evaluation {
        decision: Decision::Allowed,
        reason: Reason::Allowed,
        deciding: at,
    }
}

/// Decides one request. Never fails and never allocates on its own.
pub fn evaluate(set: &PolicySet<'_>, request: &Request<'_>) -> Evaluation {
    let resource: &[&Policy] = match &set.resource {
        Some(p) => std::slice::from_ref(p),
        None => &[],
    };
    // 1. An explicit deny anywhere decides.
    let layers: [(&[&Policy], PolicyKind); 4] = [
        (set.identity, PolicyKind::Identity),
        (resource, PolicyKind::Resource),
        (set.boundary.unwrap_or(&[]), PolicyKind::PermissionsBoundary),
        (set.session.unwrap_or(&[]), PolicyKind::Session),
    ];
    for (policies, kind) in layers {
        if let Some((at, _)) = find(policies, kind, Effect::Deny, request) {
            return deny(kind, Some(at));
        }
    }

    let principal = request.principal;
    let identity_allow = if principal.root {
        Some(None)
    } else {
        find(set.identity, PolicyKind::Identity, Effect::Allow, request).map(|(at, _)| Some(at))
    };
    let resource_allow = set.resource.and_then(|p| best_resource_allow(p, request));
    let boundary_ok = set
        .boundary
        .is_none_or(|b| find(b, PolicyKind::PermissionsBoundary, Effect::Allow, request).is_some());
    let session_ok = set
        .session
        .is_none_or(|s| find(s, PolicyKind::Session, Effect::Allow, request).is_some());
    if principal.anonymous {
        // An unsigned request has no identity: only a resource policy can grant it.
        return match resource_allow {
            Some((at, PrincipalMatch::Direct)) => allowed(Some(at)),
            _ => implicit(PolicyKind::Resource),
        };
    }
    let cross_account = set.resource_account.is_some_and(|a| a != principal.account);

    if cross_account {
        // Both sides must allow: the resource's owner and the caller's own account.
        let Some((resource_at, _)) = resource_allow else {
            return implicit(PolicyKind::Resource);
        };
        let Some(identity_at) = identity_allow else {
            return implicit(PolicyKind::Identity);
        };
        if !boundary_ok {
            return implicit(PolicyKind::PermissionsBoundary);
        }
        if !session_ok {
            return implicit(PolicyKind::Session);
        }
        return allowed(identity_at.or(Some(resource_at)));
    }

    // Same account: a resource policy naming the principal itself grants on its own; one
    // naming the role still answers to the boundary and session policies; one naming only the
    // account delegates to the identity-based policies.
    match resource_allow {
        Some((at, PrincipalMatch::Direct)) => return allowed(Some(at)),
        Some((at, PrincipalMatch::Role)) if boundary_ok && session_ok => return allowed(Some(at)),
        // A role's trust policy must itself admit the caller: one that names neither the
        // caller nor its account refuses, whatever the identity-based policies say.
        None if set.resource.is_some_and(|p| p.usage == PolicyUse::Trust) => {
            return implicit(PolicyKind::Resource);
        }
        _ => {}
    }
    let Some(identity_at) = identity_allow else {
        return implicit(PolicyKind::Identity);
    };
    if !boundary_ok {
        return implicit(PolicyKind::PermissionsBoundary);
    }
    if !session_ok {
        return implicit(PolicyKind::Session);
    }
    allowed(identity_at)
}

/// Every statement that matches the request, in order (for SimulatePrincipalPolicy's
/// `MatchedStatements`).
pub fn matched_statements(set: &PolicySet<'_>, request: &Request<'_>) -> Vec<StatementRef> {
    let resource: &[&Policy] = match &set.resource {
        Some(p) => std::slice::from_ref(p),
        None => &[],
    };
    let layers: [(&[&Policy], PolicyKind); 4] = [
        (set.identity, PolicyKind::Identity),
        (resource, PolicyKind::Resource),
        (set.boundary.unwrap_or(&[]), PolicyKind::PermissionsBoundary),
        (set.session.unwrap_or(&[]), PolicyKind::Session),
    ];
    let mut out = Vec::new();
    for (policies, kind) in layers {
        for (pi, policy) in policies.iter().enumerate() {
            for (si, s) in policy.statements.iter().enumerate() {
                if statement_applies(s, request, kind == PolicyKind::Resource).is_some() {
                    out.push(StatementRef {
                        kind,
                        policy: pi,
                        statement: si,
                    });
                }
            }
        }
    }
    out
}
