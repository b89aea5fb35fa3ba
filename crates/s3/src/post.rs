//! Browser uploads (POST Object): the policy document a form carries, and the checks S3
//! makes of the form against it: not expired, every condition met, and no field the policy
//! does not name. The signature over the policy is checked by the edge.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A form's policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PostPolicy {
    pub expiration: OffsetDateTime,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`.
    Eq { field: String, value: String },
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith { field: String, prefix: String },
    /// `["content-length-range", min, max]`.
    LengthRange { min: u64, max: u64 },
}

/// Why a form is refused, in S3's words (all `AccessDenied` but a malformed policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostRefusal {
    /// The policy is not a valid policy document (`InvalidPolicyDocument`).
    Malformed(String),
    /// The policy does not admit the form (`AccessDenied`).
    Denied(String),
}

/// Fields a policy need not name.
fn exempt(field: &str) -> bool {
    matches!(
        field,
        "policy" | "x-amz-signature" | "file" | "awsaccesskeyid" | "signature"
    ) || field.starts_with("x-ignore-")
}

fn field_name(v: &Value) -> Option<String> {
    v.as_str()?.strip_prefix('$').map(str::to_ascii_lowercase)
}

impl PostPolicy {
    /// Parses the decoded policy document.
    pub fn parse(json: &[u8]) -> Result<PostPolicy, PostRefusal> {
        let bad = |m: &str| PostRefusal::Malformed(format!("Invalid Policy: {m}"));
        let doc: Value = serde_json::from_slice(json).map_err(|_| bad("Invalid JSON."))?;
        let expiration = doc
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("Policy missing expiration."))?;
        let expiration = OffsetDateTime::parse(expiration, &Rfc3339)
            .map_err(|_| bad("Invalid 'expiration' value."))?;
        let list = doc
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("Policy missing conditions."))?;
        let mut conditions = Vec::with_capacity(list.len());
        for c in list {
            let condition = match c {
                Value::Object(map) if map.len() == 1 => {
                    let (field, value) =
                        map.iter().next().ok_or_else(|| bad("Invalid condition."))?;
                    Condition::Eq {
                        field: field.to_ascii_lowercase(),
                        value: value
                            .as_str()
                            .ok_or_else(|| bad("Invalid condition value."))?
                            .to_owned(),
                    }
                }
                Value::Array(items) => match items.as_slice() {
                    [op, min, max] if op.as_str() == Some("content-length-range") => {
                        Condition::LengthRange {
                            min: min
                                .as_u64()
                                .ok_or_else(|| bad("Invalid content-length-range."))?,
                            max: max
                                .as_u64()
                                .ok_or_else(|| bad("Invalid content-length-range."))?,
                        }
                    }
                    [op, field, value] => {
                        let field = field_name(field)
                            .ok_or_else(|| bad("Condition field must start with '$'."))?;
                        let value = value
                            .as_str()
                            .ok_or_else(|| bad("Invalid condition value."))?
                            .to_owned();
                        match op.as_str().map(str::to_ascii_lowercase).as_deref() {
                            Some("eq") => Condition::Eq { field, value },
                            Some("starts-with") => Condition::StartsWith {
                                field,
                                prefix: value,
                            },
                            _ => return Err(bad("Unknown condition operation.")),
                        }
                    }
                    _ => return Err(bad("Invalid condition.")),
                },
                _ => return Err(bad("Invalid condition.")),
            };
            conditions.push(condition);
        }
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// Checks a form's fields (names lower-case, `bucket` included, `key` as the object key it
    /// names) at `now` against the policy, before its file is read.
    pub fn admits(
        &self,
        fields: &[(String, String)],
        now: OffsetDateTime,
    ) -> Result<(), PostRefusal> {
        let denied = |m: String| PostRefusal::Denied(format!("Invalid according to Policy: {m}"));
        if now > self.expiration {
            return Err(denied("Policy expired.".into()));
        }
        let value = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let holds = match c {
                Condition::Eq { field, value: v } => value(field) == v,
                Condition::StartsWith { field, prefix } if field == "content-type" => value(field)
                    .split(',')
                    .all(|t| t.trim().starts_with(prefix.as_str())),
                Condition::StartsWith { field, prefix } => {
                    value(field).starts_with(prefix.as_str())
                }
                Condition::LengthRange { .. } => true,
            };
            if !holds {
                return Err(denied(format!("Policy Condition failed: {}", describe(c))));
            }
        }
        let extra: Vec<&str> = fields
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !exempt(k) && *k != "bucket")
            .filter(|k| {
                !self.conditions.iter().any(|c| match c {
                    Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field == k,
                    Condition::LengthRange { .. } => false,
                })
            })
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(())
    }

    /// The size the policy allows the file, if it bounds it.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }
}

fn describe(c: &Condition) -> String {
    match c {
        Condition::Eq { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
        Condition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
        }
        Condition::LengthRange { min, max } => format!("[\"content-length-range\", {min}, {max}]"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DOC: &str = r#"{"expiration": "2026-12-02T12:00:00.000Z", "conditions": [
        {"bucket": "uploads"}, ["starts-with", "$key", "user/"], {"acl": "private"},
        ["content-length-range", 1, 100], ["eq", "$Content-Type", "image/png"],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"}]}"#;

    #[test]
    fn a_form_the_policy_describes_is_admitted() {
        let p = PostPolicy::parse(DOC.as_bytes()).unwrap();
        let before = OffsetDateTime::parse("2026-12-02T11:00:00Z", &Rfc3339).unwrap();
        let form = fields(&[
            ("bucket", "uploads"),
            ("key", "user/a.png"),
            ("acl", "private"),
            ("content-type", "image/png"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
            ("x-ignore-me", "1"),
        ]);
        assert_eq!(p.admits(&form, before), Ok(()));
        assert_eq!(p.length_range(), Some((1, 100)));
        let after = OffsetDateTime::parse("2026-12-02T12:00:01Z", &Rfc3339).unwrap();
        assert!(
            matches!(p.admits(&form, after), Err(PostRefusal::Denied(m)) if m.ends_with("Policy expired."))
        );
        let mut elsewhere = form.clone();
        elsewhere[1].1 = "admin/a.png".into();
        assert!(
            matches!(p.admits(&elsewhere, before), Err(PostRefusal::Denied(m)) if m.contains("starts-with"))
        );
        let mut other_bucket = form.clone();
        other_bucket[0].1 = "other".into();
        assert!(p.admits(&other_bucket, before).is_err());
        let mut extra = form.clone();
        extra.push(("x-amz-meta-evil".into(), "1".into()));
        assert!(
            matches!(p.admits(&extra, before), Err(PostRefusal::Denied(m)) if m.ends_with("Extra input fields: x-amz-meta-evil"))
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        for doc in [
            "not json",
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            r#"{"expiration": "2026-12-02T12:00:00Z"}"#,
            r#"{"expiration": "2026-12-02T12:00:00Z", "conditions": [["matches", "$key", "x"]]}"#,
            r#"{"expiration": "2026-12-02T12:00:00Z", "conditions": [["eq", "key", "x"]]}"#,
            r#"{"expiration": "2026-12-02T12:00:00Z", "conditions": [{"a": "1", "b": "2"}]}"#,
            r#"{"expiration": "2026-12-02T12:00:00Z", "conditions": [["content-length-range", -1, 5]]}"#,
        ] {
            assert!(
                matches!(
                    PostPolicy::parse(doc.as_bytes()),
                    Err(PostRefusal::Malformed(_))
                ),
                "{doc}"
            );
        }
    }
}
