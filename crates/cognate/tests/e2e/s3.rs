//! S3 with aws-sdk-s3 (whose uploads carry CRC32 checksums, in headers or aws-chunked
//! trailers) and raw HTTP: round trips, multipart ETags, and durability across `kill -9`.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::harness::{Options, Server};

fn md5_hex(data: &[u8]) -> String {
    // MD5 through the server's own ETag is what is under test; compute it here with the
    // `openssl`-free reference: `md5sum` of the bytes.
    use std::io::Write as _;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_owned()
}

#[tokio::test]
async fn aws_sdk_s3_round_trips_objects_and_multipart_uploads() {
    let server = Server::start();
    let s3 = server.root_s3();
    s3.create_bucket().bucket("rust-sdk").send().await.unwrap();

    // In-memory bodies: checksum in a header.
    let small: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let put = s3
        .put_object()
        .bucket("rust-sdk")
        .key("dir/small.bin")
        .content_type("application/x-small")
        .metadata("origin", "rust")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(&small)).as_str())
    );
    let got = s3
        .get_object()
        .bucket("rust-sdk")
        .key("dir/small.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-small"));
    assert_eq!(
        got.metadata().unwrap().get("origin").map(String::as_str),
        Some("rust")
    );
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), small);

    // A file body streams as aws-chunked with the CRC32 in a trailer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamed.bin");
    let streamed: Vec<u8> = (0..3_000_000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(&path, &streamed).unwrap();
    let put = s3
        .put_object()
        .bucket("rust-sdk")
        .key("streamed.bin")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(&streamed)).as_str())
    );
    let got = s3
        .get_object()
        .bucket("rust-sdk")
        .key("streamed.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), streamed);

    // Multipart: a 5 MiB part and a small last part; S3's multipart ETag.
    let part1 = vec![7u8; 5 * 1024 * 1024];
    let part2 = b"tail".to_vec();
    let up = s3
        .create_multipart_upload()
        .bucket("rust-sdk")
        .key("multi.bin")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, data) in [(1, &part1), (2, &part2)] {
        let out = s3
            .upload_part()
            .bucket("rust-sdk")
            .key("multi.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let done = s3
        .complete_multipart_upload()
        .bucket("rust-sdk")
        .key("multi.bin")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut md5s = Vec::new();
    for p in [&part1, &part2] {
        md5s.extend(hex_decode(&md5_hex(p)));
    }
    assert_eq!(
        done.e_tag(),
        Some(format!("\"{}-2\"", md5_hex(&md5s)).as_str())
    );
    let got = s3
        .get_object()
        .bucket("rust-sdk")
        .key("multi.bin")
        .range("bytes=5242878-5242881")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_range(), Some("bytes 5242878-5242881/5242884"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &[7, 7, b't', b'a']
    );

    let listed = s3
        .list_objects_v2()
        .bucket("rust-sdk")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/small.bin", "multi.bin", "streamed.bin"]);

    // A wrong secret is refused with S3's error.
    let (id, secret) = server.root_credentials();
    let wrong = server.s3(&id, &secret.chars().rev().collect::<String>(), None);
    let err = wrong
        .get_object()
        .bucket("rust-sdk")
        .key("multi.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("SignatureDoesNotMatch")
    );
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn kill_9_keeps_acknowledged_objects_and_drops_interrupted_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    };
    let mut server = Server::start_with(opts.clone());
    let s3 = server.root_s3();
    s3.create_bucket().bucket("durable").send().await.unwrap();
    // Anonymous PUTs are allowed so that a raw client can start an upload and stall.
    s3.put_bucket_policy()
        .bucket("durable")
        .policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::durable/*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let body = vec![42u8; 1024 * 1024];
    s3.put_object()
        .bucket("durable")
        .key("kept.bin")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    // The same key, overwritten by an upload that never finishes.
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::AsyncWriteExt as _;
    let head = format!(
        "PUT /durable/kept.bin HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n",
        8 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![1u8; 3 * 1024 * 1024]).await.unwrap();
    stream.flush().await.unwrap();
    // Wait until the server has written some of it to its temporary file.
    let tmp = dir.path().join("data/objects/tmp");
    for _ in 0..100 {
        if files_under(&tmp)
            .iter()
            .any(|f| f.metadata().unwrap().len() > 0)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(files_under(&tmp).len(), 1, "the upload is in progress");
    server.kill9();
    drop(stream);

    let server = Server::start_with(opts);
    let s3 = server.root_s3();
    let got = s3
        .get_object()
        .bucket("durable")
        .key("kept.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);
    // No trace of the interrupted upload: no temporary file, one object file.
    assert!(files_under(&tmp).is_empty());
    assert_eq!(files_under(&dir.path().join("data/objects/data")).len(), 1);
    let listed = s3.list_objects_v2().bucket("durable").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
}
