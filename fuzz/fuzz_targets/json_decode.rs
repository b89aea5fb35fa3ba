//! Any JSON 1.1 body decodes or is refused with SerializationException, and whatever decodes
//! is validated against the model of an operation of each JSON service (user pools, identity
//! pools, Organizations), never a panic.
#![no_main]

use cognate_protocol::{Model, decode_json, services};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = decode_json::<Value>(data) else { return };
    let pick = data.len();
    let idp = services::cognito_idp::Operation::ALL;
    let identity = services::cognito_identity::Operation::ALL;
    let orgs = services::organizations::Operation::ALL;
    let _ = Model::cognito_idp().validate_json(idp[pick % idp.len()].name(), &input);
    let _ = Model::cognito_identity().validate_json(identity[pick % identity.len()].name(), &input);
    let _ = Model::organizations().validate_json(orgs[pick % orgs.len()].name(), &input);
});
