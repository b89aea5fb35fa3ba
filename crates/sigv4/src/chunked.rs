//! Per-chunk signatures of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (aws-chunked) uploads.
//!
//! Each chunk's signature chains from the previous one, starting at the request's own
//! signature (the seed), so chunks can be neither reordered nor dropped.

use crate::{Presented, SigningKey};

/// Hex SHA-256 of the empty string, part of every chunk's string to sign.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Verifies the chunks of one aws-chunked body in order.
#[derive(Debug, Clone)]
pub struct ChunkVerifier {
    key: SigningKey,
    amz_date: String,
    scope: String,
    previous: [u8; 32],
}

impl ChunkVerifier {
    /// Starts the chain at the request's (already verified) seed signature.
    pub fn new(presented: &Presented, key: SigningKey) -> Self {
        ChunkVerifier {
            key,
            amz_date: presented.amz_date.clone(),
            scope: presented.scope.to_string(),
            previous: presented.signature,
        }
    }

    /// Checks one chunk given the SHA-256 of its data and the hex signature from its header.
    /// On success the chain advances; on failure it stays where it was.
    pub fn verify_chunk(&mut self, data_sha256: &[u8; 32], signature_hex: &str) -> bool {
        let mut signature = [0u8; 32];
        if signature_hex.len() != 64 || hex::decode_to_slice(signature_hex, &mut signature).is_err()
        {
            return false;
        }
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(self.previous),
            hex::encode(data_sha256)
        );
        if self.key.verify(string_to_sign.as_bytes(), &signature) {
            self.previous = signature;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Location, Scope};

    fn digest(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
        out
    }

    /// The example upload in the Amazon S3 API Reference, "Signature Calculations for the
    /// Authorization Header: Transferring Payload in Multiple Chunks".
    #[test]
    fn s3_documentation_example_chain() {
        let scope = Scope {
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        };
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &scope);
        let mut seed = [0u8; 32];
        hex::decode_to_slice(
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            &mut seed,
        )
        .unwrap();
        let presented = Presented {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            scope,
            signed_headers: vec!["host".into()],
            signature: seed,
            amz_date: "20130524T000000Z".into(),
            timestamp: time::OffsetDateTime::UNIX_EPOCH,
            security_token: None,
            location: Location::Header,
            content_sha256: None,
        };
        let mut v = ChunkVerifier::new(&presented, key);
        let first = digest(&[b'a'; 65536]);
        let second = digest(&[b'a'; 1024]);
        let last = digest(b"");
        // Out of order: the second chunk's signature does not follow the seed.
        assert!(!v.verify_chunk(
            &second,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        ));
        assert!(v.verify_chunk(
            &first,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        ));
        assert!(v.verify_chunk(
            &second,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        ));
        assert!(v.verify_chunk(
            &last,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        ));
    }
}
