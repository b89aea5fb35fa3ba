//! The user pool's attribute schema: which attributes exist (the standard ones and the pool's
//! `custom:` / `dev:` ones), their types, limits and mutability, which ones an app client may
//! write, and the claims Cognito owns, which no request may set.

use cognate_protocol::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{err, invalid};

/// The standard attributes a user may have, besides `sub` and the two verification flags.
const STANDARD: &[&str] = &[
    "address",
    "birthdate",
    "email",
    "family_name",
    "gender",
    "given_name",
    "locale",
    "middle_name",
    "name",
    "nickname",
    "phone_number",
    "picture",
    "preferred_username",
    "profile",
    "updated_at",
    "website",
    "zoneinfo",
];

/// Built-in flags: only administrators, or clients given them explicitly, set them.
const VERIFIED_FLAGS: &[&str] = &["email_verified", "phone_number_verified"];

/// Most custom attributes a pool may have, and the longest custom name.
const MAX_CUSTOM: usize = 50;
const MAX_CUSTOM_NAME: usize = 20;
/// The longest value of any attribute without a tighter `MaxLength`.
const MAX_VALUE_LEN: usize = 2048;

/// Whether a claim is Cognito's own: written by Cognate when it issues a token, never taken
/// from a request or a stored attribute.
pub(crate) fn is_owned_claim(name: &str) -> bool {
    name == "sub" || name == "identities" || name.starts_with("cognito:")
}

/// One attribute of a pool's schema, as `SchemaAttributeType` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SchemaAttribute {
    /// The full name: `email`, `custom:dept`, `dev:legacy_id`.
    pub name: String,
    pub data_type: String,
    #[serde(default)]
    pub developer_only: bool,
    pub mutable: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<String>,
}

impl SchemaAttribute {
    fn standard(name: &str) -> Option<SchemaAttribute> {
        let string = |name: &str, mutable: bool, required: bool, min: &str| SchemaAttribute {
            name: name.to_owned(),
            data_type: "String".into(),
            developer_only: false,
            mutable,
            required,
            min_length: Some(min.into()),
            max_length: Some(MAX_VALUE_LEN.to_string()),
            min_value: None,
            max_value: None,
        };
        Some(match name {
            "sub" => string(name, false, true, "1"),
            "updated_at" => SchemaAttribute {
                data_type: "Number".into(),
                min_length: None,
                max_length: None,
                min_value: Some("0".into()),
                ..string(name, true, false, "0")
            },
            n if VERIFIED_FLAGS.contains(&n) => SchemaAttribute {
                data_type: "Boolean".into(),
                min_length: None,
                max_length: None,
                ..string(name, true, false, "0")
            },
            n if STANDARD.contains(&n) => string(name, true, false, "0"),
            _ => return None,
        })
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "Name": self.name,
            "AttributeDataType": self.data_type,
            "DeveloperOnlyAttribute": self.developer_only,
            "Mutable": self.mutable,
            "Required": self.required,
        });
        if let Some(o) = out.as_object_mut() {
            if self.min_length.is_some() || self.max_length.is_some() {
                let mut c = serde_json::Map::new();
                if let Some(v) = &self.min_length {
                    c.insert("MinLength".into(), json!(v));
                }
                if let Some(v) = &self.max_length {
                    c.insert("MaxLength".into(), json!(v));
                }
                o.insert("StringAttributeConstraints".into(), Value::Object(c));
            }
            if self.min_value.is_some() || self.max_value.is_some() {
                let mut c = serde_json::Map::new();
                if let Some(v) = &self.min_value {
                    c.insert("MinValue".into(), json!(v));
                }
                if let Some(v) = &self.max_value {
                    c.insert("MaxValue".into(), json!(v));
                }
                o.insert("NumberAttributeConstraints".into(), Value::Object(c));
            }
        }
        out
    }

    /// Why `value` does not fit this attribute, if it does not.
    fn check_value(&self, value: &str) -> Option<String> {
        let len = value.chars().count();
        let bound = |b: &Option<String>| b.as_deref().and_then(|v| v.parse::<f64>().ok());
        let max_len = bound(&self.max_length).unwrap_or(MAX_VALUE_LEN as f64);
        if len as f64 > max_len.min(MAX_VALUE_LEN as f64) {
            return Some(format!(
                "String must be no longer than {max_len} characters"
            ));
        }
        if self.data_type == "String"
            && let Some(min) = bound(&self.min_length)
            && (len as f64) < min
            && len > 0
        {
            return Some(format!("String must be at least {min} characters"));
        }
        match self.data_type.as_str() {
            "Number" => {
                let Some(n) = value.parse::<f64>().ok().filter(|n| n.is_finite()) else {
                    return Some("Number is not valid".into());
                };
                if bound(&self.min_value).is_some_and(|min| n < min)
                    || bound(&self.max_value).is_some_and(|max| n > max)
                {
                    return Some("Number is out of the attribute's range".into());
                }
                None
            }
            "Boolean" if value != "true" && value != "false" => {
                Some("Boolean must be true or false".into())
            }
            _ => None,
        }
    }
}

/// A pool's schema: the standard attributes (with the pool's choices of which are required)
/// and its custom ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Schema {
    /// Standard attributes the pool requires.
    #[serde(default)]
    pub required: Vec<String>,
    /// `custom:` and `dev:` attributes, in the order they were added.
    #[serde(default)]
    pub custom: Vec<SchemaAttribute>,
}

/// Who is writing attributes, which decides what they may write.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Writer<'a> {
    /// An administrative (IAM-signed) call: any attribute of the schema.
    Admin,
    /// An app client: its `WriteAttributes`, or by default the standard attributes.
    Client(Option<&'a [String]>),
}

/// When the writing happens: creating the user may set immutable attributes, nothing later
/// may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// SignUp: Cognito's messages begin "Attributes did not conform to the schema: ".
    SignUp,
    /// AdminCreateUser.
    Create,
    /// Every later change: messages name the attribute as `user.<name>`.
    Update,
}

impl Schema {
    /// The schema attribute of `name`, if the pool has one.
    pub(crate) fn attribute(&self, name: &str) -> Option<SchemaAttribute> {
        if let Some(mut standard) = SchemaAttribute::standard(name) {
            standard.required |= self.required.iter().any(|r| r == name);
            return Some(standard);
        }
        self.custom.iter().find(|a| a.name == name).cloned()
    }

    /// The full schema as DescribeUserPool's `SchemaAttributes` lists it.
    pub(crate) fn to_json(&self) -> Value {
        let mut all: Vec<Value> = ["sub"]
            .iter()
            .chain(STANDARD.iter())
            .chain(VERIFIED_FLAGS.iter())
            .filter_map(|n| self.attribute(n))
            .map(|a| a.to_json())
            .collect();
        all.extend(self.custom.iter().map(SchemaAttribute::to_json));
        Value::Array(all)
    }

    /// Adds the attributes of a CreateUserPool `Schema` or an AddCustomAttributes call.
    /// `standard_allowed` is false for AddCustomAttributes, whose names are always custom.
    pub(crate) fn add(&mut self, items: &[Value], standard_allowed: bool) -> Result<(), ApiError> {
        for item in items {
            let text = |k: &str| item.get(k).and_then(Value::as_str);
            let flag =
                |k: &str, default: bool| item.get(k).and_then(Value::as_bool).unwrap_or(default);
            let name = text("Name").unwrap_or("");
            if name.is_empty() {
                return Err(invalid("Attribute name is required."));
            }
            let string_c = item.get("StringAttributeConstraints");
            let number_c = item.get("NumberAttributeConstraints");
            let bound = |c: Option<&Value>, k: &str| {
                c.and_then(|c| c.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if standard_allowed && SchemaAttribute::standard(name).is_some() {
                if name == "sub" {
                    continue;
                }
                if flag("Required", false) && !self.required.iter().any(|r| r == name) {
                    self.required.push(name.to_owned());
                }
                continue;
            }
            if name.chars().count() > MAX_CUSTOM_NAME {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length less than or equal to {MAX_CUSTOM_NAME}"
                )));
            }
            if flag("Required", false) {
                return Err(invalid(
                    "Required custom attributes are not supported currently.",
                ));
            }
            let developer_only = flag("DeveloperOnlyAttribute", false);
            let full = if developer_only {
                format!("dev:{name}")
            } else {
                format!("custom:{name}")
            };
            if self.custom.iter().any(|a| a.name == full) {
                return Err(invalid(format!(
                    "{full}: Existing attribute already has name {full}."
                )));
            }
            if self.custom.len() >= MAX_CUSTOM {
                return Err(err(
                    "LimitExceededException",
                    format!("A user pool can have at most {MAX_CUSTOM} custom attributes."),
                ));
            }
            let data_type = text("AttributeDataType").unwrap_or("String").to_owned();
            if !matches!(
                data_type.as_str(),
                "String" | "Number" | "DateTime" | "Boolean"
            ) {
                return Err(invalid(format!(
                    "Invalid AttributeDataType input for {name}: {data_type}"
                )));
            }
            for value in [
                bound(string_c, "MinLength"),
                bound(string_c, "MaxLength"),
                bound(number_c, "MinValue"),
                bound(number_c, "MaxValue"),
            ]
            .into_iter()
            .flatten()
            {
                if value.parse::<f64>().is_err() {
                    return Err(invalid(format!(
                        "Invalid attribute constraint for {name}: {value}"
                    )));
                }
            }
            let is_string = data_type == "String";
            let is_number = data_type == "Number";
            self.custom.push(SchemaAttribute {
                name: full,
                developer_only,
                mutable: flag("Mutable", true),
                required: false,
                min_length: bound(string_c, "MinLength").filter(|_| is_string),
                max_length: bound(string_c, "MaxLength").filter(|_| is_string),
                min_value: bound(number_c, "MinValue").filter(|_| is_number),
                max_value: bound(number_c, "MaxValue").filter(|_| is_number),
                data_type,
            });
        }
        Ok(())
    }

    /// Checks attribute writes against the schema, the writer's permissions and mutability.
    /// `existing` is the user's current attributes (empty when creating).
    pub(crate) fn check_writes(
        &self,
        changes: &[(String, String)],
        existing: &[(String, String)],
        writer: Writer<'_>,
        when: When,
    ) -> Result<(), ApiError> {
        let prefix = if when == When::Update { "user." } else { "" };
        let mut problems = Vec::new();
        for (name, value) in changes {
            let Some(schema) = self
                .attribute(name)
                .filter(|_| !is_owned_claim(name) || name == "sub")
            else {
                problems.push(format!(
                    "{prefix}{name}: Attribute does not exist in the schema."
                ));
                continue;
            };
            if name == "sub" {
                problems.push(format!("{prefix}sub: Attribute cannot be updated."));
                continue;
            }
            if let Writer::Client(permitted) = writer {
                let allowed = match permitted {
                    Some(list) => list.iter().any(|p| p == name),
                    // By default a client writes the standard attributes (and any the pool
                    // requires), never custom attributes.
                    None => STANDARD.contains(&name.as_str()),
                } || schema.required;
                // The verification flags are Cognito's to set (on a code, or by an
                // administrator), whatever a client's WriteAttributes says.
                if !allowed || schema.developer_only || VERIFIED_FLAGS.contains(&name.as_str()) {
                    return Err(err(
                        "NotAuthorizedException",
                        "A client attempted to write unauthorized attribute",
                    ));
                }
            }
            let had = existing.iter().any(|(n, _)| n == name);
            if when == When::Update && !schema.mutable && had {
                problems.push(format!("{prefix}{name}: Attribute cannot be updated."));
                continue;
            }
            if value.is_empty() {
                if schema.required && when == When::Update {
                    problems.push(format!(
                        "{prefix}{name}: Required attribute cannot be deleted."
                    ));
                }
                continue;
            }
            if let Some(why) = schema.check_value(value) {
                problems.push(format!("{prefix}{name}: {why}."));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let mut message = String::new();
        if when == When::SignUp || when == When::Create {
            message.push_str("Attributes did not conform to the schema: ");
        }
        for p in problems {
            message.push_str(&p);
            message.push('\n');
        }
        Err(invalid(message.trim_end().to_owned()))
    }

    /// The required attributes `attributes` lacks.
    pub(crate) fn missing_required(&self, attributes: &[(String, String)]) -> Vec<String> {
        self.required
            .iter()
            .filter(|r| !attributes.iter().any(|(n, v)| n == *r && !v.is_empty()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let mut s = Schema::default();
        s.add(
            &[
                json!({"Name": "email", "Required": true}),
                json!({"Name": "dept", "AttributeDataType": "String",
                       "StringAttributeConstraints": {"MaxLength": "8"}}),
                json!({"Name": "level", "AttributeDataType": "Number", "Mutable": false,
                       "NumberAttributeConstraints": {"MinValue": "1", "MaxValue": "9"}}),
            ],
            true,
        )
        .unwrap();
        s
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn owned_claims_and_unknown_attributes_never_pass() {
        let s = schema();
        for name in [
            "sub",
            "cognito:groups",
            "cognito:preferred_role",
            "identities",
            "custom:nope",
        ] {
            let e = s
                .check_writes(&pairs(&[(name, "x")]), &[], Writer::Admin, When::Update)
                .unwrap_err();
            assert_eq!(e.code, "InvalidParameterException", "{name}");
        }
    }

    #[test]
    fn clients_write_only_what_they_are_allowed() {
        let s = schema();
        let default = Writer::Client(None);
        s.check_writes(&pairs(&[("name", "Al")]), &[], default, When::Update)
            .unwrap();
        for name in ["email_verified", "custom:dept"] {
            let e = s
                .check_writes(&pairs(&[(name, "true")]), &[], default, When::Update)
                .unwrap_err();
            assert_eq!(e.code, "NotAuthorizedException", "{name}");
        }
        let listed = ["custom:dept".to_owned()];
        s.check_writes(
            &pairs(&[("custom:dept", "ops")]),
            &[],
            Writer::Client(Some(&listed)),
            When::Update,
        )
        .unwrap();
        assert!(
            s.check_writes(
                &pairs(&[("name", "Al")]),
                &[],
                Writer::Client(Some(&listed)),
                When::Update
            )
            .is_err()
        );
        // Required attributes are always writable.
        s.check_writes(
            &pairs(&[("email", "a@b.c")]),
            &[],
            Writer::Client(Some(&listed)),
            When::Update,
        )
        .unwrap();
    }

    #[test]
    fn types_limits_and_mutability_hold() {
        let s = schema();
        let bad = |items: &[(&str, &str)], when| {
            s.check_writes(
                &pairs(items),
                &pairs(&[("custom:level", "3")]),
                Writer::Admin,
                when,
            )
            .unwrap_err()
            .message
        };
        assert!(bad(&[("custom:dept", "much-too-long")], When::Update).contains("custom:dept"));
        assert!(bad(&[("custom:level", "10")], When::Create).contains("custom:level"));
        assert!(bad(&[("custom:level", "x")], When::Create).contains("custom:level"));
        assert!(bad(&[("custom:level", "4")], When::Update).contains("cannot be updated"));
        assert!(
            bad(&[("email", "")], When::Update).contains("Required attribute cannot be deleted")
        );
        s.check_writes(
            &pairs(&[("custom:level", "4")]),
            &[],
            Writer::Admin,
            When::Create,
        )
        .unwrap();
        assert_eq!(s.missing_required(&pairs(&[("name", "x")])), vec!["email"]);
    }

    #[test]
    fn custom_attributes_are_added_once_and_bounded() {
        let mut s = schema();
        let e = s.add(&[json!({"Name": "dept"})], false).unwrap_err();
        assert_eq!(
            e.message,
            "custom:dept: Existing attribute already has name custom:dept."
        );
        let e = s
            .add(&[json!({"Name": "x", "Required": true})], false)
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        let names: Vec<String> = s
            .to_json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["Name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.contains(&"sub".to_owned()) && names.contains(&"custom:level".to_owned()));
    }
}
