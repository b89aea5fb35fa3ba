//! Evaluation over arbitrary corpus-format cases (`crates/policy/tests/corpus/README.md`):
//! whatever parses must evaluate without panicking, and deterministically. Seed the corpus
//! with the cases in `crates/policy/tests/corpus`; a crash found here becomes a case there.
#![no_main]

use cognate_policy::{Context, Policy, PolicySet, PolicyUse, PrincipalInfo, Request, evaluate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn policies(v: &Value, usage: PolicyUse) -> Option<Vec<Policy>> {
    v.as_array()?.iter().map(|d| Policy::parse(&d.to_string(), usage).ok()).collect()
}

fn refs(v: &[Policy]) -> Vec<&Policy> {
    v.iter().collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(case) = serde_json::from_slice::<Value>(data) else { return };
    let Some(p) = case.get("policies") else { return };
    let identity = p.get("identity").and_then(|v| policies(v, PolicyUse::Identity)).unwrap_or_default();
    let resource = match (p.get("resource"), p.get("trust")) {
        (Some(d), _) => Policy::parse(&d.to_string(), PolicyUse::Resource).ok(),
        (None, Some(d)) => Policy::parse(&d.to_string(), PolicyUse::Trust).ok(),
        (None, None) => None,
    };
    let boundary = p.get("boundary").and_then(|v| policies(v, PolicyUse::Identity));
    let session = p.get("session").and_then(|v| policies(v, PolicyUse::Identity));
    let identity_refs = refs(&identity);
    let boundary_refs = boundary.as_deref().map(refs);
    let session_refs = session.as_deref().map(refs);
    let r = case.get("request").cloned().unwrap_or(Value::Null);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let principal = PrincipalInfo::from_arn(&text(r.get("principal").and_then(|p| p.get("arn"))));
    let mut context = Context::new();
    if let Some(map) = case.get("context").and_then(Value::as_object) {
        for (k, v) in map {
            let values = v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default();
            context.insert(k, values);
        }
    }
    let (action, resource_arn) = (text(r.get("action")), text(r.get("resource")));
    let resource_account = r.get("resource_account").and_then(Value::as_str);
    let set = PolicySet {
        identity: &identity_refs,
        resource: resource.as_ref(),
        resource_account,
        boundary: boundary_refs.as_deref(),
        session: session_refs.as_deref(),
    };
    let request = Request { principal: &principal, action: &action, resource: &resource_arn, context: &context };
    let first = evaluate(&set, &request);
    assert_eq!(first, evaluate(&set, &request));
});
