//! S3's additional checksums (`x-amz-checksum-*`).

use base64::Engine as _;
use sha1::Digest as _;

/// The checksum algorithms S3 accepts in `x-amz-checksum-<algorithm>` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// What S3 computes for an object whose upload named no checksum.
    pub const DEFAULT: ChecksumAlgorithm = ChecksumAlgorithm::Crc64Nvme;

    /// The header carrying this checksum.
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name S3 uses in messages and `x-amz-sdk-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
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

    /// The element of XML replies (CopyObjectResult, CompleteMultipartUploadResult).
    pub fn element(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
            ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
            ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
            ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
            ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
        }
    }

    /// Whether a multipart object may carry this checksum of its parts' checksums
    /// (`COMPOSITE`); CRC64NVME is only ever of the whole object.
    pub fn composable(self) -> bool {
        self != ChecksumAlgorithm::Crc64Nvme
    }

    /// Whether a multipart object may carry this checksum of all its bytes (`FULL_OBJECT`);
    /// only the CRCs combine so.
    pub fn full_object(self) -> bool {
        matches!(
            self,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
        )
    }
}

/// A multipart object's `COMPOSITE` checksum: the checksum of its parts' binary checksums,
/// base64, then `-<number of parts>`.
pub fn composite(algorithm: ChecksumAlgorithm, parts: &[Vec<u8>]) -> String {
    let mut c = Checksum::new(algorithm);
    for part in parts {
        c.update(part);
    }
    format!("{}-{}", c.finish(), parts.len())
}

/// A running checksum.
pub(crate) enum Checksum {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(ring::digest::Context),
}

impl Checksum {
    pub(crate) fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32 => Checksum::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => Checksum::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => {
                Checksum::Crc64Nvme(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
            }
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
            Checksum::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            Checksum::Sha1(_) => ChecksumAlgorithm::Sha1,
            Checksum::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc32(h) => h.update(data),
            Checksum::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Checksum::Crc64Nvme(d) => d.update(data),
            Checksum::Sha1(h) => h.update(data),
            Checksum::Sha256(h) => h.update(data),
        }
    }

    /// The big-endian digest.
    pub(crate) fn finish_raw(self) -> Vec<u8> {
        match self {
            Checksum::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Checksum::Crc32c(c) => c.to_be_bytes().to_vec(),
            Checksum::Crc64Nvme(d) => d.finalize().to_be_bytes().to_vec(),
            Checksum::Sha1(h) => h.finalize().to_vec(),
            Checksum::Sha256(h) => h.finish().as_ref().to_vec(),
        }
    }

    /// Base64 of the big-endian digest, as the headers carry it.
    pub(crate) fn finish(self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.finish_raw())
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
        // CRC-64/NVME's check value for "123456789" is ae8b14860a799888.
        assert_eq!(
            of(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            base64::engine::general_purpose::STANDARD
                .encode(0xae8b_1486_0a79_9888_u64.to_be_bytes())
        );
        assert_eq!(
            of(ChecksumAlgorithm::Sha1, b"abc"),
            "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
        );
        assert_eq!(
            of(ChecksumAlgorithm::Sha256, b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn composite_checksum_is_of_the_parts_checksums() {
        let raw = |data: &[u8]| {
            let mut c = Checksum::new(ChecksumAlgorithm::Crc32);
            c.update(data);
            c.finish_raw()
        };
        let parts = [raw(b"abc"), raw(b"def")];
        let mut joined = parts[0].clone();
        joined.extend_from_slice(&parts[1]);
        assert_eq!(
            composite(ChecksumAlgorithm::Crc32, &parts),
            format!("{}-2", of(ChecksumAlgorithm::Crc32, &joined))
        );
    }
}
