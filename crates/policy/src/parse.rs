//! Parsing and validating policy documents, with IAM's `MalformedPolicyDocument` wording.

use serde_json::Value;

use crate::condition::{Condition, Operator, validate_value};
use crate::pattern::Pattern;
use crate::principal::PrincipalName;

/// What a policy document is for; it decides which elements it must and must not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyUse {
    /// Attached to a user, group or role (or a session or boundary): no `Principal`.
    Identity,
    /// Attached to a resource (bucket policy): `Principal` required.
    Resource,
    /// A role's trust policy: `Principal` required, no `Resource`.
    Trust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Why a document is not a valid policy; `message` is what IAM says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

fn err(message: impl Into<String>) -> ParseError {
    ParseError {
        message: message.into(),
    }
}

/// A set of patterns, or its complement (`NotAction`, `NotResource`).
#[derive(Debug, Clone)]
pub(crate) struct PatternSet {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<Pattern>,
}

/// The `Principal` / `NotPrincipal` element.
#[derive(Debug, Clone)]
pub(crate) struct PrincipalSet {
    pub(crate) negated: bool,
    pub(crate) names: Vec<PrincipalName>,
}

/// One statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub(crate) principal: Option<PrincipalSet>,
    pub(crate) actions: PatternSet,
    pub(crate) resources: Option<PatternSet>,
    pub(crate) conditions: Vec<Condition>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: Option<String>,
    /// `2012-10-17` (policy variables) or `2008-10-17` (no variables; also the default).
    pub version: String,
    pub statements: Vec<Statement>,
    /// What the document was validated for; a role's trust policy is evaluated by its own rule.
    pub usage: PolicyUse,
}

impl Policy {
    /// The context keys the policy refers to (condition keys, and policy variables without a
    /// default), each once, as first written: what a simulation reports as missing when the
    /// caller supplies no value for them.
    pub fn context_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        let mut add = |k: &str| {
            if !keys.iter().any(|seen| seen.eq_ignore_ascii_case(k)) {
                keys.push(k.to_owned());
            }
        };
        for s in &self.statements {
            let resources = s.resources.iter().flat_map(|r| r.patterns.iter());
            for pattern in resources.chain(s.conditions.iter().flat_map(|c| c.values.iter())) {
                pattern.required_keys().for_each(&mut add);
            }
            for c in &s.conditions {
                add(&c.name);
            }
        }
        keys
    }
}

/// The length IAM counts toward a policy's size quota: every character but whitespace.
pub fn significant_len(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

fn strings(value: &Value, element: &str) -> Result<Vec<String>, ParseError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(err(format!(
            "Syntax errors in policy: {element} must be a string or a list of strings."
        ))),
    };
    match value {
        Value::Array(items) if items.is_empty() => Err(err(format!(
            "Syntax errors in policy: {element} must not be empty."
        ))),
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

/// Condition values may be strings, numbers or booleans; IAM compares their text.
fn condition_values(value: &Value) -> Result<Vec<String>, ParseError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(err(
            "Syntax errors in policy: condition values must be strings, numbers or booleans.",
        )),
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

impl Policy {
    /// Parses and validates a policy document for the given use.
    pub fn parse(document: &str, usage: PolicyUse) -> Result<Policy, ParseError> {
        let value: Value =
            serde_json::from_str(document).map_err(|_| err("Syntax errors in policy."))?;
        let Value::Object(doc) = value else {
            return Err(err("Syntax errors in policy."));
        };
        let mut version = "2008-10-17".to_owned();
        let mut id = None;
        let mut statements = None;
        for (key, value) in &doc {
            match (key.as_str(), value) {
                ("Version", Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {
                    version = v.clone()
                }
                ("Version", _) => return Err(err("The policy failed legacy parsing")),
                ("Id", Value::String(v)) => id = Some(v.clone()),
                ("Statement", Value::Array(items)) => statements = Some(items.clone()),
                ("Statement", Value::Object(_)) => statements = Some(vec![value.clone()]),
                _ => return Err(err("Syntax errors in policy.")),
            }
        }
        let variables = version == "2012-10-17";
        let statements = statements.ok_or_else(|| err("Syntax errors in policy."))?;
        if statements.is_empty() {
            return Err(err("Syntax errors in policy."));
        }
        let statements = statements
            .iter()
            .map(|s| parse_statement(s, usage, variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            id,
            version,
            statements,
            usage,
        })
    }
}

fn parse_statement(
    value: &Value,
    usage: PolicyUse,
    variables: bool,
) -> Result<Statement, ParseError> {
    let Value::Object(s) = value else {
        return Err(err("Syntax errors in policy."));
    };
    let mut sid = None;
    let mut effect = None;
    let mut principal = None;
    let mut actions = None;
    let mut resources = None;
    let mut conditions = Vec::new();
    for (key, value) in s {
        match key.as_str() {
            "Sid" => match value {
                Value::String(v) => sid = Some(v.clone()),
                _ => return Err(err("Syntax errors in policy.")),
            },
            "Effect" => {
                effect = Some(match value.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return Err(err("Syntax errors in policy.")),
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(err("Syntax errors in policy."));
                }
                principal = Some(PrincipalSet {
                    negated: key == "NotPrincipal",
                    names: parse_principal(value)?,
                });
            }
            "Action" | "NotAction" => {
                if actions.is_some() {
                    return Err(err("Syntax errors in policy."));
                }
                let patterns = strings(value, key)?
                    .iter()
                    .map(|a| parse_action(a))
                    .collect::<Result<Vec<_>, _>>()?;
                actions = Some(PatternSet {
                    negated: key == "NotAction",
                    patterns,
                });
            }
            "Resource" | "NotResource" => {
                if resources.is_some() {
                    return Err(err("Syntax errors in policy."));
                }
                let patterns = strings(value, key)?
                    .iter()
                    .map(|r| parse_resource(r, variables))
                    .collect::<Result<Vec<_>, _>>()?;
                resources = Some(PatternSet {
                    negated: key == "NotResource",
                    patterns,
                });
            }
            "Condition" => conditions = parse_conditions(value, variables)?,
            _ => return Err(err("Syntax errors in policy.")),
        }
    }
    let effect = effect.ok_or_else(|| err("Syntax errors in policy."))?;
    let actions = actions.ok_or_else(|| err("Policy statement must contain actions."))?;
    match usage {
        PolicyUse::Identity if principal.is_some() => {
            return Err(err("Policy document should not specify a principal."));
        }
        PolicyUse::Resource | PolicyUse::Trust if principal.is_none() => {
            return Err(err("Missing required field Principal"));
        }
        _ => {}
    }
    match usage {
        PolicyUse::Identity | PolicyUse::Resource if resources.is_none() => {
            return Err(err("Policy statement must contain resources."));
        }
        PolicyUse::Trust if resources.is_some() => {
            return Err(err("Has prohibited field Resource"));
        }
        _ => {}
    }
    Ok(Statement {
        sid,
        effect,
        principal,
        actions,
        resources,
        conditions,
    })
}

fn parse_action(action: &str) -> Result<Pattern, ParseError> {
    if action != "*" {
        let (vendor, name) = action.split_once(':').unwrap_or(("", ""));
        if vendor.is_empty()
            || name.is_empty()
            || !vendor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(err(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ));
        }
    }
    Pattern::compile(action, false, true).map_err(err)
}

fn parse_resource(resource: &str, variables: bool) -> Result<Pattern, ParseError> {
    if resource != "*" && !resource.starts_with("arn:") {
        return Err(err(format!(
            "Resource {resource} must be in ARN format or \"*\"."
        )));
    }
    Pattern::compile(resource, variables, false).map_err(err)
}

fn parse_principal(value: &Value) -> Result<Vec<PrincipalName>, ParseError> {
    let invalid = |detail: &str| err(format!("Invalid principal in policy: {detail}"));
    match value {
        Value::String(s) if s == "*" => Ok(vec![PrincipalName::Everyone]),
        Value::Object(map) => {
            let mut names = Vec::new();
            for (kind, ids) in map {
                for id in strings(ids, "Principal")? {
                    let name = match kind.as_str() {
                        "AWS" => PrincipalName::aws(&id)
                            .ok_or_else(|| invalid(&format!("\"AWS\":\"{id}\"")))?,
                        "Federated" => PrincipalName::Federated(id),
                        "Service" => PrincipalName::Service(id),
                        "CanonicalUser" => PrincipalName::CanonicalUser(id),
                        other => return Err(invalid(&format!("\"{other}\""))),
                    };
                    names.push(name);
                }
            }
            if names.is_empty() {
                return Err(invalid("empty principal"));
            }
            Ok(names)
        }
        _ => Err(err("Syntax errors in policy.")),
    }
}

fn parse_conditions(value: &Value, variables: bool) -> Result<Vec<Condition>, ParseError> {
    let Value::Object(ops) = value else {
        return Err(err("Syntax errors in policy."));
    };
    let mut out = Vec::new();
    for (op_name, block) in ops {
        let operator = Operator::parse(op_name)
            .ok_or_else(|| err(format!("Invalid Condition type : {op_name}.")))?;
        let Value::Object(keys) = block else {
            return Err(err("Syntax errors in policy."));
        };
        for (key, values) in keys {
            if !key.contains(':') {
                return Err(err(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                ));
            }
            let texts = condition_values(values)?;
            let mut patterns = Vec::with_capacity(texts.len());
            for text in &texts {
                validate_value(&operator, text).map_err(err)?;
                patterns.push(Pattern::compile(text, variables, false).map_err(err)?);
            }
            out.push(Condition {
                operator,
                key: key.to_ascii_lowercase(),
                name: key.clone(),
                values: patterns,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str, usage: PolicyUse) -> Result<Policy, String> {
        Policy::parse(doc, usage).map_err(|e| e.message)
    }

    #[test]
    fn statement_may_be_object_or_array() {
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        let many = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["*"]}]}"#;
        assert_eq!(parse(one, PolicyUse::Identity).unwrap().statements.len(), 1);
        assert_eq!(
            parse(many, PolicyUse::Identity).unwrap().statements.len(),
            1
        );
    }

    #[test]
    fn iam_wording_for_malformed_documents() {
        let cases = [
            ("not json", "Syntax errors in policy."),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "Policy statement must contain actions.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
                "Policy statement must contain resources.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
                "Policy document should not specify a principal.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Permit","Action":"s3:*","Resource":"*"}]}"#,
                "Syntax errors in policy.",
            ),
            (
                r#"{"Version":"2013-01-01","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
                "The policy failed legacy parsing",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}]}"#,
                "Invalid Condition type : StringEqualz.",
            ),
        ];
        for (doc, message) in cases {
            assert_eq!(
                parse(doc, PolicyUse::Identity).unwrap_err(),
                message,
                "{doc}"
            );
        }
    }

    #[test]
    fn resource_and_trust_policies_need_principals() {
        let no_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        assert_eq!(
            parse(no_principal, PolicyUse::Resource).unwrap_err(),
            "Missing required field Principal"
        );
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}"#;
        assert!(parse(trust, PolicyUse::Trust).is_ok());
        let bad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"sts:AssumeRole"}]}"#;
        assert!(
            parse(bad, PolicyUse::Trust)
                .unwrap_err()
                .starts_with("Invalid principal in policy")
        );
    }

    #[test]
    fn context_keys_are_listed_once_as_written() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*",
             "Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1","AWS:USERNAME":"x"}}},
            {"Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::b/${aws:PrincipalTag/team, 'none'}",
             "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let keys = parse(doc, PolicyUse::Identity).unwrap().context_keys();
        assert_eq!(
            keys,
            ["aws:username", "aws:RequestedRegion", "aws:SourceIp"]
        );
    }

    #[test]
    fn whitespace_does_not_count_toward_size() {
        assert_eq!(significant_len("{ \"a\" :\n\t1 }"), 7);
    }
}
