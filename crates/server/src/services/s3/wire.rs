//! S3's HTTP details: XML replies, dates, stored headers, checksums and `Content-MD5`,
//! ranges and conditional requests, request documents and object bodies.

use super::*;

pub(super) const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Objects up to this size are read in one go; larger ones stream.
pub(super) const SMALL_OBJECT: u64 = 256 * 1024;

/// How much of a large object is read per body frame.
pub(super) const READ_CHUNK: usize = 256 * 1024;

/// Headers kept with an object and returned by GET/HEAD.
pub(super) const STORED_HEADERS: [&str; 7] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
];

/// The canonical user id S3 shows as an owner: stable per account, 64 hex digits.
pub(super) fn canonical_id(account: &str) -> String {
    sigv4::sha256_hex(format!("cognate-canonical-user:{account}").as_bytes())
}

pub(super) fn xml_response(
    status: StatusCode,
    root: &str,
    inner: impl FnOnce(&mut XmlWriter),
) -> Response<Body> {
    let mut w = XmlWriter::new();
    inner(&mut w);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{XMLNS}\">{}</{root}>",
        w.finish()
    );
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    res
}

pub(super) fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

pub(super) fn set_header(res: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        res.headers_mut().insert(n, v);
    }
}

pub(super) fn iso8601(millis: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub(super) fn http_date(millis: i64) -> String {
    let secs = u64::try_from(millis / 1000).unwrap_or(0);
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The headers stored with an object: content headers and `x-amz-meta-*`.
pub(super) fn stored_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut metadata_size = 0;
    for (name, value) in headers {
        let name = name.as_str();
        let keep = STORED_HEADERS.contains(&name) || name.starts_with("x-amz-meta-");
        if !keep {
            continue;
        }
        let Ok(value) = value.to_str() else {
            return Err(invalid_argument(format!(
                "Header {name} has an invalid value"
            )));
        };
        let value = if name == "content-encoding" {
            // aws-chunked describes the upload, not the object; the rest is kept as sent.
            let rest: Vec<&str> = value
                .split(',')
                .filter(|e| !e.trim().eq_ignore_ascii_case("aws-chunked"))
                .collect();
            let rest = rest.join(",");
            let rest = rest.trim();
            if rest.is_empty() {
                continue;
            }
            rest.to_owned()
        } else {
            value.to_owned()
        };
        if let Some(meta) = name.strip_prefix("x-amz-meta-") {
            metadata_size += meta.len() + value.len();
        }
        out.push((name.to_owned(), value));
    }
    if metadata_size > s3::MAX_USER_METADATA {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(out)
}

pub(super) fn encode_headers(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn decode_headers(text: &str) -> Vec<(String, String)> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Which additional checksum an upload carries: `(algorithm, expected value if in a header)`.
pub(super) fn requested_checksum(
    headers: &HeaderMap,
) -> Result<Option<(ChecksumAlgorithm, Option<String>)>, ApiError> {
    let mut found = None;
    for algorithm in ChecksumAlgorithm::ALL {
        if let Some(v) = headers.get(algorithm.header()) {
            if found.is_some() {
                return Err(invalid_argument(
                    "Expecting a single x-amz-checksum- header",
                ));
            }
            let v = v.to_str().unwrap_or_default().to_owned();
            found = Some((algorithm, Some(v)));
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    if let Some(trailer) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        let algorithm = ChecksumAlgorithm::from_header(trailer.trim()).ok_or_else(|| {
            invalid_argument("The value specified in the x-amz-trailer header is not supported")
        })?;
        return Ok(Some((algorithm, None)));
    }
    if let Some(name) = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|v| v.to_str().ok())
    {
        let algorithm = ChecksumAlgorithm::from_name(name)
            .ok_or_else(|| invalid_argument("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"))?;
        return Ok(Some((algorithm, None)));
    }
    Ok(None)
}

/// Puts an object's checksum (and its type, `FULL_OBJECT` or `COMPOSITE`) among its stored
/// headers, in place of any it had.
pub(super) fn set_checksum(
    headers: &mut Vec<(String, String)>,
    algorithm: ChecksumAlgorithm,
    value: &str,
    kind: &str,
) {
    headers.retain(|(n, _)| !n.starts_with("x-amz-checksum-"));
    headers.push((algorithm.header().to_owned(), value.to_owned()));
    headers.push(("x-amz-checksum-type".to_owned(), kind.to_owned()));
}

/// The algorithm of an object's stored checksum of all its bytes, if it has one.
pub(super) fn full_object_checksum(headers: &[(String, String)]) -> Option<ChecksumAlgorithm> {
    if !headers
        .iter()
        .any(|(n, v)| n == "x-amz-checksum-type" && v == "FULL_OBJECT")
    {
        return None;
    }
    headers
        .iter()
        .find_map(|(n, _)| ChecksumAlgorithm::from_header(n))
}

/// The checksum algorithm a request names in `x-amz-checksum-algorithm`.
pub(super) fn checksum_algorithm(
    headers: &HeaderMap,
) -> Result<Option<ChecksumAlgorithm>, ApiError> {
    match headers
        .get("x-amz-checksum-algorithm")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None => Ok(None),
        Some(name) => ChecksumAlgorithm::from_name(name).map(Some).ok_or_else(|| {
            invalid_argument("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
        }),
    }
}

/// The `Content-MD5` header, decoded.
pub(super) fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    let Some(v) = headers.get("content-md5") else {
        return Ok(None);
    };
    let invalid = || {
        err(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The Content-MD5 you specified was invalid.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| invalid())?;
    let md5: [u8; 16] = decoded.try_into().map_err(|_| invalid())?;
    Ok(Some(md5))
}

pub(super) fn parse_range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(ranges) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if ranges.contains(',') {
        // S3 serves one range; several are answered with the whole object.
        return Ok(None);
    }
    let Some((start, end)) = ranges.split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        err(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range is not satisfiable",
        )
    };
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(Some((size.saturating_sub(suffix), size - 1)));
    }
    let Ok(start) = start.parse::<u64>() else {
        return Ok(None);
    };
    let end = if end.is_empty() {
        u64::MAX
    } else {
        match end.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end.min(size - 1))))
}

pub(super) fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|e| e == "*" || e.trim_matches('"') == etag.trim_matches('"'))
}

pub(super) fn parse_http_date(v: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(v).ok()?;
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Evaluates the conditional headers of a GET/HEAD: `Ok(None)` to serve, `Ok(Some(304))`
/// for not modified, `Err` for a failed precondition.
pub(super) fn preconditions(
    headers: &HeaderMap,
    row: &ObjectRow,
) -> Result<Option<StatusCode>, ApiError> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let modified_secs = row.last_modified / 1000;
    let failed = || {
        err(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let if_match = get("if-match");
    if let Some(list) = if_match
        && !etag_matches(list, &row.etag)
    {
        return Err(failed());
    }
    if if_match.is_none()
        && let Some(since) = get("if-unmodified-since").and_then(parse_http_date)
        && modified_secs > since
    {
        return Err(failed());
    }
    let if_none_match = get("if-none-match");
    if let Some(list) = if_none_match
        && etag_matches(list, &row.etag)
    {
        return Ok(Some(StatusCode::NOT_MODIFIED));
    }
    if if_none_match.is_none()
        && let Some(since) = get("if-modified-since").and_then(parse_http_date)
        && modified_secs <= since
    {
        return Ok(Some(StatusCode::NOT_MODIFIED));
    }
    Ok(None)
}

/// Reads a request document (bucket configuration, policy, key list), refusing large ones.
pub(super) async fn read_document(body: Body) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, s3::xml::MAX_DOCUMENT)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(err(
            StatusCode::BAD_REQUEST,
            "MaxMessageLengthExceeded",
            "Your request was too big.",
        )),
        Err(e) if crate::listener::stalled(&*e) => Err(crate::context::request_timeout()),
        Err(_) => Err(err(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "The request body could not be read",
        )),
    }
}

/// `len` bytes of an object file from `start`: read at once (one blocking call) when small,
/// streamed otherwise (a large object never sits in memory).
pub(super) async fn read_object(
    path: std::path::PathBuf,
    start: u64,
    len: u64,
) -> std::io::Result<Body> {
    if len <= SMALL_OBJECT {
        let buf = tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Seek as _};
            let mut file = std::fs::File::open(path)?;
            if start > 0 {
                file.seek(std::io::SeekFrom::Start(start))?;
            }
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        return Ok(Body::from(buf));
    }
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_CHUNK);
    Ok(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=50-1000", 100).unwrap(), Some((50, 99)));
        // Unparseable or multiple ranges: the whole object.
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=9-1", 100).unwrap(), None);
        assert_eq!(
            parse_range("bytes=100-", 100).unwrap_err().code,
            "InvalidRange"
        );
        assert_eq!(
            parse_range("bytes=0-0", 0).unwrap_err().code,
            "InvalidRange"
        );
    }
}
