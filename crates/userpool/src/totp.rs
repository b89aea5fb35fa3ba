//! Software-token MFA: RFC 6238 time-based one-time passwords (HMAC-SHA1, 30-second steps,
//! six digits), as authenticator apps compute them, and the RFC 4648 base32 secrets they
//! scan. The HMAC is ring's.

const STEP_SECS: i64 = 30;
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 without padding.
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in data {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = usize::try_from((buffer >> bits) & 31).unwrap_or(0);
            out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
        }
    }
    if bits > 0 {
        let index = usize::try_from((buffer << (5 - bits)) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
    }
    out
}

/// The six-digit code for a time step.
fn code_at(secret: &[u8], step: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_be_bytes(b) & 0x7fff_ffff);
    format!("{:06}", word % 1_000_000)
}

/// Checks a code against the steps around `now` (one either side, for clock drift). Returns
/// the matching step, which the caller records so that a code is used once.
pub fn verify(secret: &[u8], code: &str, now: i64, last_used_step: i64) -> Option<i64> {
    let current = now.div_euclid(STEP_SECS);
    (current - 1..=current + 1)
        .filter(|step| *step > last_used_step)
        .find(|step| {
            let expected = code_at(secret, *step);
            expected.len() == code.len()
                && expected
                    .bytes()
                    .zip(code.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        // RFC 6238 appendix B, SHA-1 (the last six digits of the eight-digit values).
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59 / 30), "287082");
        assert_eq!(code_at(secret, 1_111_111_109 / 30), "081804");
        assert_eq!(code_at(secret, 2_000_000_000 / 30), "279037");
        assert_eq!(verify(secret, "287082", 59, i64::MIN), Some(1));
        // Used once: the same step is refused afterwards.
        assert_eq!(verify(secret, "287082", 59, 1), None);
        assert_eq!(verify(secret, "000000", 59, i64::MIN), None);
    }
}
