//! AWS wire protocols: which service and protocol a request speaks, how its input is decoded,
//! and how responses and errors are encoded in each protocol's exact shape.
//!
//! Pure: bytes and headers in, bytes and headers out. Nothing here knows about sockets,
//! storage or authorization.

pub mod cognito;
mod error;
mod json;
mod model;
mod query;
mod rest;
mod route;
mod s3;

/// Operation lists generated from the vendored AWS service models (`models/`).
pub mod services {
    include!(concat!(env!("OUT_DIR"), "/services.rs"));
}

/// Input and output structures generated from the vendored models of the JSON services
/// (`cognito_identity`, `cognito_idp`, `cognito_sync`): serde types named and shaped as the
/// model has them. Services take and return these instead of reading untyped JSON.
#[allow(clippy::all, clippy::pedantic)]
pub mod shapes {
    include!(concat!(env!("OUT_DIR"), "/shapes.rs"));
}

/// A string the model marks `sensitive` (passwords, tokens, secrets): serialized as itself,
/// never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Sensitive(pub String);

impl Sensitive {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sensitive(..)")
    }
}

impl From<String> for Sensitive {
    fn from(s: String) -> Self {
        Sensitive(s)
    }
}

/// What every generated `services::<service>::Operation` enum offers, for code written once
/// for all services (the server's request pipeline).
pub trait ServiceOperation: Copy + Eq + Send + Sync + std::fmt::Debug + 'static {
    /// The operation with this exact name, if the service has one.
    fn from_name(name: &str) -> Option<Self>;
    /// The operation's name, as the wire carries it.
    fn name(self) -> &'static str;
    /// False for the operations AWS serves without a signature (`authtype: none`).
    fn requires_signature(self) -> bool;
}

pub use error::{ApiError, AuthFailure, Fault};
pub use json::{decode_json, render_json, render_json_error, string_list};
pub use model::Model;
pub use query::{QueryParams, XmlWriter, render_query, render_query_error};
pub use rest::{RestMatch, match_rest, render_rest_json, render_rest_json_error};
pub use route::{JsonService, Protocol, QueryService, Route, classify};
pub use s3::render_s3_error;

/// Largest request body buffered for the JSON and Query protocols (S3 bodies stream).
pub const MAX_BUFFERED_BODY: usize = 1024 * 1024;

/// The header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";
