//! The S3 object service below HTTP: where object bytes live ([`blobs`]), the request
//! documents S3 defines ([`xml`]), checksums, and S3's naming and ETag rules. The edge
//! (`cognate-server`'s `s3` module) parses requests, authorizes them and renders replies.

pub mod blobs;
mod checksum;
pub mod cors;
pub mod post;
pub mod tags;
pub mod xml;

pub use blobs::{BlobWriter, Blobs, Digests, Finished};
pub use checksum::{ChecksumAlgorithm, composite};

use md5::Digest as _;

/// Multipart uploads: part numbers run 1..=10,000.
pub const MAX_PART_NUMBER: i64 = 10_000;
/// Every part but the last must be at least 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest single PUT S3 accepts.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Object keys are at most 1,024 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// User metadata (names and values of `x-amz-meta-*`) is at most 2 KB.
pub const MAX_USER_METADATA: usize = 2048;

/// Checks a bucket name against S3's rules for new (general purpose) buckets: 3–63
/// characters of lower-case letters, digits, dots and hyphens, starting and ending with a
/// letter or digit, no two adjacent dots, not shaped like an IP address, and none of the
/// reserved prefixes and suffixes.
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
}

/// A single-part object's ETag: the quoted hex MD5 of its bytes.
pub fn etag(md5: &[u8; 16]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

/// A multipart object's ETag as S3 computes it: the MD5 of the parts' binary MD5s,
/// then `-<number of parts>`.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = md5::Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    let digest: [u8; 16] = h.finalize().into();
    format!("\"{}-{}\"", hex::encode(digest), part_md5s.len())
}

/// The binary MD5 inside a single-part ETag (quoted or not).
pub fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let hex_part = etag.trim().trim_matches('"');
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_rules() {
        for ok in ["abc", "my-bucket.logs", "a1b2c3", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.5.4",
            "xn--abc",
            "my_bucket",
            "abc-s3alias",
            "",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn multipart_etag_matches_s3() {
        // Two parts "a"*5MiB and "b": S3's ETag is md5(md5(p1) || md5(p2)) + "-2".
        let p1 = md5::Md5::digest(vec![b'a'; 5 * 1024 * 1024]);
        let p2 = md5::Md5::digest(b"b");
        let expected = {
            let mut both = p1.to_vec();
            both.extend_from_slice(&p2);
            format!("\"{}-2\"", hex::encode(md5::Md5::digest(&both)))
        };
        assert_eq!(multipart_etag(&[p1.into(), p2.into()]), expected);
        assert_eq!(etag_md5(&etag(&p2.into())), Some(p2.into()));
        assert_eq!(etag_md5("\"nothex\""), None);
    }
}
