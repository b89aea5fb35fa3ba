//! Any Query request (URL query and form body, split at the first NUL) decodes into an
//! operation's model-shaped input or is refused with an AWS error, for every STS and IAM
//! operation, never a panic.
#![no_main]

use cognate_protocol::{Model, QueryParams, QueryService, services};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let Ok(params) = QueryParams::parse(&String::from_utf8_lossy(query), body) else { return };
    let action = params.action().unwrap_or("GetCallerIdentity").to_owned();
    let _ = Model::query(QueryService::Sts).decode_query(&action, &params);
    let _ = Model::query(QueryService::Iam).decode_query(&action, &params);
    // And every operation the request could have named.
    let pick = data.first().copied().unwrap_or(0) as usize;
    let sts = services::sts::Operation::ALL[pick % services::sts::Operation::ALL.len()];
    let iam = services::iam::Operation::ALL[pick % services::iam::Operation::ALL.len()];
    let _ = Model::query(QueryService::Sts).decode_query(sts.name(), &params);
    let _ = Model::query(QueryService::Iam).decode_query(iam.name(), &params);
});
