//! The one HTTP handler: request id, routing, body limits, authentication, dispatch to a
//! service adapter, AWS error rendering per protocol, and one log line per request.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use cognate_protocol::{
    self as protocol, ApiError, JsonService, Protocol, QueryParams, QueryService, Route, services,
};
use cognate_sigv4 as sigv4;
use http::{HeaderValue, Method, StatusCode};
use time::OffsetDateTime;

use crate::auth;
use crate::context::{Ctx, Outcome, read_body};
use crate::pipeline::{self, Payload, Wire};
use crate::services::{
    iam::IamService,
    identitypool::{self, IdentityPoolService},
    organizations::OrganizationsService,
    s3,
    sns::SnsService,
    sts::StsService,
    sync::{self, SyncService},
    userpool::{self, UserPoolService},
};
use crate::state::AppState;

/// The axum handler for every path.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: http::Request<Body>,
) -> http::Response<Body> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (mut parts, body) = req.into_parts();
    let body = Body::new(crate::listener::IdleTimeout::new(body, state.body_timeout));
    if parts.uri.path() == "/_cognate/health" && parts.method == Method::GET {
        return health(&request_id);
    }
    if parts.method == Method::GET
        && let Some((pool_id, jwks)) = userpool::discovery_path(parts.uri.path())
    {
        // Browsers' OpenID Connect and JWT libraries fetch these from the app's origin.
        let mut response = userpool::discovery(&state, pool_id, jwks).await;
        api_cors(response.headers_mut());
        return response;
    }
    if parts.method == Method::GET && parts.uri.path() == "/.well-known/jwks_uri" {
        let mut response = identitypool::jwks(&state).await;
        api_cors(response.headers_mut());
        return response;
    }
    if parts.method == Method::OPTIONS {
        return preflight(&state, &parts, &request_id).await;
    }
    let query = parts.uri.query().unwrap_or("");
    let sreq = sigv4::Request {
        method: &parts.method,
        path: parts.uri.path(),
        query,
        headers: &parts.headers,
    };
    let parsed = sigv4::parse(&sreq);
    let scope_service = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.as_ref())
        .map(|p| p.scope.service.clone());
    let route = protocol::classify(
        &parts.method,
        query,
        &parts.headers,
        scope_service.as_deref(),
    );
    let apply = parts.uri.path() == APPLY_PATH && parts.method == Method::POST;
    let live = parts.uri.path() == sync::live::LIVE_PATH && parts.method == Method::GET;
    let upgrade = if live {
        use axum::extract::FromRequestParts as _;
        axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &state)
            .await
            .ok()
    } else {
        None
    };
    let protocol = if apply {
        Protocol::Json
    } else if live {
        Protocol::RestJson
    } else {
        route.protocol()
    };
    let mut outcome = Outcome::default();
    let mut query_service = None;
    let result = match parsed {
        Err(e) => Err(auth::from_sigv4(e).to_error(protocol)),
        Ok(presented) => {
            let mut ctx = Ctx {
                state: &state,
                parts: &parts,
                presented: presented.as_ref(),
                request_id: &request_id,
                now: OffsetDateTime::now_utc(),
                source_ip: Some(peer.ip()),
                outcome: &mut outcome,
                v2_path: None,
            };
            if apply {
                apply_file(&mut ctx, body).await
            } else if live {
                sync::live::open(&mut ctx, upgrade).await
            } else {
                dispatch(&mut ctx, &route, body, &mut query_service).await
            }
        }
    };
    let mut failure = None;
    let mut response = match result {
        Ok(response) => response,
        Err(err) => {
            if err.status.is_server_error() && err.status != StatusCode::NOT_IMPLEMENTED {
                tracing::error!(request_id, code = %err.code, "request failed inside the server");
            }
            // What the client was told (never a secret: messages quote no sensitive value).
            failure = Some((err.code.to_string(), err.message.clone()));
            let namespace = query_service.unwrap_or(QueryService::Sts).xml_namespace();
            match protocol {
                Protocol::Json => protocol::render_json_error(&err),
                Protocol::Query => protocol::render_query_error(&err, namespace, &request_id),
                Protocol::RestJson => protocol::render_rest_json_error(&err),
                Protocol::RestXml => protocol::render_s3_error(&err, parts.uri.path(), &request_id),
            }
            .map(Body::from)
        }
    };
    if parts.headers.contains_key(http::header::ORIGIN) {
        match route {
            Route::S3 => s3::decorate(&state, &parts, &mut response).await,
            _ => api_cors(response.headers_mut()),
        }
    }
    let status = response.status();
    if !status.is_success() && has_body(&parts.headers) {
        // A refusal may come before the body was read (an S3 PUT refused on its headers); what
        // is left of it must not be read as the connection's next request, so the connection
        // closes after this response (RFC 9112, section 9.6).
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if expects_continue_without_body(&parts.headers) {
        // hyper answers such a request without `100 Continue` (there is no body to wait for),
        // as HTTP allows; botocore then keeps that final status for the connection's next
        // `Expect` request and misreads its response. A fresh connection avoids that.
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        if protocol == Protocol::RestXml {
            response
                .headers_mut()
                .insert("x-amz-request-id", id.clone());
        }
        response
            .headers_mut()
            .insert(protocol::REQUEST_ID_HEADER, id);
    }
    tracing::info!(
        target: "cognate::request",
        request_id,
        service = outcome.service,
        operation = %outcome.operation,
        principal = outcome.principal.as_deref().unwrap_or("-"),
        status = status.as_u16(),
        error = failure.as_ref().map_or("-", |(code, _)| code.as_str()),
        error_message = failure.as_ref().map_or("", |(_, message)| message.as_str()),
        latency_us = started.elapsed().as_micros() as u64,
    );
    response
}

async fn dispatch(
    ctx: &mut Ctx<'_>,
    route: &Route,
    body: Body,
    query_service: &mut Option<QueryService>,
) -> Result<http::Response<Body>, ApiError> {
    let response = match route {
        Route::Json { service, operation } => {
            ctx.outcome.service = service.signing_name();
            ctx.outcome.operation = operation.clone();
            let body = read_body(&ctx.parts.headers, body, protocol::MAX_BUFFERED_BODY).await?;
            let payload = Payload::Json(&body);
            match service {
                JsonService::Organizations => {
                    pipeline::run::<OrganizationsService>(ctx, operation, payload).await
                }
                JsonService::CognitoIdp => {
                    pipeline::run::<UserPoolService>(ctx, operation, payload).await
                }
                JsonService::CognitoIdentity => {
                    pipeline::run::<IdentityPoolService>(ctx, operation, payload).await
                }
            }
        }
        Route::UnknownTarget { target } => {
            ctx.outcome.operation = target.clone();
            Err(pipeline::unknown_operation(
                &Wire::Json { invalid: "" },
                target,
            ))
        }
        Route::RestJson => {
            ctx.outcome.service = services::cognito_sync::SIGNING_NAME;
            let bindings = services::cognito_sync::Operation::ALL.iter().map(|op| {
                let (method, uri) = op.http();
                (*op, method, uri)
            });
            let Some(m) =
                protocol::match_rest(bindings, ctx.parts.method.as_str(), ctx.parts.uri.path())
            else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "UnknownOperationException",
                    format!(
                        "No Cognito Sync operation is {} {}",
                        ctx.parts.method,
                        ctx.parts.uri.path()
                    ),
                ));
            };
            let name = m.operation.name();
            ctx.outcome.operation = name.to_owned();
            let body = read_body(&ctx.parts.headers, body, protocol::MAX_BUFFERED_BODY).await?;
            let payload = Payload::Rest {
                labels: &m.labels,
                body: &body,
            };
            pipeline::run::<SyncService>(ctx, name, payload).await
        }
        Route::S3 => return s3::handle(ctx, body).await,
        Route::Query { service } => {
            let body = read_body(&ctx.parts.headers, body, protocol::MAX_BUFFERED_BODY).await?;
            let params = QueryParams::parse(ctx.parts.uri.query().unwrap_or(""), &body)?;
            let Some(action) = params.action() else {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingAction",
                    "Missing Action",
                ));
            };
            ctx.outcome.operation = action.to_owned();
            let service = service
                .or_else(|| params.version().and_then(QueryService::from_version))
                .or_else(|| services::sts::Operation::from_name(action).map(|_| QueryService::Sts));
            *query_service = service;
            let version = params.version().unwrap_or("");
            let invalid_action = || {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidAction",
                    format!("Could not find operation {action} for version {version}"),
                )
            };
            let Some(service) = service else {
                return Err(invalid_action());
            };
            ctx.outcome.service = service.signing_name();
            if params.version().is_some_and(|v| v != service.api_version()) {
                return Err(invalid_action());
            }
            let payload = Payload::Query {
                params: &params,
                body: &body,
            };
            match service {
                QueryService::Sts => pipeline::run::<StsService>(ctx, action, payload).await,
                QueryService::Iam => pipeline::run::<IamService>(ctx, action, payload).await,
                QueryService::Sns => pipeline::run::<SnsService>(ctx, action, payload).await,
            }
        }
    };
    response.map(|r| r.map(Body::from))
}

/// Where `cognate apply` posts a setup file.
const APPLY_PATH: &str = "/_cognate/apply";

/// `POST /_cognate/apply`: a setup file (TOML, at most the JSON body limit), applied as by
/// `--init`. Only the default account's root may, signing with SigV4 for the service
/// `cognate`; the answer is JSON: `{"applied": [...]}`, or an `InvalidInput` error naming the
/// line and what failed.
async fn apply_file(ctx: &mut Ctx<'_>, body: Body) -> Result<http::Response<Body>, ApiError> {
    ctx.outcome.service = "cognate";
    ctx.outcome.operation = "Apply".to_owned();
    let body = read_body(&ctx.parts.headers, body, protocol::MAX_BUFFERED_BODY).await?;
    let hash = sigv4::sha256_hex(&body);
    let caller = ctx
        .caller(
            Protocol::Json,
            "cognate",
            sigv4::PathStyle::Normalized,
            &hash,
            true,
        )
        .await?
        .ok_or_else(ApiError::internal)?;
    let root_of_default = matches!(
        &caller.principal,
        cognate_credentials::Principal::Root { account } if *account == ctx.state.default_account
    );
    if !root_of_default {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Only the default account's root may apply a setup file",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "The setup file is not UTF-8",
        )
    })?;
    // Errors name the file as the client named it.
    let file = ctx
        .parts
        .headers
        .get("x-cognate-file")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("the setup file")
        .to_owned();
    let applied = crate::apply::apply(ctx.state, &file, text)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", e.0))?;
    let mut res = http::Response::new(Body::from(
        serde_json::json!({ "applied": applied }).to_string(),
    ));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// The headers every response of the JSON and Query APIs carries for a browser (one that sent
/// `Origin`): any origin may call them, as Cognito, STS and IAM answer browsers; what a
/// caller proves comes from its tokens and signatures, never from cookies.
fn api_cors(headers: &mut http::HeaderMap) {
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(API_EXPOSED),
    );
}

/// The response headers a browser's script may read from the JSON and Query APIs.
const API_EXPOSED: &str = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date";

/// A browser's preflight (`OPTIONS`): for the service endpoint (`/`, where the JSON and Query
/// APIs are posted) any origin may post with the headers it asks for (as Cognito, STS and IAM
/// answer: the requested headers echoed, for two days); a bucket or object path is answered by
/// the bucket's CORS configuration.
async fn preflight(
    state: &AppState,
    parts: &http::request::Parts,
    request_id: &str,
) -> http::Response<Body> {
    if parts.uri.path() != "/" {
        return match s3::preflight(state, parts).await {
            Ok(response) => response,
            Err(err) => {
                protocol::render_s3_error(&err, parts.uri.path(), request_id).map(Body::from)
            }
        };
    }
    let mut res = http::Response::new(Body::empty());
    let headers = res.headers_mut();
    api_cors(headers);
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    if let Some(asked) = parts
        .headers
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
    {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        http::header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("172800"),
    );
    res
}

/// Whether a request carries a body (a `Content-Length` above zero, or a chunked one).
fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// `Expect: 100-continue` on a request whose body is empty.
fn expects_continue_without_body(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        && headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
}

fn health(request_id: &str) -> http::Response<Body> {
    let body =
        serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }).to_string();
    let mut res = http::Response::new(Body::from(body));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        res.headers_mut().insert(protocol::REQUEST_ID_HEADER, id);
    }
    res
}
