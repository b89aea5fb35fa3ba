//! Bucket CORS: the `CORSConfiguration` document (PutBucketCors, GetBucketCors) and how a
//! browser's request is matched against its rules, as S3 does: the first rule whose allowed
//! origins, methods and headers all admit the request applies; none means no CORS headers
//! (and a refused preflight).

use quick_xml::escape::escape;

use crate::xml::{Item, Malformed, items};

/// Most rules a configuration holds.
pub const MAX_RULES: usize = 100;

/// The methods a rule may allow.
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// One `CORSRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
}

/// A bucket's CORS configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfiguration {
    pub rules: Vec<CorsRule>,
}

/// Why a `CORSConfiguration` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsInvalid {
    /// Not XML, not this document, or a rule without an origin or a method.
    Malformed,
    /// A message for `InvalidRequest`.
    Invalid(String),
}

impl From<Malformed> for CorsInvalid {
    fn from(_: Malformed) -> Self {
        CorsInvalid::Malformed
    }
}

/// Parses and checks a `CORSConfiguration` document.
pub fn parse(body: &[u8]) -> Result<CorsConfiguration, CorsInvalid> {
    let mut rules: Vec<CorsRule> = Vec::new();
    for item in items(body)? {
        match item {
            Item::Open(p) if p == "CORSConfiguration/CORSRule" => rules.push(CorsRule::default()),
            Item::Open(p) if !p.starts_with("CORSConfiguration") => {
                return Err(CorsInvalid::Malformed);
            }
            Item::Text(p, v) => {
                let Some(field) = p.strip_prefix("CORSConfiguration/CORSRule/") else {
                    continue;
                };
                let r = rules.last_mut().ok_or(CorsInvalid::Malformed)?;
                let v = v.trim().to_owned();
                match field {
                    "ID" => r.id = Some(v),
                    "AllowedOrigin" => r.allowed_origins.push(v),
                    "AllowedMethod" => r.allowed_methods.push(v),
                    "AllowedHeader" => r.allowed_headers.push(v),
                    "ExposeHeader" => r.expose_headers.push(v),
                    "MaxAgeSeconds" => {
                        r.max_age_seconds = Some(v.parse().map_err(|_| CorsInvalid::Malformed)?)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if rules.is_empty() {
        return Err(CorsInvalid::Malformed);
    }
    if rules.len() > MAX_RULES {
        return Err(CorsInvalid::Invalid(format!(
            "The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules."
        )));
    }
    for r in &rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(CorsInvalid::Malformed);
        }
        if let Some(m) = r
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(CorsInvalid::Invalid(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        for (what, values) in [
            ("AllowedOrigin", &r.allowed_origins),
            ("AllowedHeader", &r.allowed_headers),
        ] {
            if let Some(v) = values.iter().find(|v| v.matches('*').count() > 1) {
                return Err(CorsInvalid::Invalid(format!(
                    "{what} \"{v}\" can not have more than one wildcard."
                )));
            }
        }
    }
    Ok(CorsConfiguration { rules })
}

/// `pattern` with at most one `*` (any run of characters) against `value`.
fn wildcard(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let (p, v) = if case_insensitive {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match p.split_once('*') {
        None => p == v,
        Some((head, tail)) => {
            v.len() >= head.len() + tail.len() && v.starts_with(head) && v.ends_with(tail)
        }
    }
}

impl CorsRule {
    /// Whether this rule admits a request from `origin` with `method` (for a preflight, the
    /// requested method) sending `headers` (for a preflight, the requested headers).
    pub fn admits(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard(o, origin, false))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|allowed| wildcard(allowed, h, true))
            })
    }

    /// The `Access-Control-Allow-Origin` this rule answers `origin` with: `*` when the rule
    /// allows every origin, else the origin itself.
    pub fn allow_origin<'a>(&self, origin: &'a str) -> &'a str {
        if self.allowed_origins.iter().any(|o| o == "*") {
            "*"
        } else {
            origin
        }
    }
}

impl CorsConfiguration {
    /// The first rule that admits the request, if any.
    pub fn matching(&self, origin: &str, method: &str, headers: &[&str]) -> Option<&CorsRule> {
        self.rules
            .iter()
            .find(|r| r.admits(origin, method, headers))
    }

    /// The configuration as GetBucketCors returns it (and as it is stored).
    pub fn to_xml(&self) -> String {
        let mut out = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
        );
        for r in &self.rules {
            out.push_str("<CORSRule>");
            if let Some(id) = &r.id {
                out.push_str(&format!("<ID>{}</ID>", escape(id)));
            }
            for (name, values) in [
                ("AllowedHeader", &r.allowed_headers),
                ("AllowedMethod", &r.allowed_methods),
                ("AllowedOrigin", &r.allowed_origins),
                ("ExposeHeader", &r.expose_headers),
            ] {
                for v in values {
                    out.push_str(&format!("<{name}>{}</{name}>", escape(v)));
                }
            }
            if let Some(age) = r.max_age_seconds {
                out.push_str(&format!("<MaxAgeSeconds>{age}</MaxAgeSeconds>"));
            }
            out.push_str("</CORSRule>");
        }
        out.push_str("</CORSConfiguration>");
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example of the S3 user guide's "CORS configuration" page, as boto3 sends it.
    const GUIDE: &[u8] = br#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
 <CORSRule>
   <AllowedOrigin>http://www.example1.com</AllowedOrigin>
   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>POST</AllowedMethod>
   <AllowedMethod>DELETE</AllowedMethod>
   <AllowedHeader>*</AllowedHeader>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>http://*.example2.com</AllowedOrigin>
   <AllowedMethod>GET</AllowedMethod>
   <AllowedHeader>x-amz-*</AllowedHeader>
   <ExposeHeader>x-amz-server-side-encryption</ExposeHeader>
   <MaxAgeSeconds>3000</MaxAgeSeconds>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>*</AllowedOrigin>
   <AllowedMethod>GET</AllowedMethod>
 </CORSRule>
</CORSConfiguration>"#;

    #[test]
    fn the_first_rule_that_admits_the_request_applies() {
        let c = parse(GUIDE).unwrap();
        assert_eq!(c.rules.len(), 3);
        let r = c
            .matching("http://www.example1.com", "PUT", &["content-type"])
            .unwrap();
        assert_eq!(
            r.allow_origin("http://www.example1.com"),
            "http://www.example1.com"
        );
        assert!(
            c.matching("http://www.example1.com.evil", "PUT", &[])
                .is_none()
        );
        let r = c
            .matching("http://a.example2.com", "GET", &["X-Amz-Date"])
            .unwrap();
        assert_eq!(r.max_age_seconds, Some(3000));
        // A header the second rule does not allow: the third (any origin, no headers) does
        // not allow it either.
        assert!(
            c.matching("http://a.example2.com", "GET", &["authorization"])
                .is_none()
        );
        let any = c.matching("https://elsewhere.test", "GET", &[]).unwrap();
        assert_eq!(any.allow_origin("https://elsewhere.test"), "*");
        assert!(
            c.matching("https://elsewhere.test", "DELETE", &[])
                .is_none()
        );
        // Methods are matched exactly, as browsers send them.
        assert!(c.matching("http://www.example1.com", "put", &[]).is_none());
        assert_eq!(parse(c.to_xml().as_bytes()).unwrap(), c);
    }

    #[test]
    fn bad_configurations_are_refused_as_s3_refuses_them() {
        let one = |rule: &str| {
            format!("<CORSConfiguration><CORSRule>{rule}</CORSRule></CORSConfiguration>")
        };
        assert_eq!(
            parse(
                one("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>")
                    .as_bytes()
            ),
            Err(CorsInvalid::Invalid(
                "Found unsupported HTTP method in CORS config. Unsupported method is PATCH".into()
            ))
        );
        assert_eq!(
            parse(one("<AllowedOrigin>http://*.*.test</AllowedOrigin><AllowedMethod>GET</AllowedMethod>").as_bytes()),
            Err(CorsInvalid::Invalid(
                "AllowedOrigin \"http://*.*.test\" can not have more than one wildcard.".into()
            ))
        );
        assert_eq!(
            parse(one("<AllowedMethod>GET</AllowedMethod>").as_bytes()),
            Err(CorsInvalid::Malformed)
        );
        assert_eq!(parse(b"<CORSConfiguration/>"), Err(CorsInvalid::Malformed));
        assert_eq!(
            parse(b"<Other><CORSRule/></Other>"),
            Err(CorsInvalid::Malformed)
        );
        let many = format!(
            "<CORSConfiguration>{}</CORSConfiguration>",
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>".repeat(101)
        );
        assert!(matches!(
            parse(many.as_bytes()),
            Err(CorsInvalid::Invalid(_))
        ));
    }
}
