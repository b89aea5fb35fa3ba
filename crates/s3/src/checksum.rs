//! S3's additional checksums (`x-amz-checksum-*`).

use base64::Engine as _;
use sha1::Digest as _;

/// The checksum algorithms S3 accepts in `x-amz-checksum-<algorithm>` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 4] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The header carrying this checksum.
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name S3 uses in messages and `x-amz-sdk-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    pub fn from_header(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.header() == name)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

/// A running checksum.
pub(crate) enum Checksum {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Sha1(sha1::Sha1),
    Sha256(ring::digest::Context),
}

impl Checksum {
    pub(crate) fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32 => Checksum::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => Checksum::Crc32c(0),
            ChecksumAlgorithm::Sha1 => Checksum::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => {
                Checksum::Sha256(ring::digest::Context::new(&ring::digest::SHA256))
            }
        }
    }

    pub(crate) fn algorithm(&self) -> ChecksumAlgorithm {
        match self {
            Checksum::Crc32(_) => ChecksumAlgorithm::Crc32,
            Checksum::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            Checksum::Sha1(_) => ChecksumAlgorithm::Sha1,
            Checksum::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc32(h) => h.update(data),
            Checksum::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Checksum::Sha1(h) => h.update(data),
            Checksum::Sha256(h) => h.update(data),
        }
    }

    /// Base64 of the big-endian digest, as the headers carry it.
    pub(crate) fn finish(self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            Checksum::Crc32(h) => b64.encode(h.finalize().to_be_bytes()),
            Checksum::Crc32c(c) => b64.encode(c.to_be_bytes()),
            Checksum::Sha1(h) => b64.encode(h.finalize()),
            Checksum::Sha256(h) => b64.encode(h.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut c = Checksum::new(algorithm);
        c.update(data);
        c.finish()
    }

    #[test]
    fn checksums_match_published_values() {
        // Check values for "123456789": CRC-32 cbf43926, CRC-32C e3069283.
        assert_eq!(of(ChecksumAlgorithm::Crc32, b"123456789"), "y/Q5Jg==");
        assert_eq!(of(ChecksumAlgorithm::Crc32c, b"123456789"), "4waSgw==");
        assert_eq!(
            of(ChecksumAlgorithm::Sha1, b"abc"),
            "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
        );
        assert_eq!(
            of(ChecksumAlgorithm::Sha256, b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }
}
