//! Web identity tokens (OpenID Connect ID tokens) for `AssumeRoleWithWebIdentity`: read
//! without trust, then verified against the issuer's JWKS with the algorithm pinned to the
//! key, the audience checked against the provider's client ids, and time checked against the
//! `now` the caller passes. Fetching the JWKS is the caller's business: this stays pure.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use time::OffsetDateTime;

use crate::StsError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 60;

/// What a token says about itself, before any of it is trusted.
#[derive(Debug, Clone)]
pub struct Unverified {
    /// The `iss` claim as written.
    pub issuer: String,
    /// The issuer without its scheme or trailing slash: how IAM names the provider.
    pub provider: String,
    pub kid: Option<String>,
    pub alg: Algorithm,
}

/// A verified token's claims that STS and trust policies use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
    /// The audience that matched one of the provider's client ids.
    pub audience: String,
    pub azp: Option<String>,
    pub amr: Vec<String>,
    /// The token's `exp` (unix seconds).
    pub expires_at: i64,
}

fn invalid(message: &str) -> StsError {
    StsError::InvalidIdentityToken(message.to_owned())
}

const NOT_A_JWT: &str = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)";

/// The provider name for an issuer URL (`https://accounts.example.com/` → `accounts.example.com`).
pub fn provider_name(issuer: &str) -> String {
    issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or(issuer)
        .trim_end_matches('/')
        .to_owned()
}

/// Reads a token's header and issuer. Refuses anything but asymmetric signatures: `none`
/// and the HMAC algorithms (whose "key" would be the public key) never verify.
pub fn inspect(token: &str) -> Result<Unverified, StsError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid(NOT_A_JWT))?;
    match header.alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::ES256
        | Algorithm::ES384
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {}
        _ => {
            return Err(invalid(
                "The ID Token was signed with an unsupported algorithm",
            ));
        }
    }
    let claims: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .map_err(|_| invalid(NOT_A_JWT))?
        .claims;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("The ID Token has no issuer"))?
        .to_owned();
    Ok(Unverified {
        provider: provider_name(&issuer),
        issuer,
        kid: header.kid,
        alg: header.alg,
    })
}

fn key_matches(alg: Algorithm, params: &AlgorithmParameters) -> bool {
    matches!(
        (alg, params),
        (
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512,
            AlgorithmParameters::RSA(_)
        ) | (
            Algorithm::ES256 | Algorithm::ES384,
            AlgorithmParameters::EllipticCurve(_)
        )
    )
}

/// Verifies a token: signature under the JWKS key its `kid` names (and whose type fits the
/// algorithm), `exp` / `nbf` / `iat` against `now` with [`LEEWAY_SECS`], and `aud` (or `azp`)
/// among `client_ids`.
pub fn verify(
    token: &str,
    unverified: &Unverified,
    jwks: &JwkSet,
    client_ids: &[String],
    now: OffsetDateTime,
) -> Result<Verified, StsError> {
    let jwk = match &unverified.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| invalid("The ID Token's signing key was not found in the provider's JWKS"))?;
    if !key_matches(unverified.alg, &jwk.algorithm) {
        return Err(invalid(
            "The ID Token's algorithm does not match its signing key",
        ));
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && format!("{key_alg:?}") != format!("{:?}", unverified.alg)
    {
        return Err(invalid(
            "The ID Token's algorithm does not match its signing key",
        ));
    }
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| invalid("The provider's signing key is not usable"))?;
    let mut validation = Validation::new(unverified.alg);
    // Time and audience are checked below against the caller's clock and the provider.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|_| invalid("The ID Token's signature is not valid"))?
        .claims;

    let now = now.unix_timestamp();
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = time("exp").ok_or_else(|| invalid("The ID Token has no expiry"))?;
    check_expiry(exp, now)?;
    if time("nbf").is_some_and(|nbf| now + LEEWAY_SECS < nbf)
        || time("iat").is_some_and(|iat| now + LEEWAY_SECS < iat)
    {
        return Err(invalid("The ID Token is not yet valid"));
    }
    finish(&claims, exp, client_ids)
}

/// Refuses a token past its expiry (with [`LEEWAY_SECS`]).
pub fn check_expiry(exp: i64, now: i64) -> Result<(), StsError> {
    if now > exp + LEEWAY_SECS {
        let fmt = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default()
        };
        return Err(StsError::ExpiredToken(format!(
            "Token expired: current date/time {} must be before the expiration date/time {}",
            fmt(now),
            fmt(exp)
        )));
    }
    Ok(())
}

fn finish(claims: &Value, exp: i64, client_ids: &[String]) -> Result<Verified, StsError> {
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let azp = claims.get("azp").and_then(Value::as_str).map(str::to_owned);
    let audience = audiences
        .iter()
        .chain(azp.iter())
        .find(|a| client_ids.contains(a))
        .cloned()
        .ok_or_else(|| invalid("Incorrect token audience"))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("The ID Token has no subject"))?
        .to_owned();
    let amr = match claims.get("amr") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Verified {
        subject,
        audience,
        azp,
        amr,
        expires_at: exp,
    })
}
