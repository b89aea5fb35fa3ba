//! Opaque strings handed to clients: the sync session token ListRecords issues and
//! UpdateRecords requires (sealed: identity, dataset, expiry), and paging tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cognate_credentials::MasterKey;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SyncError};

/// What the session token's ciphertext is bound to.
const CONTEXT: &str = "cognito-sync/session";

#[derive(Serialize, Deserialize)]
struct Session {
    #[serde(rename = "i")]
    identity_id: String,
    #[serde(rename = "d")]
    dataset: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    expires: i64,
}

/// A session token for one identity's dataset, valid until `expires` (Unix seconds).
pub(crate) fn seal_session(
    master: &MasterKey,
    rng: &dyn SecureRandom,
    identity_id: &str,
    dataset: &str,
    expires: i64,
) -> Result<String> {
    let session = Session {
        identity_id: identity_id.to_owned(),
        dataset: dataset.to_owned(),
        expires,
    };
    let plain = serde_json::to_vec(&session).map_err(SyncError::internal)?;
    let sealed = master
        .seal(CONTEXT, &plain, rng)
        .map_err(SyncError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// Whether `token` is a live session token this server issued for that identity's dataset.
pub(crate) fn session_valid(
    master: &MasterKey,
    token: &str,
    identity_id: &str,
    dataset: &str,
    now: i64,
) -> bool {
    let Ok(sealed) = URL_SAFE_NO_PAD.decode(token) else {
        return false;
    };
    let Ok(plain) = master.open(CONTEXT, &sealed) else {
        return false;
    };
    serde_json::from_slice::<Session>(&plain)
        .is_ok_and(|s| s.identity_id == identity_id && s.dataset == dataset && now < s.expires)
}

/// A paging token naming the last item a page held.
pub(crate) fn page_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

/// The item a paging token names; a token that does not decode is refused.
pub(crate) fn page_after(token: Option<&str>) -> Result<Option<String>> {
    token
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SyncError::InvalidParameter("Invalid pagination token".to_owned()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn a_session_token_opens_only_for_its_identity_dataset_and_time() {
        let rng = SystemRandom::new();
        let master = MasterKey::from_bytes(&[7; 32]).unwrap();
        let token = seal_session(&master, &rng, "us-east-1:a", "profile", 100).unwrap();
        assert!(session_valid(&master, &token, "us-east-1:a", "profile", 99));
        assert!(!session_valid(
            &master,
            &token,
            "us-east-1:a",
            "profile",
            100
        ));
        assert!(!session_valid(
            &master,
            &token,
            "us-east-1:b",
            "profile",
            99
        ));
        assert!(!session_valid(&master, &token, "us-east-1:a", "other", 99));
        let other = MasterKey::from_bytes(&[8; 32]).unwrap();
        assert!(!session_valid(&other, &token, "us-east-1:a", "profile", 99));
        let mut forged = token.into_bytes();
        if let Some(b) = forged.get_mut(20) {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
        let forged = String::from_utf8(forged).unwrap();
        assert!(!session_valid(
            &master,
            &forged,
            "us-east-1:a",
            "profile",
            99
        ));
        assert!(!session_valid(
            &master,
            "not a token",
            "us-east-1:a",
            "profile",
            99
        ));
    }

    #[test]
    fn a_page_token_round_trips_and_garbage_is_refused() {
        let t = page_token("12:key");
        assert_eq!(
            page_after(Some(&t)).ok().flatten().as_deref(),
            Some("12:key")
        );
        assert!(page_after(Some("%%%")).is_err());
        assert!(matches!(page_after(None), Ok(None)));
    }
}
