//! The IAM policy language: parse and validate policy documents, evaluate requests against
//! them exactly as the IAM User Guide's "policy evaluation logic" describes, and say why.
//!
//! Pure and synchronous: no I/O, no clock (time arrives as context keys), no storage.
//! Evaluation cannot fail: anything malformed was refused when the policy was parsed.

mod condition;
mod eval;
mod parse;
mod pattern;
mod principal;

pub use eval::{
    Decision, Evaluation, PolicyKind, PolicySet, Reason, StatementRef, evaluate, matched_statements,
};
pub use parse::{Effect, ParseError, Policy, PolicyUse, Statement, significant_len};
pub use principal::PrincipalInfo;

use std::collections::HashMap;

/// The request context: condition keys (case-insensitive) and their values, and the keys
/// whose absence means "not known here" rather than "not in the request".
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
    unknowable: std::collections::HashSet<String>,
}

impl Context {
    pub fn new() -> Self {
        Context::default()
    }

    /// Sets a key's values, replacing any it had.
    pub fn insert(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.insert(key, vec![value.into()]);
    }

    /// A key's values; `lower_key` must already be lower-case (compiled policies store them so).
    pub(crate) fn get_lower(&self, lower_key: &str) -> Option<&[String]> {
        self.values.get(lower_key).map(Vec::as_slice)
    }

    /// A key's values, looked up case-insensitively.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.get_lower(&key.to_ascii_lowercase())
    }

    /// Declares a key that AWS would supply but the caller cannot (a VPC endpoint, a calling
    /// service): a condition on it, when absent, neither grants (an Allow does not apply) nor
    /// excuses (a Deny does), so an unknown never silently passes a guardrail.
    pub fn mark_unknowable(&mut self, key: &str) {
        self.unknowable.insert(key.to_ascii_lowercase());
    }

    /// Whether an absent key is unknown rather than absent; `lower_key` is lower-case.
    pub(crate) fn unknowable(&self, lower_key: &str) -> bool {
        self.unknowable.contains(lower_key)
    }
}

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a PrincipalInfo,
    /// `service:Action`, matched case-insensitively.
    pub action: &'a str,
    /// The resource ARN (or `*`).
    pub resource: &'a str,
    pub context: &'a Context,
}
