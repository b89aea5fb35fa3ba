//! The AWS service models at run time: Query input decoded into JSON by the operation's input
//! shape (with the model's constraints checked, as AWS's `ValidationError` reports them), and
//! JSON output encoded as the operation's XML result. Services then work with plain serde
//! types, and every field name comes from AWS's own model.

use std::collections::HashMap;
use std::sync::OnceLock;

use http::StatusCode;
use serde_json::{Map, Value};

use crate::{ApiError, QueryParams, QueryService, XmlWriter};

#[derive(Debug)]
struct Member {
    name: String,
    shape: String,
    location_name: Option<String>,
    /// Where a REST operation carries the member: `uri`, `querystring` or `header` (absent:
    /// the JSON body).
    location: Option<String>,
}

#[derive(Debug)]
enum Shape {
    Structure {
        members: Vec<Member>,
        required: Vec<String>,
    },
    List {
        member: String,
        member_name: Option<String>,
        flattened: bool,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        min: Option<i64>,
        max: Option<i64>,
        /// The compiled pattern, and the pattern as AWS's messages quote it.
        pattern: Option<(regex::Regex, String)>,
        values: Option<Vec<String>>,
        /// A secret (`sensitive` in the model): its value is never quoted in a message.
        sensitive: bool,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A map (SNS's attributes): in Query, `<name>.entry.N.key` / `.value`; in XML,
    /// `<entry><key>…</key><value>…</value></entry>`.
    Map {
        value: String,
        key_name: String,
        value_name: String,
        flattened: bool,
    },
    Boolean,
    Timestamp,
    Other,
}

#[derive(Debug)]
struct Operation {
    input: Option<String>,
    output: Option<String>,
}

/// One service's model.
#[derive(Debug)]
pub struct Model {
    shapes: HashMap<String, Shape>,
    operations: HashMap<String, Operation>,
}

/// Cognito user pool shapes whose live service differs from the model's pattern, with the
/// pattern the service answers with: passwords may hold spaces (the model's `[\S]+` says
/// not), but neither begin nor end with one.
const COGNITO_IDP_STRICTER: &[(&str, &str)] = &[("PasswordType", r"^[\S]+.*[\S]+$")];

/// Model patterns with lookarounds (which the `regex` crate does not have), each with an
/// equivalent without them; the model's own length bounds still apply.
const WITHOUT_LOOKAROUND: &[(&str, &str)] = &[
    // IAM account aliases: no leading, trailing or doubled hyphen.
    (
        r"^[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]$",
        r"^[a-z0-9](?:-?[a-z0-9]){2,62}$",
    ),
    // Cognito S3 bucket names (log delivery): no trailing dot.
    (
        r"^[0-9A-Za-z\.\-_]*(?<!\.)$",
        r"^(?:[0-9A-Za-z.\-_]*[0-9A-Za-z\-_])?$",
    ),
];

/// A model pattern compiled to match a whole value.
fn compile(pattern: &str) -> Option<regex::Regex> {
    let pattern = WITHOUT_LOOKAROUND
        .iter()
        .find(|(model, _)| *model == pattern)
        .map_or(pattern, |(_, equivalent)| equivalent);
    regex::Regex::new(&format!("^(?:{pattern})$")).ok()
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Model {
    fn load(json: &str) -> Model {
        Model::load_with(json, &[])
    }

    /// Loads a model whose live service is stricter than it for the `stricter` shapes.
    fn load_with(json: &str, stricter: &[(&str, &str)]) -> Model {
        let root: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        let empty = Map::new();
        let shapes = root
            .get("shapes")
            .unwrap_or(&Value::Null)
            .as_object()
            .unwrap_or(&empty)
            .iter()
            .map(|(name, s)| (name.clone(), Model::shape(name, s, stricter)))
            .collect();
        let operations = root
            .get("operations")
            .unwrap_or(&Value::Null)
            .as_object()
            .unwrap_or(&empty)
            .iter()
            .map(|(name, op)| {
                let shape = |k: &str| op.get(k).and_then(|s| text(s, "shape"));
                (
                    name.clone(),
                    Operation {
                        input: shape("input"),
                        output: shape("output"),
                    },
                )
            })
            .collect();
        Model { shapes, operations }
    }

    fn shape(name: &str, s: &Value, stricter: &[(&str, &str)]) -> Shape {
        match s.get("type").unwrap_or(&Value::Null).as_str().unwrap_or("") {
            "structure" => Shape::Structure {
                members: s
                    .get("members")
                    .unwrap_or(&Value::Null)
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(name, m)| Member {
                                name: name.clone(),
                                shape: text(m, "shape").unwrap_or_default(),
                                location_name: text(m, "locationName"),
                                location: text(m, "location"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                required: s
                    .get("required")
                    .unwrap_or(&Value::Null)
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "list" => Shape::List {
                member: text(s.get("member").unwrap_or(&Value::Null), "shape").unwrap_or_default(),
                member_name: text(s.get("member").unwrap_or(&Value::Null), "locationName"),
                flattened: s
                    .get("flattened")
                    .unwrap_or(&Value::Null)
                    .as_bool()
                    .unwrap_or(false),
                min: int(s, "min"),
                max: int(s, "max"),
            },
            "string" => Shape::String {
                sensitive: s.get("sensitive").and_then(Value::as_bool) == Some(true),
                min: int(s, "min"),
                max: int(s, "max"),
                // Matched whole, as the live services match them (Smithy leaves patterns
                // unanchored, but IAM and Cognito refuse `bad name` for `[\w+=,.@-]+` and
                // `[\p{L}…]+`); the shapes where a service is laxer or stricter than its
                // model carry the service's own pattern. Java-style `\uXXXX` escapes are valid
                // Rust regex syntax too.
                pattern: stricter
                    .iter()
                    .find(|(shape, _)| *shape == name)
                    .map(|(_, p)| (*p).to_owned())
                    .or_else(|| text(s, "pattern"))
                    .and_then(|p| Some((compile(&p)?, p))),
                values: s.get("enum").unwrap_or(&Value::Null).as_array().map(|e| {
                    e.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                }),
            },
            "integer" | "long" => Shape::Integer {
                min: int(s, "min"),
                max: int(s, "max"),
            },
            "map" => {
                let key = s.get("key").unwrap_or(&Value::Null);
                let value = s.get("value").unwrap_or(&Value::Null);
                Shape::Map {
                    value: text(value, "shape").unwrap_or_default(),
                    key_name: text(key, "locationName").unwrap_or_else(|| "key".to_owned()),
                    value_name: text(value, "locationName").unwrap_or_else(|| "value".to_owned()),
                    flattened: s.get("flattened").and_then(Value::as_bool) == Some(true),
                }
            }
            "boolean" => Shape::Boolean,
            "timestamp" => Shape::Timestamp,
            _ => Shape::Other,
        }
    }

    /// The model of a Query service (parsed once, on first use).
    pub fn query(service: QueryService) -> &'static Model {
        static STS: OnceLock<Model> = OnceLock::new();
        static IAM: OnceLock<Model> = OnceLock::new();
        static SNS: OnceLock<Model> = OnceLock::new();
        match service {
            QueryService::Sns => {
                SNS.get_or_init(|| Model::load(include_str!(concat!(env!("OUT_DIR"), "/sns.json"))))
            }
            QueryService::Sts => {
                STS.get_or_init(|| Model::load(include_str!(concat!(env!("OUT_DIR"), "/sts.json"))))
            }
            QueryService::Iam => {
                IAM.get_or_init(|| Model::load(include_str!(concat!(env!("OUT_DIR"), "/iam.json"))))
            }
        }
    }

    /// The AWS Organizations model (JSON 1.1).
    pub fn organizations() -> &'static Model {
        static ORGANIZATIONS: OnceLock<Model> = OnceLock::new();
        ORGANIZATIONS.get_or_init(|| {
            Model::load(include_str!(concat!(
                env!("OUT_DIR"),
                "/organizations.json"
            )))
        })
    }

    /// The Cognito user pools model (JSON 1.1).
    pub fn cognito_idp() -> &'static Model {
        static COGNITO_IDP: OnceLock<Model> = OnceLock::new();
        COGNITO_IDP.get_or_init(|| {
            Model::load_with(
                include_str!(concat!(env!("OUT_DIR"), "/cognito_idp.json")),
                COGNITO_IDP_STRICTER,
            )
        })
    }

    /// The Cognito identity pools model (JSON 1.1).
    pub fn cognito_identity() -> &'static Model {
        static COGNITO_IDENTITY: OnceLock<Model> = OnceLock::new();
        COGNITO_IDENTITY.get_or_init(|| {
            Model::load(include_str!(concat!(
                env!("OUT_DIR"),
                "/cognito_identity.json"
            )))
        })
    }

    /// The Cognito Sync model (REST-JSON).
    pub fn cognito_sync() -> &'static Model {
        static COGNITO_SYNC: OnceLock<Model> = OnceLock::new();
        COGNITO_SYNC.get_or_init(|| {
            Model::load(include_str!(concat!(env!("OUT_DIR"), "/cognito_sync.json")))
        })
    }

    /// Assembles a REST-JSON operation's input, shaped like its input structure (member names
    /// as in the model): the JSON body's members, then the members the model places in the URI
    /// (`labels`, decoded), the query string and headers, each under its `locationName`.
    /// A number in the query string that does not parse is refused in `invalid`'s words.
    pub fn decode_rest(
        &self,
        operation: &str,
        labels: &[(String, String)],
        query: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        invalid: &'static str,
    ) -> Result<Value, ApiError> {
        let mut input = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match crate::decode_json::<Value>(body)? {
                Value::Object(map) => map,
                _ => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        invalid,
                        "The request body must be a JSON object",
                    ));
                }
            }
        };
        let Some(Shape::Structure { members, .. }) = self
            .operations
            .get(operation)
            .and_then(|o| o.input.as_deref())
            .and_then(|shape| self.shapes.get(shape))
        else {
            return Ok(Value::Object(input));
        };
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for m in members {
            let wire = m.location_name.as_deref().unwrap_or(&m.name);
            let raw = match m.location.as_deref() {
                None => continue,
                Some("uri") => labels
                    .iter()
                    .find(|(k, _)| k == wire)
                    .map(|(_, v)| v.clone()),
                Some("querystring") => params
                    .iter()
                    .find(|(k, _)| k == wire)
                    .map(|(_, v)| v.clone()),
                Some("header") => headers
                    .get(wire)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                Some(_) => None,
            };
            // A located member never comes from the body.
            input.remove(&m.name);
            let Some(raw) = raw else { continue };
            let value = match self.shapes.get(&m.shape) {
                Some(Shape::Integer { .. }) => match raw.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            invalid,
                            format!("{wire} must be an integer"),
                        ));
                    }
                },
                Some(Shape::Boolean) => Value::Bool(raw == "true"),
                _ => Value::String(raw),
            };
            input.insert(m.name.clone(), value);
        }
        Ok(Value::Object(input))
    }

    /// Checks JSON input against the operation's input shape: required members, lengths,
    /// ranges, patterns and enums. Returns the violations in AWS's wording.
    pub fn validate_json(&self, operation: &str, input: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(shape) = self
            .operations
            .get(operation)
            .and_then(|o| o.input.as_deref())
        {
            self.check(shape, input, "", &mut errors);
        }
        errors
    }

    fn check(&self, shape: &str, value: &Value, path: &str, errors: &mut Vec<String>) {
        match (self.shapes.get(shape), value) {
            (Some(Shape::Structure { members, required }), Value::Object(map)) => {
                for m in members {
                    let member_path = if path.is_empty() {
                        lower_first(&m.name)
                    } else {
                        format!("{path}.{}", lower_first(&m.name))
                    };
                    match map.get(&m.name).filter(|v| !v.is_null()) {
                        Some(v) => self.check(&m.shape, v, &member_path, errors),
                        None if required.contains(&m.name) => {
                            errors.push(format!("Value null at '{member_path}' failed to satisfy constraint: Member must not be null"));
                        }
                        None => {}
                    }
                }
            }
            (
                Some(Shape::List {
                    member, min, max, ..
                }),
                Value::Array(items),
            ) => {
                let n = items.len() as i64;
                if min.is_some_and(|min| n < min) || max.is_some_and(|max| n > max) {
                    errors.push(format!("Value at '{path}' failed to satisfy constraint: Member must have a length within the allowed range"));
                }
                for (i, item) in items.iter().enumerate() {
                    self.check(member, item, &format!("{path}.{}.member", i + 1), errors);
                }
            }
            (
                Some(Shape::String {
                    min,
                    max,
                    pattern,
                    values,
                    ..
                }),
                Value::String(v),
            ) => {
                let len = v.chars().count() as i64;
                if min.is_some_and(|min| len < min) || max.is_some_and(|max| len > max) {
                    errors.push(format!("Value at '{path}' failed to satisfy constraint: Member must have a length within the allowed range"));
                }
                if let Some((re, _)) = pattern
                    && len > 0
                    && !re.is_match(v)
                {
                    errors.push(format!("Value at '{path}' failed to satisfy constraint: Member must satisfy the required pattern"));
                }
                if let Some(values) = values
                    && !values.iter().any(|e| e == v)
                {
                    errors.push(format!("Value '{v}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]", values.join(", ")));
                }
            }
            (Some(Shape::Integer { min, max }), Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                if min.is_some_and(|min| n < min) || max.is_some_and(|max| n > max) {
                    errors.push(format!("Value '{n}' at '{path}' failed to satisfy constraint: Member must be within the allowed range"));
                }
            }
            (Some(Shape::Structure { .. }), _)
            | (Some(Shape::List { .. }), _)
            | (Some(Shape::String { .. }), _)
            | (Some(Shape::Integer { .. }), _) => {
                errors.push(format!("Value at '{path}' has the wrong type"));
            }
            (Some(Shape::Boolean), v) if !v.is_boolean() => {
                errors.push(format!("Value at '{path}' has the wrong type"))
            }
            _ => {}
        }
    }

    /// Decodes an operation's Query parameters into JSON shaped like its input (member names
    /// as in the model), checking required members, lengths, ranges, patterns and enums.
    pub fn decode_query(&self, operation: &str, params: &QueryParams) -> Result<Value, ApiError> {
        let Some(input) = self
            .operations
            .get(operation)
            .and_then(|o| o.input.as_deref())
        else {
            return Ok(Value::Object(Map::new()));
        };
        let mut errors = Vec::new();
        let value = self
            .decode(input, "", "", params, &mut errors)
            .unwrap_or(Value::Object(Map::new()));
        if errors.is_empty() {
            return Ok(value);
        }
        let n = errors.len();
        let plural = if n == 1 { "error" } else { "errors" };
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("{n} validation {plural} detected: {}", errors.join("; ")),
        ))
    }

    fn decode(
        &self,
        shape: &str,
        prefix: &str,
        path: &str,
        params: &QueryParams,
        errors: &mut Vec<String>,
    ) -> Option<Value> {
        match self.shapes.get(shape)? {
            Shape::Structure { members, required } => {
                let mut out = Map::new();
                for m in members {
                    let key = if prefix.is_empty() {
                        m.name.clone()
                    } else {
                        format!("{prefix}.{}", m.name)
                    };
                    let member_path = if path.is_empty() {
                        lower_first(&m.name)
                    } else {
                        format!("{path}.{}", lower_first(&m.name))
                    };
                    match self.decode(&m.shape, &key, &member_path, params, errors) {
                        Some(v) => {
                            out.insert(m.name.clone(), v);
                        }
                        None if required.contains(&m.name) => {
                            errors.push(format!("Value null at '{member_path}' failed to satisfy constraint: Member must not be null"));
                        }
                        None => {}
                    }
                }
                let present = !out.is_empty() || prefix.is_empty() || params.has_prefix(prefix);
                present.then_some(Value::Object(out))
            }
            Shape::List {
                member,
                flattened,
                min,
                max,
                ..
            } => {
                let base = if *flattened {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.member")
                };
                let mut items = Vec::new();
                for i in 1.. {
                    let key = format!("{base}.{i}");
                    if params.get(&key).is_none() && !params.has_prefix(&key) {
                        break;
                    }
                    if let Some(v) =
                        self.decode(member, &key, &format!("{path}.{i}.member"), params, errors)
                    {
                        items.push(v);
                    }
                }
                if items.is_empty() && params.get(prefix).is_none() {
                    return None;
                }
                let n = items.len() as i64;
                if let Some(min) = min
                    && n < *min
                {
                    errors.push(format!("Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"));
                }
                if let Some(max) = max
                    && n > *max
                {
                    errors.push(format!("Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"));
                }
                Some(Value::Array(items))
            }
            Shape::String {
                min,
                max,
                pattern,
                values,
                sensitive,
            } => {
                let raw = params.get(prefix)?;
                let len = raw.chars().count() as i64;
                let v = if *sensitive { "***" } else { raw };
                if let Some(min) = min
                    && len < *min
                {
                    errors.push(format!("Value '{v}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"));
                }
                if let Some(max) = max
                    && len > *max
                {
                    errors.push(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}", truncate(v)));
                }
                if let Some((re, p)) = pattern
                    && len > 0
                    && !re.is_match(raw)
                {
                    errors.push(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {p}", truncate(v)));
                }
                if let Some(values) = values
                    && !values.iter().any(|e| e == raw)
                {
                    errors.push(format!("Value '{v}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]", values.join(", ")));
                }
                Some(Value::String(raw.to_owned()))
            }
            Shape::Integer { min, max } => {
                let v = params.get(prefix)?;
                let Ok(n) = v.trim().parse::<i64>() else {
                    errors.push(format!("Value '{v}' at '{path}' failed to satisfy constraint: Member must be a number"));
                    return None;
                };
                if let Some(min) = min
                    && n < *min
                {
                    errors.push(format!("Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"));
                }
                if let Some(max) = max
                    && n > *max
                {
                    errors.push(format!("Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"));
                }
                Some(Value::from(n))
            }
            Shape::Map {
                value,
                key_name,
                value_name,
                flattened,
            } => {
                let base = if *flattened {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.entry")
                };
                let mut map = Map::new();
                for i in 1.. {
                    let entry = format!("{base}.{i}");
                    let Some(key) = params.get(&format!("{entry}.{key_name}")) else {
                        if params.has_prefix(&entry) {
                            errors.push(format!(
                                "Value null at '{path}.{i}.key' failed to satisfy constraint: Member must not be null"
                            ));
                            continue;
                        }
                        break;
                    };
                    let item = self.decode(
                        value,
                        &format!("{entry}.{value_name}"),
                        &format!("{path}.{key}"),
                        params,
                        errors,
                    );
                    map.insert(key.to_owned(), item.unwrap_or(Value::Null));
                }
                (!map.is_empty()).then_some(Value::Object(map))
            }
            Shape::Boolean => params
                .get(prefix)
                .map(|v| Value::Bool(v.eq_ignore_ascii_case("true"))),
            Shape::Timestamp | Shape::Other => {
                params.get(prefix).map(|v| Value::String(v.to_owned()))
            }
        }
    }

    /// Writes an operation's output (JSON shaped like its output shape) as its XML result.
    /// `None` for operations that return nothing.
    pub fn encode_query(&self, operation: &str, output: &Value) -> Option<String> {
        let shape = self.operations.get(operation)?.output.as_deref()?;
        let mut w = XmlWriter::new();
        self.encode_members(shape, output, &mut w);
        Some(w.finish())
    }

    fn encode_members(&self, shape: &str, value: &Value, w: &mut XmlWriter) {
        let Some(Shape::Structure { members, .. }) = self.shapes.get(shape) else {
            return;
        };
        for m in members {
            if let Some(v) = value.get(&m.name).filter(|v| !v.is_null()) {
                let name = m.location_name.as_deref().unwrap_or(&m.name);
                self.encode(&m.shape, name, v, w);
            }
        }
    }

    fn encode(&self, shape: &str, name: &str, value: &Value, w: &mut XmlWriter) {
        match self.shapes.get(shape) {
            Some(Shape::Structure { .. }) => {
                w.nest(name, |w| self.encode_members(shape, value, w));
            }
            Some(Shape::List {
                member,
                member_name,
                flattened,
                ..
            }) => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or(&[]);
                if *flattened {
                    for item in items {
                        self.encode(member, name, item, w);
                    }
                } else {
                    let item_name = member_name.as_deref().unwrap_or("member");
                    w.nest(name, |w| {
                        for item in items {
                            self.encode(member, item_name, item, w);
                        }
                    });
                }
            }
            Some(Shape::Map {
                value: value_shape,
                key_name,
                value_name,
                flattened,
            }) => {
                let Some(entries) = value.as_object() else {
                    return;
                };
                let entry = |w: &mut XmlWriter, k: &str, v: &Value| {
                    w.element(key_name, k);
                    self.encode(value_shape, value_name, v, w);
                };
                if *flattened {
                    for (k, v) in entries {
                        w.nest(name, |w| entry(w, k, v));
                    }
                } else {
                    w.nest(name, |w| {
                        for (k, v) in entries {
                            w.nest("entry", |w| entry(w, k, v));
                        }
                    });
                }
            }
            _ => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                };
                w.element(name, &text);
            }
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Long values are cut in error messages (a policy document can be 10 KB).
fn truncate(v: &str) -> String {
    if v.chars().count() > 128 {
        v.chars().take(128).collect::<String>() + "…"
    } else {
        v.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &str) -> QueryParams {
        QueryParams::parse("", pairs.as_bytes()).unwrap()
    }

    #[test]
    fn maps_decode_from_entries_and_encode_as_entries() {
        let m = Model::query(QueryService::Sns);
        let v = m
            .decode_query("CreatePlatformApplication", &params("Name=app&Platform=GCM&Attributes.entry.1.key=PlatformCredential&Attributes.entry.1.value=secret&Attributes.entry.2.key=Enabled&Attributes.entry.2.value=true"))
            .unwrap();
        assert_eq!(v["Attributes"]["PlatformCredential"], "secret");
        assert_eq!(v["Attributes"]["Enabled"], "true");
        let xml = m
            .encode_query(
                "GetEndpointAttributes",
                &serde_json::json!({"Attributes": {"Enabled": "true"}}),
            )
            .unwrap();
        assert_eq!(
            xml,
            "<Attributes><entry><key>Enabled</key><value>true</value></entry></Attributes>"
        );
    }

    #[test]
    fn decodes_nested_lists_of_structures() {
        let m = Model::query(QueryService::Iam);
        let v = m
            .decode_query("CreateUser", &params("UserName=alice&Path=/dev/&Tags.member.1.Key=team&Tags.member.1.Value=blue&Tags.member.2.Key=k&Tags.member.2.Value=v"))
            .unwrap();
        assert_eq!(v["UserName"], "alice");
        assert_eq!(v["Path"], "/dev/");
        assert_eq!(v["Tags"][1]["Key"], "k");
        assert_eq!(v["Tags"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn every_pattern_of_every_model_compiles() {
        // A pattern that does not compile would silently check nothing.
        for (name, json) in [
            ("sts", include_str!(concat!(env!("OUT_DIR"), "/sts.json"))),
            ("iam", include_str!(concat!(env!("OUT_DIR"), "/iam.json"))),
            (
                "organizations",
                include_str!(concat!(env!("OUT_DIR"), "/organizations.json")),
            ),
            (
                "cognito-idp",
                include_str!(concat!(env!("OUT_DIR"), "/cognito_idp.json")),
            ),
            (
                "cognito-identity",
                include_str!(concat!(env!("OUT_DIR"), "/cognito_identity.json")),
            ),
            (
                "cognito-sync",
                include_str!(concat!(env!("OUT_DIR"), "/cognito_sync.json")),
            ),
            ("sns", include_str!(concat!(env!("OUT_DIR"), "/sns.json"))),
        ] {
            let model: Value = serde_json::from_str(json).unwrap();
            let mut patterns = 0;
            for (shape, s) in model["shapes"].as_object().unwrap() {
                if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                    patterns += 1;
                    assert!(compile(p).is_some(), "{name} {shape}: {p}");
                }
            }
            assert!(patterns > 0, "{name} has patterns");
        }
    }

    #[test]
    fn secrets_are_never_quoted_in_validation_messages() {
        let m = Model::query(QueryService::Iam);
        let err = m
            .decode_query(
                "CreateLoginProfile",
                &params("UserName=bob&Password=s3cret%C4%80pass"),
            )
            .unwrap_err();
        assert!(err.message.contains("at 'password'"), "{}", err.message);
        assert!(!err.message.contains("s3cret"), "{}", err.message);
        assert!(err.message.contains("Value '***'"), "{}", err.message);
    }

    #[test]
    fn lookaround_patterns_keep_their_meaning() {
        let alias = compile(WITHOUT_LOOKAROUND[0].0).unwrap();
        for ok in ["abc", "my-alias", "a1-b2-c3"] {
            assert!(alias.is_match(ok), "{ok}");
        }
        for bad in ["-abc", "abc-", "a--b", "ABC", "a_b"] {
            assert!(!alias.is_match(bad), "{bad}");
        }
        let bucket = compile(WITHOUT_LOOKAROUND[1].0).unwrap();
        for ok in ["", "logs", "my.logs-1_x"] {
            assert!(bucket.is_match(ok), "{ok}");
        }
        for bad in ["logs.", "a b", "."] {
            assert!(!bucket.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn cognito_passwords_follow_the_service_not_the_model() {
        let m = Model::cognito_idp();
        let sign_up = |password: &str| {
            m.validate_json(
                "SignUp",
                &serde_json::json!({"ClientId": "c1", "Username": "alice", "Password": password}),
            )
        };
        // Spaces inside are allowed (the model's `[\S]+` says otherwise; Cognito accepts them).
        for ok in ["correct horse 1", "Passw0rd!", "a b", "tab\there"] {
            assert!(sign_up(ok).is_empty(), "{ok}: {:?}", sign_up(ok));
        }
        // Leading or trailing whitespace is refused, as the service refuses it.
        for bad in [" leading1A!", "trailing1A! ", " ", "x"] {
            let errors = sign_up(bad);
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(errors[0].contains("at 'password'"), "{errors:?}");
        }
        // Other shapes keep their whole-value patterns: a user name with a space is refused.
        let errors = m.validate_json(
            "AdminGetUser",
            &serde_json::json!({"UserPoolId": "us-east-1_abc", "Username": "bob smith"}),
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn validation_errors_name_every_violation() {
        let m = Model::query(QueryService::Iam);
        let err = m
            .decode_query("CreateUser", &params("Path=nope"))
            .unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(
            err.message.starts_with("2 validation errors detected: "),
            "{}",
            err.message
        );
        assert!(
            err.message.contains(
                "Value null at 'userName' failed to satisfy constraint: Member must not be null"
            ),
            "{}",
            err.message
        );
        assert!(err.message.contains("at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern"), "{}", err.message);
        let err = m
            .decode_query("CreateUser", &params("UserName=bad%20name"))
            .unwrap_err();
        assert!(
            err.message
                .starts_with("1 validation error detected: Value 'bad name' at 'userName'"),
            "{}",
            err.message
        );
        let err = m
            .decode_query("ListUsers", &params("MaxItems=0"))
            .unwrap_err();
        assert!(
            err.message.contains("greater than or equal to 1"),
            "{}",
            err.message
        );
    }

    #[test]
    fn encodes_lists_with_members() {
        let m = Model::query(QueryService::Iam);
        let out = serde_json::json!({
            "Users": [{"UserName": "a", "Path": "/", "UserId": "AIDA", "Arn": "arn", "CreateDate": "2026-01-01T00:00:00Z"}],
            "IsTruncated": false
        });
        let xml = m.encode_query("ListUsers", &out).unwrap();
        assert_eq!(
            xml,
            "<Users><member><Path>/</Path><UserName>a</UserName><UserId>AIDA</UserId><Arn>arn</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member></Users><IsTruncated>false</IsTruncated>"
        );
        assert_eq!(m.encode_query("DeleteUser", &Value::Null), None);
    }
}
