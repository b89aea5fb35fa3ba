//! What a session token carries: everything needed to authenticate and authorize a request
//! signed with temporary credentials, so no node needs a database read to do it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Principal;

/// The sealed contents of a session token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(rename = "k")]
    pub access_key_id: String,
    #[serde(rename = "s")]
    pub secret_access_key: String,
    #[serde(rename = "p")]
    pub principal: Principal,
    /// Unix seconds.
    #[serde(rename = "iat")]
    pub issued_at: i64,
    /// Unix seconds.
    #[serde(rename = "exp")]
    pub expires_at: i64,
    /// Session policies (documents), which intersect the role's permissions.
    #[serde(rename = "sp", default, skip_serializing_if = "Vec::is_empty")]
    pub session_policies: Vec<String>,
    /// Session tags (`aws:PrincipalTag/<key>`).
    #[serde(rename = "tg", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Tags that pass on to sessions this session assumes.
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Condition keys the session brings to every request (a web identity's
    /// `<provider>:sub`, `:aud`, `:amr`), so policies can use them as variables.
    #[serde(rename = "cx", default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<(String, Vec<String>)>,
}

impl fmt::Debug for SessionClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionClaims")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
