//! aws-chunked uploads: the chunk framing, the per-chunk signatures of
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER)` and the trailing checksum headers of
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
//!
//! Each chunk's signature chains from the previous one, starting at the request's own
//! signature (the seed), so chunks can be neither reordered nor dropped.

use bytes::Bytes;

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
        self.advance(string_to_sign.as_bytes(), signature)
    }

    /// Checks the signature of the trailing headers (`x-amz-trailer-signature`), which
    /// chains from the last chunk's. `trailer` is the headers as sent, `name:value\n` each.
    pub fn verify_trailer(&mut self, trailer: &[u8], signature_hex: &str) -> bool {
        let mut signature = [0u8; 32];
        if signature_hex.len() != 64 || hex::decode_to_slice(signature_hex, &mut signature).is_err()
        {
            return false;
        }
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(self.previous),
            crate::sha256_hex(trailer)
        );
        self.advance(string_to_sign.as_bytes(), signature)
    }

    fn advance(&mut self, string_to_sign: &[u8], signature: [u8; 32]) -> bool {
        if self.key.verify(string_to_sign, &signature) {
            self.previous = signature;
            true
        } else {
            false
        }
    }
}

/// Why an aws-chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the aws-chunked framing is malformed")]
    Malformed,
    #[error("a chunk signature does not match")]
    Signature,
    #[error("the body ended before its last chunk")]
    Incomplete,
    /// A trailing header the request did not declare in `x-amz-trailer`, one after the
    /// trailer signature, or a signed body's trailer without its signature.
    #[error("the trailing headers are not well-formed or were not declared")]
    Trailer,
}

/// The longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug)]
enum State {
    /// Reading `<hex size>[;chunk-signature=<sig>]\r\n`.
    SizeLine,
    /// Reading a chunk's data.
    Data {
        remaining: u64,
    },
    /// Reading the `\r\n` after a chunk's data.
    DataEnd,
    /// Reading trailing header lines until an empty one.
    Trailer,
    Done,
}

/// Decodes an aws-chunked body fed in arbitrary pieces, verifying chunk signatures when the
/// request was signed for them, and collecting the trailing headers.
pub struct ChunkedDecoder {
    verifier: Option<ChunkVerifier>,
    state: State,
    line: Vec<u8>,
    signature: String,
    digest: Option<ring::digest::Context>,
    trailer: Vec<u8>,
    trailers: Vec<(String, String)>,
    /// The trailing headers the request declared (`x-amz-trailer`), lower-case.
    declared: Vec<String>,
    trailer_signed: bool,
}

impl ChunkedDecoder {
    /// `verifier` is `Some` for signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`).
    /// No trailing header is accepted until [`ChunkedDecoder::declared`] names it.
    pub fn new(verifier: Option<ChunkVerifier>) -> Self {
        ChunkedDecoder {
            verifier,
            state: State::SizeLine,
            line: Vec::new(),
            signature: String::new(),
            digest: None,
            trailer: Vec::new(),
            trailers: Vec::new(),
            declared: Vec::new(),
            trailer_signed: false,
        }
    }

    /// The trailing headers the request declared in `x-amz-trailer`: only these may follow
    /// the last chunk (with signed chunks, followed by their signature).
    pub fn declared(mut self, names: &[&str]) -> Self {
        self.declared = names
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        self
    }

    /// Feeds the next piece of the body, appending the payload it carries to `out`.
    pub fn feed(&mut self, mut input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Data { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let data = input.split_to(take);
                    if let Some(d) = self.digest.as_mut() {
                        d.update(&data);
                    }
                    out.push(data);
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::DataEnd
                    } else {
                        State::Data { remaining }
                    };
                }
                State::Done => return Err(ChunkError::Malformed),
                State::SizeLine | State::DataEnd | State::Trailer => {
                    let Some(line) = self.take_line(&mut input)? else {
                        continue;
                    };
                    self.on_line(&line)?;
                }
            }
        }
        Ok(())
    }

    /// Moves bytes up to and including the next `\r\n` into `self.line`; returns the
    /// finished line (without `\r\n`) when there is one.
    fn take_line(&mut self, input: &mut Bytes) -> Result<Option<Vec<u8>>, ChunkError> {
        let end = input.iter().position(|&b| b == b'\n');
        let piece = input.split_to(end.map_or(input.len(), |i| i + 1));
        self.line.extend_from_slice(&piece);
        if self.line.len() > MAX_LINE {
            return Err(ChunkError::Malformed);
        }
        if end.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        if !line.ends_with(b"\r\n") {
            return Err(ChunkError::Malformed);
        }
        line.truncate(line.len() - 2);
        Ok(Some(line))
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        match self.state {
            State::SizeLine => {
                let text = std::str::from_utf8(line).map_err(|_| ChunkError::Malformed)?;
                let (size, extension) = text.split_once(';').unwrap_or((text, ""));
                let size =
                    u64::from_str_radix(size.trim(), 16).map_err(|_| ChunkError::Malformed)?;
                self.signature = match extension.split_once('=') {
                    Some(("chunk-signature", sig)) => sig.trim().to_owned(),
                    Some(_) => return Err(ChunkError::Malformed),
                    None => String::new(),
                };
                if self.verifier.is_some() && self.signature.is_empty() {
                    return Err(ChunkError::Signature);
                }
                if size == 0 {
                    self.verify_chunk(ring::digest::Context::new(&ring::digest::SHA256))?;
                    self.state = State::Trailer;
                } else {
                    if self.verifier.is_some() {
                        self.digest = Some(ring::digest::Context::new(&ring::digest::SHA256));
                    }
                    self.state = State::Data { remaining: size };
                }
            }
            State::DataEnd => {
                if !line.is_empty() {
                    return Err(ChunkError::Malformed);
                }
                if let Some(digest) = self.digest.take() {
                    self.verify_chunk(digest)?;
                }
                self.state = State::SizeLine;
            }
            State::Trailer if line.is_empty() => self.state = State::Done,
            State::Trailer => {
                let text = std::str::from_utf8(line).map_err(|_| ChunkError::Trailer)?;
                let (name, value) = text.split_once(':').ok_or(ChunkError::Trailer)?;
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim().to_owned();
                if self.trailer_signed {
                    // Nothing may follow the signature: it would not be covered by it.
                    return Err(ChunkError::Trailer);
                }
                if name == "x-amz-trailer-signature" {
                    let Some(verifier) = self.verifier.as_mut() else {
                        return Err(ChunkError::Trailer);
                    };
                    if !verifier.verify_trailer(&self.trailer, &value) {
                        return Err(ChunkError::Signature);
                    }
                    self.trailer_signed = true;
                } else if !self.declared.contains(&name)
                    || self.trailers.iter().any(|(n, _)| *n == name)
                {
                    return Err(ChunkError::Trailer);
                } else {
                    self.trailer
                        .extend_from_slice(format!("{name}:{value}\n").as_bytes());
                    self.trailers.push((name, value));
                }
            }
            State::Data { .. } | State::Done => return Err(ChunkError::Malformed),
        }
        Ok(())
    }

    fn verify_chunk(&mut self, digest: ring::digest::Context) -> Result<(), ChunkError> {
        let Some(verifier) = self.verifier.as_mut() else {
            return Ok(());
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.finish().as_ref());
        if verifier.verify_chunk(&hash, &self.signature) {
            Ok(())
        } else {
            Err(ChunkError::Signature)
        }
    }

    /// Ends the body: the trailing headers (lower-case names), or an error when the body
    /// stopped before its final chunk.
    pub fn finish(self) -> Result<Vec<(String, String)>, ChunkError> {
        if self.verifier.is_some() && !self.trailers.is_empty() && !self.trailer_signed {
            // Signed chunks sign their trailer too; an unsigned one is someone else's.
            return Err(ChunkError::Signature);
        }
        match self.state {
            State::Done => Ok(self.trailers),
            // Some clients end right after the final chunk, with no empty trailer line.
            State::Trailer if self.line.is_empty() && self.trailers.is_empty() => Ok(self.trailers),
            _ => Err(ChunkError::Incomplete),
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

    type Decoded = (Vec<u8>, Vec<(String, String)>);

    fn decode(
        body: &[u8],
        verifier: Option<ChunkVerifier>,
        piece: usize,
    ) -> Result<Decoded, ChunkError> {
        let mut d = ChunkedDecoder::new(verifier).declared(&["x-amz-checksum-crc32"]);
        let mut out = Vec::new();
        for p in body.chunks(piece) {
            d.feed(Bytes::copy_from_slice(p), &mut out)?;
        }
        let data = out.iter().flat_map(|b| b.iter().copied()).collect();
        Ok((data, d.finish()?))
    }

    #[test]
    fn unsigned_chunks_with_trailer_decode_in_any_split() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for piece in [1, 2, 3, 7, body.len()] {
            let (data, trailers) = decode(body, None, piece).unwrap();
            assert_eq!(data, b"hello world");
            assert_eq!(
                trailers,
                vec![("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]
            );
        }
    }

    #[test]
    fn malformed_and_truncated_bodies_are_refused() {
        assert_eq!(
            decode(b"zz\r\nhello\r\n0\r\n\r\n", None, 64).unwrap_err(),
            ChunkError::Malformed
        );
        assert_eq!(
            decode(b"5\r\nhelloXX0\r\n\r\n", None, 64).unwrap_err(),
            ChunkError::Malformed
        );
        assert_eq!(
            decode(b"5\r\nhel", None, 64).unwrap_err(),
            ChunkError::Incomplete
        );
        assert_eq!(
            decode(b"0\r\n\r\nextra", None, 64).unwrap_err(),
            ChunkError::Malformed
        );
        // Unsigned chunks may not carry a trailer signature.
        assert_eq!(
            decode(b"0\r\nx-amz-trailer-signature:00\r\n\r\n", None, 64).unwrap_err(),
            ChunkError::Trailer
        );
    }

    #[test]
    fn undeclared_and_repeated_trailers_are_refused() {
        assert_eq!(
            decode(b"0\r\nx-amz-checksum-sha256:AAAA\r\n\r\n", None, 64).unwrap_err(),
            ChunkError::Trailer
        );
        assert_eq!(
            decode(
                b"0\r\nx-amz-checksum-crc32:AAAA\r\nx-amz-checksum-crc32:BBBB\r\n\r\n",
                None,
                64
            )
            .unwrap_err(),
            ChunkError::Trailer
        );
        let mut d = ChunkedDecoder::new(None);
        let mut out = Vec::new();
        assert_eq!(
            d.feed(
                Bytes::from_static(b"0\r\nx-amz-checksum-crc32:AAAA\r\n"),
                &mut out
            )
            .unwrap_err(),
            ChunkError::Trailer,
            "nothing declared, nothing accepted"
        );
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
            legacy: None,
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

    /// The same example as a whole body through the decoder, then with one byte changed.
    #[test]
    fn decoder_verifies_the_documented_chain() {
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
            legacy: None,
        };
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        let verifier = ChunkVerifier::new(&presented, key);
        let (data, trailers) = decode(&body, Some(verifier.clone()), 1000).unwrap();
        assert_eq!(data.len(), 66560);
        assert!(trailers.is_empty());
        let mut tampered = body.clone();
        tampered[200] = b'b';
        assert_eq!(
            decode(&tampered, Some(verifier.clone()), 1000).unwrap_err(),
            ChunkError::Signature
        );
        // A trailer appended to signed chunks without its own signature, or after it, is not
        // the signer's.
        let mut unsigned_trailer = body.clone();
        unsigned_trailer.truncate(unsigned_trailer.len() - 2);
        unsigned_trailer.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        assert_eq!(
            decode(&unsigned_trailer, Some(verifier.clone()), 1000).unwrap_err(),
            ChunkError::Signature
        );
        // Signed mode refuses a chunk without a signature.
        assert_eq!(
            decode(b"1\r\na\r\n0\r\n\r\n", Some(verifier), 1000).unwrap_err(),
            ChunkError::Signature
        );
    }
}
