//! Role choice for an authenticated identity: the pool's default authenticated role, or a
//! provider's role mapping (`Token`: the user pool token's `cognito:preferred_role` /
//! `cognito:roles`; `Rules`: claim matches in order), with `AmbiguousRoleResolution`.

use std::collections::BTreeMap;

use cognate_protocol::shapes::cognito_identity as shapes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingRule {
    pub claim: String,
    pub match_type: String,
    pub value: String,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RulesConfiguration {
    pub rules: Vec<MappingRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleMapping {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambiguous_role_resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_configuration: Option<RulesConfiguration>,
}

impl From<shapes::RoleMapping> for RoleMapping {
    fn from(m: shapes::RoleMapping) -> Self {
        RoleMapping {
            kind: m.r#type,
            ambiguous_role_resolution: m.ambiguous_role_resolution,
            rules_configuration: m.rules_configuration.map(|c| RulesConfiguration {
                rules: c
                    .rules
                    .into_iter()
                    .map(|r| MappingRule {
                        claim: r.claim,
                        match_type: r.match_type,
                        value: r.value,
                        role_arn: r.role_arn,
                    })
                    .collect(),
            }),
        }
    }
}

impl From<RoleMapping> for shapes::RoleMapping {
    fn from(m: RoleMapping) -> Self {
        shapes::RoleMapping {
            r#type: m.kind,
            ambiguous_role_resolution: m.ambiguous_role_resolution,
            rules_configuration: m
                .rules_configuration
                .map(|c| shapes::RulesConfigurationType {
                    rules: c
                        .rules
                        .into_iter()
                        .map(|r| shapes::MappingRule {
                            claim: r.claim,
                            match_type: r.match_type,
                            value: r.value,
                            role_arn: r.role_arn,
                        })
                        .collect(),
                }),
        }
    }
}

/// Why no role could be chosen.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRole {
    /// The mapping was ambiguous and resolves to `Deny`.
    Denied,
    /// `CustomRoleArn` names a role the token does not grant.
    CustomRoleRefused,
    /// The pool has no role for this case.
    NotConfigured,
}

/// The values of a claim: a string, a number or boolean as text, or each string of an array.
fn claim_values(claims: &Value, name: &str) -> Option<Vec<String>> {
    match claims.get(name)? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::Bool(b) => Some(vec![b.to_string()]),
        Value::Number(n) => Some(vec![n.to_string()]),
        _ => None,
    }
}

fn rule_matches(rule: &MappingRule, claims: &Value) -> bool {
    // A rule on a claim the token lacks is not evaluated (not even `NotEqual`).
    let Some(values) = claim_values(claims, &rule.claim) else {
        return false;
    };
    let v = rule.value.as_str();
    match rule.match_type.as_str() {
        "Equals" => values.iter().any(|x| x == v),
        "Contains" => values.iter().any(|x| x.contains(v)),
        "StartsWith" => values.iter().any(|x| x.starts_with(v)),
        "NotEqual" => values.iter().all(|x| x != v),
        _ => false,
    }
}

/// Chooses the role for an authenticated login: `mapping` is the provider's role mapping if
/// the pool has one, `roles` the pool's default roles, `claims` the verified token's claims.
pub fn choose_role(
    mapping: Option<&RoleMapping>,
    roles: &BTreeMap<String, String>,
    claims: &Value,
    custom_role_arn: Option<&str>,
) -> Result<String, NoRole> {
    let default = || {
        roles
            .get("authenticated")
            .cloned()
            .ok_or(NoRole::NotConfigured)
    };
    let Some(mapping) = mapping else {
        return default();
    };
    let ambiguous = || match mapping.ambiguous_role_resolution.as_deref() {
        Some("Deny") => Err(NoRole::Denied),
        _ => default(),
    };
    match mapping.kind.as_str() {
        "Token" => {
            let granted = claim_values(claims, "cognito:roles").unwrap_or_default();
            if let Some(custom) = custom_role_arn {
                return if granted.iter().any(|r| r == custom) {
                    Ok(custom.to_owned())
                } else {
                    Err(NoRole::CustomRoleRefused)
                };
            }
            if let Some(preferred) = claims.get("cognito:preferred_role").and_then(Value::as_str) {
                return Ok(preferred.to_owned());
            }
            match granted.as_slice() {
                [only] => Ok(only.clone()),
                _ => ambiguous(),
            }
        }
        "Rules" => {
            let rules = mapping
                .rules_configuration
                .as_ref()
                .map(|c| c.rules.as_slice())
                .unwrap_or_default();
            let mut matched = rules.iter().filter(|r| rule_matches(r, claims));
            if let Some(custom) = custom_role_arn {
                // A custom role is honoured when one of the matching rules grants it.
                return if matched.any(|r| r.role_arn == custom) {
                    Ok(custom.to_owned())
                } else {
                    Err(NoRole::CustomRoleRefused)
                };
            }
            match matched.next() {
                Some(rule) => Ok(rule.role_arn.clone()),
                None => ambiguous(),
            }
        }
        _ => default(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn roles() -> BTreeMap<String, String> {
        BTreeMap::from([("authenticated".to_owned(), "arn:auth".to_owned())])
    }

    fn rules(resolution: &str, rules: Vec<(&str, &str, &str, &str)>) -> RoleMapping {
        RoleMapping {
            kind: "Rules".into(),
            ambiguous_role_resolution: Some(resolution.into()),
            rules_configuration: Some(RulesConfiguration {
                rules: rules
                    .into_iter()
                    .map(|(c, m, v, r)| MappingRule {
                        claim: c.into(),
                        match_type: m.into(),
                        value: v.into(),
                        role_arn: r.into(),
                    })
                    .collect(),
            }),
        }
    }

    #[test]
    fn without_a_mapping_the_authenticated_role() {
        assert_eq!(
            choose_role(None, &roles(), &json!({}), None),
            Ok("arn:auth".into())
        );
        assert_eq!(
            choose_role(None, &BTreeMap::new(), &json!({}), None),
            Err(NoRole::NotConfigured)
        );
    }

    #[test]
    fn rules_match_in_order_and_resolve_ambiguity() {
        let m = rules(
            "Deny",
            vec![
                ("custom:dept", "Equals", "ops", "arn:ops"),
                ("email", "Contains", "@example.com", "arn:staff"),
                ("cognito:groups", "StartsWith", "adm", "arn:admin"),
                ("tier", "NotEqual", "free", "arn:paid"),
            ],
        );
        let choose = |claims: Value| choose_role(Some(&m), &roles(), &claims, None);
        assert_eq!(
            choose(json!({"custom:dept": "ops", "email": "a@example.com"})),
            Ok("arn:ops".into())
        );
        assert_eq!(
            choose(json!({"custom:dept": "dev", "email": "a@example.com"})),
            Ok("arn:staff".into())
        );
        assert_eq!(
            choose(json!({"cognito:groups": ["users", "admins"]})),
            Ok("arn:admin".into())
        );
        assert_eq!(choose(json!({"tier": "gold"})), Ok("arn:paid".into()));
        // A missing claim is not evaluated, even by NotEqual; no match under Deny refuses.
        assert_eq!(choose(json!({"tier": "free"})), Err(NoRole::Denied));
        assert_eq!(choose(json!({})), Err(NoRole::Denied));
        let lenient = rules("AuthenticatedRole", vec![("x", "Equals", "1", "arn:x")]);
        assert_eq!(
            choose_role(Some(&lenient), &roles(), &json!({"x": 2}), None),
            Ok("arn:auth".into())
        );
        assert_eq!(
            choose_role(Some(&lenient), &roles(), &json!({"x": 1}), None),
            Ok("arn:x".into())
        );
        // A custom role must be granted by a matching rule.
        assert_eq!(
            choose_role(
                Some(&m),
                &roles(),
                &json!({"custom:dept": "ops", "email": "a@example.com"}),
                Some("arn:staff")
            ),
            Ok("arn:staff".into())
        );
        assert_eq!(
            choose_role(
                Some(&m),
                &roles(),
                &json!({"email": "a@x.org"}),
                Some("arn:ops")
            ),
            Err(NoRole::CustomRoleRefused)
        );
    }

    #[test]
    fn token_mapping_uses_the_preferred_role() {
        let m = RoleMapping {
            kind: "Token".into(),
            ambiguous_role_resolution: Some("Deny".into()),
            rules_configuration: None,
        };
        let claims =
            json!({"cognito:roles": ["arn:a", "arn:b"], "cognito:preferred_role": "arn:a"});
        assert_eq!(
            choose_role(Some(&m), &roles(), &claims, None),
            Ok("arn:a".into())
        );
        assert_eq!(
            choose_role(Some(&m), &roles(), &claims, Some("arn:b")),
            Ok("arn:b".into())
        );
        assert_eq!(
            choose_role(Some(&m), &roles(), &claims, Some("arn:c")),
            Err(NoRole::CustomRoleRefused)
        );
        // Tied groups give roles but no preferred role: ambiguous.
        let tied = json!({"cognito:roles": ["arn:a", "arn:b"]});
        assert_eq!(
            choose_role(Some(&m), &roles(), &tied, None),
            Err(NoRole::Denied)
        );
        assert_eq!(
            choose_role(Some(&m), &roles(), &json!({}), None),
            Err(NoRole::Denied)
        );
        let lenient = RoleMapping {
            ambiguous_role_resolution: Some("AuthenticatedRole".into()),
            ..m
        };
        assert_eq!(
            choose_role(Some(&lenient), &roles(), &tied, None),
            Ok("arn:auth".into())
        );
    }
}
