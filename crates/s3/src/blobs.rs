//! Object bytes as files under `<data-dir>/objects`.
//!
//! A file is written under `tmp/`, fsynced, and renamed into `data/<2 hex>/<id>` (then the
//! directory is fsynced) before any row names it; so a crash mid-upload leaves at most a
//! file in `tmp/` or a finished file no row names, both removed at start-up. When several
//! nodes share the directory, start-up removes only such files older than a grace period,
//! so that it never races another node's upload in progress.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use md5::Digest as _;
use tokio::io::AsyncWriteExt as _;

use crate::checksum::{Checksum, ChecksumAlgorithm};

/// Where object files live.
#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
}

/// The write buffer in front of each file.
const WRITE_BUFFER: usize = 256 * 1024;

impl Blobs {
    /// Opens (creating) the object directory and removes the files in its `tmp/` older than
    /// `grace`: they belong to uploads a previous process never finished.
    pub async fn open(root: &Path, grace: Duration) -> io::Result<Blobs> {
        let blobs = Blobs {
            root: root.to_path_buf(),
        };
        tokio::fs::create_dir_all(blobs.root.join("data")).await?;
        let tmp = blobs.root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        remove_stale(&tmp, None, grace).await?;
        Ok(blobs)
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.root.join("data").join(id.get(..2).unwrap_or("00"))
    }

    /// The file holding blob `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir_of(id).join(id)
    }

    /// Starts a new file. `sha256` asks for the SHA-256 of the bytes (to check
    /// `x-amz-content-sha256`), `checksum` for an additional S3 checksum.
    pub async fn create(
        &self,
        sha256: bool,
        checksum: Option<ChecksumAlgorithm>,
    ) -> io::Result<BlobWriter> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp = self.root.join("tmp").join(&id);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;
        Ok(BlobWriter {
            file: tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file),
            guard: TmpGuard(Some(tmp)),
            id,
            size: 0,
            md5: md5::Md5::new(),
            sha256: sha256.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
            checksum: checksum.map(Checksum::new),
        })
    }

    /// Opens blob `id` for reading.
    pub async fn open_blob(&self, id: &str) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(id)).await
    }

    /// Deletes files no row names any more; a failure is logged, and the next start-up's
    /// sweep finds the file again.
    pub async fn remove(&self, ids: &[String]) {
        for id in ids {
            if let Err(e) = tokio::fs::remove_file(self.path(id)).await
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(blob = %id, error = %e, "could not delete an object file");
            }
        }
    }

    /// Deletes finished files older than `grace` that no row names (left by a crash between
    /// the rename and the commit). Returns how many were deleted.
    pub async fn sweep(&self, referenced: &HashSet<String>, grace: Duration) -> io::Result<usize> {
        let mut removed = 0;
        let mut dirs = tokio::fs::read_dir(self.root.join("data")).await?;
        while let Some(dir) = dirs.next_entry().await? {
            if dir.file_type().await?.is_dir() {
                removed += remove_stale(&dir.path(), Some(referenced), grace).await?;
            }
        }
        Ok(removed)
    }
}

/// Removes the files in `dir` older than `grace` whose names `keep` does not hold.
async fn remove_stale(
    dir: &Path,
    keep: Option<&HashSet<String>>,
    grace: Duration,
) -> io::Result<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    let mut files = tokio::fs::read_dir(dir).await?;
    while let Some(file) = files.next_entry().await? {
        let name = file.file_name().to_string_lossy().into_owned();
        if keep.is_some_and(|k| k.contains(&name)) {
            continue;
        }
        let modified = file.metadata().await?.modified()?;
        if grace.is_zero() || modified < cutoff {
            match tokio::fs::remove_file(file.path()).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Deletes an unfinished file when its writer is dropped (an upload that failed or was
/// refused).
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A file being written, with the digests of what has been written so far.
pub struct BlobWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    guard: TmpGuard,
    id: String,
    size: u64,
    md5: md5::Md5,
    sha256: Option<ring::digest::Context>,
    checksum: Option<Checksum>,
}

/// The digests of a finished file.
#[derive(Debug, Clone)]
pub struct Digests {
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    /// The additional checksum asked for, base64 as S3 shows it.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

impl BlobWriter {
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.md5.update(data);
        if let Some(d) = self.sha256.as_mut() {
            d.update(data);
        }
        if let Some(c) = self.checksum.as_mut() {
            c.update(data);
        }
        self.size += data.len() as u64;
        self.file.write_all(data).await
    }

    /// Appends the whole of another blob (CopyObject, CompleteMultipartUpload).
    pub async fn append_blob(&mut self, blobs: &Blobs, id: &str) -> io::Result<()> {
        self.append_part(blobs, id, None).await.map(|_| ())
    }

    /// Appends `len` bytes of another blob from byte `start` (UploadPartCopy).
    pub async fn append_range(
        &mut self,
        blobs: &Blobs,
        id: &str,
        start: u64,
        len: u64,
    ) -> io::Result<()> {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let mut file = blobs.open_blob(id).await?;
        file.seek(io::SeekFrom::Start(start)).await?;
        let mut rest = file.take(len);
        let mut buf = vec![0u8; WRITE_BUFFER];
        loop {
            let n = rest.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            self.write(buf.get(..n).unwrap_or_default()).await?;
        }
        if rest.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the source object is shorter than its row says",
            ));
        }
        Ok(())
    }

    /// Appends the whole of another blob, returning the binary `checksum` of what it
    /// appended (a multipart object's part, for its composite checksum).
    pub async fn append_part(
        &mut self,
        blobs: &Blobs,
        id: &str,
        checksum: Option<ChecksumAlgorithm>,
    ) -> io::Result<Option<Vec<u8>>> {
        use tokio::io::AsyncReadExt as _;
        let mut file = blobs.open_blob(id).await?;
        let mut buf = vec![0u8; WRITE_BUFFER];
        let mut part = checksum.map(Checksum::new);
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(part.map(Checksum::finish_raw));
            }
            let data = buf.get(..n).unwrap_or_default();
            if let Some(c) = part.as_mut() {
                c.update(data);
            }
            self.write(data).await?;
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes and fsyncs the file; it is still unnamed until [`Finished::persist`].
    pub async fn finish(mut self) -> io::Result<Finished> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        let md5: [u8; 16] = self.md5.finalize().into();
        let sha256 = self.sha256.map(|d| {
            let mut out = [0u8; 32];
            out.copy_from_slice(d.finish().as_ref());
            out
        });
        Ok(Finished {
            guard: self.guard,
            id: self.id,
            digests: Digests {
                size: self.size,
                md5,
                sha256,
                checksum: self.checksum.map(|c| (c.algorithm(), c.finish())),
            },
        })
    }
}

/// A complete, fsynced file not yet in place.
pub struct Finished {
    guard: TmpGuard,
    id: String,
    pub digests: Digests,
}

impl Finished {
    /// Moves the file into place and makes the move durable; returns its id for the row.
    pub async fn persist(mut self, blobs: &Blobs) -> io::Result<String> {
        let Some(tmp) = self.guard.0.take() else {
            return Err(io::Error::other("blob already persisted"));
        };
        let dir = blobs.dir_of(&self.id);
        tokio::fs::create_dir_all(&dir).await?;
        if let Err(e) = tokio::fs::rename(&tmp, dir.join(&self.id)).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
            .await
            .map_err(io::Error::other)??;
        Ok(self.id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn files_appear_only_when_persisted_and_sweep_removes_strays() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), Duration::ZERO).await.unwrap();
        let mut w = blobs
            .create(true, Some(ChecksumAlgorithm::Crc32))
            .await
            .unwrap();
        w.write(b"hello ").await.unwrap();
        w.write(b"world").await.unwrap();
        let finished = w.finish().await.unwrap();
        assert_eq!(finished.digests.size, 11);
        assert_eq!(
            hex::encode(finished.digests.md5),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        assert_eq!(
            finished.digests.checksum.as_ref().unwrap().1,
            "DUoRhQ==",
            "CRC32 of 'hello world', base64"
        );
        let id = finished.persist(&blobs).await.unwrap();
        assert_eq!(std::fs::read(blobs.path(&id)).unwrap(), b"hello world");
        // Appending blobs concatenates them, with the digest of the whole.
        let mut joined = blobs.create(false, None).await.unwrap();
        joined.append_blob(&blobs, &id).await.unwrap();
        joined.append_blob(&blobs, &id).await.unwrap();
        let joined = joined.finish().await.unwrap();
        assert_eq!(joined.digests.size, 22);
        assert_eq!(
            hex::encode(joined.digests.md5),
            hex::encode(md5::Md5::digest(b"hello worldhello world"))
        );
        let joined = joined.persist(&blobs).await.unwrap();

        // A writer dropped before persisting leaves nothing behind.
        let mut dropped = blobs.create(false, None).await.unwrap();
        dropped.write(b"partial").await.unwrap();
        drop(dropped);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );

        // A finished file no row names is swept; a named one is kept.
        let mut stray = blobs.create(false, None).await.unwrap();
        stray.write(b"stray").await.unwrap();
        let stray = stray.finish().await.unwrap().persist(&blobs).await.unwrap();
        let referenced: HashSet<String> = [id.clone(), joined].into_iter().collect();
        // Within the grace period nothing is swept (another node may be about to commit it).
        assert_eq!(
            blobs
                .sweep(&referenced, Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(blobs.sweep(&referenced, Duration::ZERO).await.unwrap(), 1);
        assert!(!blobs.path(&stray).exists());
        assert!(blobs.path(&id).exists());
    }

    #[tokio::test]
    async fn leftover_tmp_files_are_emptied_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), Duration::ZERO).await.unwrap();
        let mut w = blobs.create(false, None).await.unwrap();
        w.write(b"interrupted").await.unwrap();
        std::mem::forget(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            1
        );
        Blobs::open(dir.path(), Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            1
        );
        Blobs::open(dir.path(), Duration::ZERO).await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
