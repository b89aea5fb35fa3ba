//! Authentication: turns a request's signature (SigV4; for S3 also SigV2) into the principal
//! that made it.

use cognate_credentials::{Principal, SealError, SessionClaims, TEMPORARY_KEY_PREFIX};
use cognate_protocol::AuthFailure;
use cognate_sigv4::{self as sigv4, PathStyle, Presented, SigningKey};
use time::OffsetDateTime;

use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// True when the request was signed with temporary (session) credentials.
    pub via_session: bool,
    /// The session's sealed claims (policies, tags, issue time), for session credentials.
    pub session: Option<std::sync::Arc<SessionClaims>>,
    /// The key the request was signed with, for verifying an aws-chunked body's chunks.
    pub signing_key: Option<SigningKey>,
}

impl Caller {
    /// Credentials from GetSessionToken: a session of a user or of the root, not of a role.
    /// No MFA device can be presented to Cognate, so such sessions never carry MFA.
    pub fn is_get_session_token(&self) -> bool {
        self.via_session && !matches!(self.principal, Principal::AssumedRole { .. })
    }
}

/// What the handler must tell the authenticator about a request.
pub struct Signed<'a> {
    pub request: &'a sigv4::Request<'a>,
    /// The request as SigV2 signs it (its resource `/bucket/key` whatever the addressing).
    pub v2_request: &'a sigv4::Request<'a>,
    pub presented: &'a Presented,
    pub style: PathStyle,
    /// Hex SHA-256 of the body, or what S3 signed in its place.
    pub payload_hash: &'a str,
    /// The signing name the route expects in the credential scope (`sts`, `s3`, …).
    pub service: &'a str,
    /// An S3 POST form's base64 policy document: what its signature covers in place of the
    /// request.
    pub policy: Option<&'a str>,
}

/// An authentication failure, or a failure inside the server while authenticating.
#[derive(Debug)]
pub enum AuthError {
    Denied(AuthFailure),
    Internal(String),
}

impl From<AuthFailure> for AuthError {
    fn from(f: AuthFailure) -> Self {
        AuthError::Denied(f)
    }
}

/// The protocol-neutral failure for a SigV4 error.
pub fn from_sigv4(e: sigv4::Error) -> AuthFailure {
    match e {
        sigv4::Error::Incomplete(m) => AuthFailure::Incomplete(m),
        sigv4::Error::ScopeDate(m) => AuthFailure::ScopeDate(m),
        sigv4::Error::Skewed(m) => AuthFailure::Skewed(m),
        sigv4::Error::PresignExpired => AuthFailure::PresignExpired,
        sigv4::Error::SignatureMismatch => AuthFailure::SignatureMismatch,
    }
}

/// Authenticates a signed request.
pub async fn authenticate(
    state: &AppState,
    signed: &Signed<'_>,
    now: OffsetDateTime,
) -> Result<Caller, AuthError> {
    let p = signed.presented;
    if p.scope.service != signed.service {
        return Err(AuthFailure::Incomplete(format!(
            "Credential should be scoped to correct service: '{}'. ",
            signed.service
        ))
        .into());
    }
    // IAM and Organizations are global services, signed for us-east-1 whatever the region.
    let global = matches!(signed.service, "iam" | "organizations") && p.scope.region == "us-east-1";
    if p.legacy.is_none() && p.scope.region != state.region && !global {
        return Err(AuthFailure::Incomplete(format!(
            "Credential should be scoped to a valid region, not '{}'. This server's region is '{}'.",
            p.scope.region, state.region
        ))
        .into());
    }
    let verify = |key: &SigningKey| {
        // A form's signature is of its policy; nothing else may stand in for a request's.
        match (signed.policy, p.location) {
            (Some(policy), sigv4::Location::Form) => {
                return if key.verify(policy.as_bytes(), &p.signature) {
                    Ok(())
                } else {
                    Err(AuthFailure::SignatureMismatch)
                };
            }
            (None, sigv4::Location::Form) | (Some(_), _) => {
                return Err(AuthFailure::SignatureMismatch);
            }
            (None, _) => {}
        }
        sigv4::verify(
            signed.request,
            p,
            key,
            signed.style,
            signed.payload_hash,
            now,
        )
        .map_err(from_sigv4)?;
        // A valid signature vouches only for what it covers: an `x-amz-*` header beside it
        // (an `X-Amz-Target`, a copy source, metadata) may have been added by anyone.
        let mut unsigned = sigv4::unsigned_amz_headers(signed.request, p);
        if signed.service != "s3" {
            // Outside S3, SigV4 lets the session token be added after signing; it is bound to
            // the key that signed, so it changes nothing the signature vouches for.
            unsigned.retain(|h| h != "x-amz-security-token");
        }
        if unsigned.is_empty() {
            Ok(())
        } else {
            Err(AuthFailure::HeadersNotSigned(unsigned))
        }
    };
    if p.access_key_id.starts_with(TEMPORARY_KEY_PREFIX) {
        let token = p
            .security_token
            .as_deref()
            .ok_or(AuthFailure::InvalidToken)?;
        let opened = match state.ring().open(token) {
            Err(SealError::UnknownKey(_)) if state.reload_ring_for_unknown_key().await => {
                state.ring().open(token)
            }
            other => other,
        };
        let claims = opened.map_err(|e| match e {
            SealError::Rng => AuthError::Internal("random number generator failed".into()),
            _ => AuthError::Denied(AuthFailure::InvalidToken),
        })?;
        if claims.access_key_id != p.access_key_id {
            return Err(AuthFailure::InvalidToken.into());
        }
        // The signature is checked before expiry, so only the credential's holder learns
        // that it has expired.
        let signing_key = match p.legacy {
            // SigV2 (S3): every `x-amz-*` header is in its string to sign.
            Some(_) => {
                match signed.policy {
                    Some(policy) => sigv4::v2::verify_policy(policy, p, &claims.secret_access_key),
                    None => sigv4::v2::verify(signed.v2_request, p, &claims.secret_access_key, now),
                }
                .map_err(from_sigv4)?;
                None
            }
            None => {
                let key = SigningKey::derive(&claims.secret_access_key, &p.scope);
                verify(&key)?;
                Some(key)
            }
        };
        if now.unix_timestamp() >= claims.expires_at {
            return Err(AuthFailure::ExpiredToken.into());
        }
        return Ok(Caller {
            principal: claims.principal.clone(),
            via_session: true,
            session: Some(std::sync::Arc::new(claims)),
            signing_key,
        });
    }
    if p.security_token.is_some() {
        return Err(AuthFailure::InvalidToken.into());
    }
    let key = state
        .access_key(&p.access_key_id)
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    match key {
        Some(key) if key.active => {
            let signing_key = match p.legacy {
                Some(_) => {
                    match signed.policy {
                        Some(policy) => key.verify_v2_policy(policy, p),
                        None => key.verify_v2(signed.v2_request, p, now),
                    }
                    .map_err(from_sigv4)?;
                    None
                }
                None => {
                    let signing_key = key.signing_key(&p.scope);
                    verify(&signing_key)?;
                    Some(signing_key)
                }
            };
            state.note_key_use(
                &key,
                &p.access_key_id,
                now.unix_timestamp(),
                &p.scope.service,
            );
            Ok(Caller {
                principal: key.principal.clone(),
                via_session: false,
                session: None,
                signing_key,
            })
        }
        Some(_) => Err(AuthFailure::UnknownAccessKey.into()),
        // Never for a browser's request (one with `Origin`): the API answers every origin, and
        // a page the developer visits must not act as root with a made-up key.
        None if state.dev && !signed.request.headers.contains_key(http::header::ORIGIN) => {
            Ok(Caller {
                principal: Principal::Root {
                    account: state.default_account.clone(),
                },
                via_session: false,
                session: None,
                signing_key: None,
            })
        }
        None => Err(AuthFailure::UnknownAccessKey.into()),
    }
}
