//! Runs every case in `tests/corpus/*.json` (format in `tests/corpus/README.md`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cognate_policy::{Context, Policy, PolicySet, PolicyUse, PrincipalInfo, Request, evaluate};
use serde_json::Value;

fn policy(doc: &Value, usage: PolicyUse) -> Policy {
    Policy::parse(&doc.to_string(), usage).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn policies(v: &Value, usage: PolicyUse) -> Option<Vec<Policy>> {
    v.as_array()
        .map(|items| items.iter().map(|d| policy(d, usage)).collect())
}

fn refs(v: &[Policy]) -> Vec<&Policy> {
    v.iter().collect()
}

fn run(case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap();
    let p = &case["policies"];
    let identity = policies(&p["identity"], PolicyUse::Identity).unwrap_or_default();
    // A role's trust policy (`trust`) is the resource policy of sts:AssumeRole*, by its own rule.
    let resource = match (&p["resource"], &p["trust"]) {
        (Value::Null, Value::Null) => None,
        (Value::Null, trust) => Some(policy(trust, PolicyUse::Trust)),
        (resource, _) => Some(policy(resource, PolicyUse::Resource)),
    };
    let boundary = policies(&p["boundary"], PolicyUse::Identity);
    let session = policies(&p["session"], PolicyUse::Identity);
    let identity_refs = refs(&identity);
    let boundary_refs = boundary.as_deref().map(refs);
    let session_refs = session.as_deref().map(refs);

    let r = &case["request"];
    let mut principal = PrincipalInfo::from_arn(r["principal"]["arn"].as_str().unwrap());
    principal.role_arn = r["principal"]["role_arn"].as_str().map(str::to_owned);
    principal.anonymous = r["principal"]["anonymous"].as_bool().unwrap_or(false);
    principal.service = r["principal"]["service"].as_str().map(str::to_owned);
    principal.federated = r["principal"]["federated"].as_str().map(str::to_owned);
    let mut context = Context::new();
    if let Some(map) = case["context"].as_object() {
        for (k, v) in map {
            let values = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            context.insert(k, values);
        }
    }
    for key in case["unknowable"].as_array().into_iter().flatten() {
        context.mark_unknowable(key.as_str().unwrap());
    }
    let request = Request {
        principal: &principal,
        action: r["action"].as_str().unwrap(),
        resource: r["resource"].as_str().unwrap(),
        context: &context,
    };
    let set = PolicySet {
        identity: &identity_refs,
        resource: resource.as_ref(),
        resource_account: r["resource_account"].as_str(),
        boundary: boundary_refs.as_deref(),
        session: session_refs.as_deref(),
    };
    let got = evaluate(&set, &request);
    let expected = case["expected"].as_str().unwrap();
    if got.decision.as_str() == expected {
        Ok(())
    } else {
        Err(format!(
            "{name}: expected {expected}, got {} ({:?})",
            got.decision.as_str(),
            got.reason
        ))
    }
}

#[test]
fn corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut names = std::collections::HashSet::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for case in cases.as_array().unwrap() {
            assert!(
                names.insert(case["name"].as_str().unwrap().to_owned()),
                "duplicate case name {}",
                case["name"]
            );
            count += 1;
            if let Err(e) = run(case) {
                failures.push(format!(
                    "{}: {e}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(count > 0, "no corpus cases found in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} corpus cases passed");
}
