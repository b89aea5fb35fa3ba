//! Which service and protocol a request speaks, decided from its headers, path and signature
//! scope alone (DESIGN.md's routing table), before any body is read.

use crate::services;

/// The four AWS wire protocols Cognate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.1 (`X-Amz-Target`).
    Json,
    /// AWS Query: form parameters in, XML out.
    Query,
    /// REST-JSON (Cognito Sync).
    RestJson,
    /// REST-XML (S3).
    RestXml,
}

/// Services spoken over JSON 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonService {
    CognitoIdp,
    CognitoIdentity,
    Organizations,
}

impl JsonService {
    pub fn signing_name(self) -> &'static str {
        match self {
            JsonService::CognitoIdp => services::cognito_idp::SIGNING_NAME,
            JsonService::CognitoIdentity => services::cognito_identity::SIGNING_NAME,
            JsonService::Organizations => services::organizations::SIGNING_NAME,
        }
    }
}

/// Services spoken over the Query protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryService {
    Sts,
    Iam,
    Sns,
}

impl QueryService {
    /// The service a signature scope names.
    pub fn from_signing_name(name: &str) -> Option<Self> {
        match name {
            services::sts::SIGNING_NAME => Some(QueryService::Sts),
            services::iam::SIGNING_NAME => Some(QueryService::Iam),
            services::sns::SIGNING_NAME => Some(QueryService::Sns),
            _ => None,
        }
    }

    /// The service whose API version this is.
    pub fn from_version(version: &str) -> Option<Self> {
        match version {
            services::sts::API_VERSION => Some(QueryService::Sts),
            services::iam::API_VERSION => Some(QueryService::Iam),
            services::sns::API_VERSION => Some(QueryService::Sns),
            _ => None,
        }
    }

    pub fn signing_name(self) -> &'static str {
        match self {
            QueryService::Sts => services::sts::SIGNING_NAME,
            QueryService::Iam => services::iam::SIGNING_NAME,
            QueryService::Sns => services::sns::SIGNING_NAME,
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            QueryService::Sts => services::sts::API_VERSION,
            QueryService::Iam => services::iam::API_VERSION,
            QueryService::Sns => services::sns::API_VERSION,
        }
    }

    pub fn xml_namespace(self) -> &'static str {
        match self {
            QueryService::Sts => services::sts::XML_NAMESPACE,
            QueryService::Iam => services::iam::XML_NAMESPACE,
            QueryService::Sns => services::sns::XML_NAMESPACE,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// JSON 1.1 for a service Cognate serves; `operation` is the target after the prefix.
    Json {
        service: JsonService,
        operation: String,
    },
    /// JSON 1.1 whose target names no service Cognate serves.
    UnknownTarget { target: String },
    /// Query protocol. The service is known from the signature scope; otherwise it comes from
    /// the `Version` parameter once the parameters are read.
    Query { service: Option<QueryService> },
    /// Cognito Sync (REST-JSON).
    RestJson,
    /// Everything else: S3 (REST-XML).
    S3,
}

impl Route {
    pub fn protocol(&self) -> Protocol {
        match self {
            Route::Json { .. } | Route::UnknownTarget { .. } => Protocol::Json,
            Route::Query { .. } => Protocol::Query,
            Route::RestJson => Protocol::RestJson,
            Route::S3 => Protocol::RestXml,
        }
    }
}

/// Routes a request. `signing_service` is the service in the SigV4 credential scope, when the
/// request is signed.
pub fn classify(
    method: &http::Method,
    query: &str,
    headers: &http::HeaderMap,
    signing_service: Option<&str>,
) -> Route {
    if let Some(target) = headers.get("x-amz-target") {
        let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
        return match target.split_once('.') {
            Some((services::cognito_idp::TARGET_PREFIX, op)) => Route::Json {
                service: JsonService::CognitoIdp,
                operation: op.to_owned(),
            },
            Some((services::cognito_identity::TARGET_PREFIX, op)) => Route::Json {
                service: JsonService::CognitoIdentity,
                operation: op.to_owned(),
            },
            Some((services::organizations::TARGET_PREFIX, op)) => Route::Json {
                service: JsonService::Organizations,
                operation: op.to_owned(),
            },
            _ => Route::UnknownTarget { target },
        };
    }
    match signing_service {
        Some(services::s3::SIGNING_NAME) => return Route::S3,
        Some(services::cognito_sync::SIGNING_NAME) => return Route::RestJson,
        Some(name) => {
            if let Some(service) = QueryService::from_signing_name(name) {
                return Route::Query {
                    service: Some(service),
                };
            }
        }
        None => {}
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let action_in_query = query.split('&').any(|p| p.starts_with("Action="));
    if (*method == http::Method::POST && form) || action_in_query {
        return Route::Query { service: None };
    }
    Route::S3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn json_targets_route_by_prefix() {
        let h = headers(&[(
            "x-amz-target",
            "AWSCognitoIdentityProviderService.InitiateAuth",
        )]);
        assert_eq!(
            classify(&http::Method::POST, "", &h, None),
            Route::Json {
                service: JsonService::CognitoIdp,
                operation: "InitiateAuth".into()
            }
        );
        let h = headers(&[("x-amz-target", "AWSCognitoIdentityService.GetId")]);
        assert_eq!(
            classify(&http::Method::POST, "", &h, None),
            Route::Json {
                service: JsonService::CognitoIdentity,
                operation: "GetId".into()
            }
        );
        let h = headers(&[("x-amz-target", "DynamoDB_20120810.GetItem")]);
        assert!(matches!(
            classify(&http::Method::POST, "", &h, Some("dynamodb")),
            Route::UnknownTarget { .. }
        ));
    }

    #[test]
    fn query_routes_by_scope_or_form() {
        let form = headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )]);
        assert_eq!(
            classify(&http::Method::POST, "", &form, Some("sts")),
            Route::Query {
                service: Some(QueryService::Sts)
            }
        );
        assert_eq!(
            classify(&http::Method::POST, "", &form, Some("iam")),
            Route::Query {
                service: Some(QueryService::Iam)
            }
        );
        assert_eq!(
            classify(&http::Method::POST, "", &form, None),
            Route::Query { service: None }
        );
        let none = headers(&[]);
        assert_eq!(
            classify(
                &http::Method::GET,
                "Action=GetCallerIdentity&Version=2011-06-15",
                &none,
                None
            ),
            Route::Query { service: None }
        );
    }

    #[test]
    fn everything_else_is_s3() {
        let none = headers(&[]);
        assert_eq!(classify(&http::Method::GET, "", &none, None), Route::S3);
        assert_eq!(
            classify(&http::Method::PUT, "", &none, Some("s3")),
            Route::S3
        );
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(
            classify(&http::Method::POST, "", &form, Some("s3")),
            Route::S3
        );
        assert_eq!(
            classify(&http::Method::GET, "", &none, Some("cognito-sync")),
            Route::RestJson
        );
    }

    #[test]
    fn model_metadata_is_generated() {
        assert_eq!(services::sts::API_VERSION, "2011-06-15");
        assert_eq!(
            services::iam::XML_NAMESPACE,
            "https://iam.amazonaws.com/doc/2010-05-08/"
        );
        let op = services::sts::Operation::from_name("AssumeRoleWithWebIdentity").unwrap();
        assert!(!op.requires_signature());
        assert!(services::sts::Operation::GetCallerIdentity.requires_signature());
        assert!(!services::cognito_identity::Operation::GetId.requires_signature());
        assert!(services::cognito_identity::Operation::CreateIdentityPool.requires_signature());
        assert_eq!(services::sts::Operation::from_name("assumerole"), None);
    }
}
