//! The CPU cost of one password sign-in: checking the password against its SRP verifier and
//! signing the ID and access tokens; and of verifying an access token's signature (GetUser).
#![allow(clippy::unwrap_used, missing_docs)]

use cognate_userpool::SigningKey;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rng = ring::rand::SystemRandom::new();
    let stored =
        cognate_userpool::srp::verifier("AbCdEfGhI", "alice", "Correct-Horse-9", &rng).unwrap();
    c.bench_function("password_check", |b| {
        b.iter(|| {
            assert!(cognate_userpool::srp::matches(
                "AbCdEfGhI",
                "alice",
                "Correct-Horse-9",
                &stored
            ))
        })
    });
    c.bench_function("srp_verifier", |b| {
        b.iter(|| {
            cognate_userpool::srp::verifier("AbCdEfGhI", "alice", "Correct-Horse-9", &rng).unwrap()
        })
    });
    let (kid, der) = cognate_userpool::keys::generate(&rng).unwrap();
    let key = SigningKey::from_pkcs8(&kid, &der).unwrap();
    let claims = json!({"sub": "1f0e7c1a-0000-4000-8000-000000000000", "iss": "http://127.0.0.1:4566/us-east-1_AbCdEfGhI", "token_use": "access", "exp": 2_000_000_000, "iat": 1_700_000_000, "jti": "x", "client_id": "abc", "username": "alice"});
    c.bench_function("token_sign", |b| b.iter(|| key.sign(&claims).unwrap()));
    let token = key.sign(&claims).unwrap();
    c.bench_function("token_verify", |b| b.iter(|| key.verify(&token).unwrap()));
    c.bench_function("key_open", |b| {
        b.iter(|| SigningKey::from_pkcs8(&kid, &der).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
