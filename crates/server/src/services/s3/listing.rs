//! Object listings (v1 and v2): prefixes, delimiters, markers and pages.

use super::*;

/// Percent-encoding for keys in `encoding-type=url` listings: all but unreserved and `/`.
pub(super) const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// One listing page: objects and common prefixes in key order.
pub(super) struct Listing {
    pub(super) contents: Vec<ObjectRow>,
    pub(super) prefixes: Vec<String>,
    pub(super) truncated: bool,
    /// The last key or common prefix returned.
    pub(super) last: Option<String>,
}

/// The least string greater than every string that starts with `s`.
pub(super) fn successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Lists `bucket` as S3 does: keys under `prefix` after `after`, keys containing
/// `delimiter` past the prefix rolled up into common prefixes, at most `max` entries.
pub(super) async fn list(
    store: &Store,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    max: usize,
) -> Result<Listing, ApiError> {
    let mut listing = Listing {
        contents: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        last: None,
    };
    // `max-keys=0` asks for nothing, and S3 answers an untruncated empty page.
    if max == 0 {
        return Ok(listing);
    }
    // Where to read from: the prefix itself (inclusive) or past the marker.
    let (mut cursor, mut inclusive) = if after < prefix {
        (prefix.to_owned(), true)
    } else {
        (after.to_owned(), false)
    };
    // A marker that is a common prefix skips everything under it.
    if !inclusive
        && let Some(d) = delimiter
        && let Some(rest) = after.strip_prefix(prefix)
        && rest.ends_with(d)
        && let Some(next) = successor(after)
    {
        cursor = next;
        inclusive = true;
    }
    const BATCH: i64 = 1000;
    'outer: loop {
        let rows = store
            .list_objects(bucket, &cursor, inclusive, BATCH)
            .await
            .map_err(internal)?;
        let fetched = rows.len();
        for row in rows {
            let Some(rest) = row.key.strip_prefix(prefix) else {
                // Keys sort after the prefix's range: nothing further matches.
                break 'outer;
            };
            if let Some(d) = delimiter.filter(|d| !d.is_empty())
                && let Some(at) = rest.find(d)
            {
                let common = format!("{prefix}{}", rest.get(..at + d.len()).unwrap_or(rest));
                if listing.prefixes.last() == Some(&common) {
                    cursor = row.key;
                    inclusive = false;
                    continue;
                }
                if listing.contents.len() + listing.prefixes.len() >= max {
                    listing.truncated = true;
                    break 'outer;
                }
                listing.last = Some(common.clone());
                listing.prefixes.push(common.clone());
                match successor(&common) {
                    Some(next) => {
                        cursor = next;
                        inclusive = true;
                        continue 'outer;
                    }
                    None => {
                        cursor = row.key;
                        inclusive = false;
                        continue;
                    }
                }
            }
            if listing.contents.len() + listing.prefixes.len() >= max {
                listing.truncated = true;
                break 'outer;
            }
            cursor = row.key.clone();
            inclusive = false;
            listing.last = Some(row.key.clone());
            listing.contents.push(row);
        }
        if fetched < BATCH as usize {
            break;
        }
    }
    Ok(listing)
}

/// What every listing request gives: `prefix`, `delimiter`, `max-keys`, `encoding-type=url`.
pub(super) struct ListParams {
    pub(super) prefix: String,
    pub(super) delimiter: Option<String>,
    pub(super) max_keys: i64,
    pub(super) url: bool,
}

/// A key or prefix as a listing shows it: percent-encoded under `encoding-type=url`.
pub(super) fn encode_key(url: bool, s: &str) -> String {
    if url {
        utf8_percent_encode(s, KEY_ENCODE).to_string()
    } else {
        s.to_owned()
    }
}

impl S3<'_, '_> {
    /// Reads a listing's parameters and authorizes `action` on the bucket with S3's listing
    /// condition keys (`s3:prefix`, `s3:delimiter`, `s3:max-keys`).
    pub(super) async fn list_params(
        &self,
        action: &str,
        bucket: &Bucket,
    ) -> Result<ListParams, ApiError> {
        let prefix = self.req.param("prefix").unwrap_or("").to_owned();
        let delimiter = self
            .req
            .param("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        let max_keys = match self.req.param("max-keys") {
            None => 1000,
            Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                invalid_argument("Provided max-keys not an integer or within integer range")
            })?,
        };
        let mut extra = vec![("s3:prefix".to_owned(), vec![prefix.clone()])];
        if let Some(d) = &delimiter {
            extra.push(("s3:delimiter".to_owned(), vec![d.clone()]));
        }
        extra.push(("s3:max-keys".to_owned(), vec![max_keys.to_string()]));
        self.allow(action, &self.req.bucket_arn(), bucket, extra)
            .await?;
        let url = match self.req.param("encoding-type") {
            None => false,
            Some("url") => true,
            Some(_) => {
                return Err(invalid_argument(
                    "Invalid Encoding Method specified in Request",
                ));
            }
        };
        Ok(ListParams {
            prefix,
            delimiter,
            max_keys,
            url,
        })
    }

    pub(super) async fn list_objects(&mut self, v2: bool) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        let ListParams {
            prefix,
            delimiter,
            max_keys,
            url,
        } = self.list_params("s3:ListBucket", &bucket).await?;
        let enc = |s: &str| encode_key(url, s);
        let max = usize::try_from(max_keys.min(1000)).unwrap_or(1000);
        let token = self.req.param("continuation-token").map(str::to_owned);
        let after = if v2 {
            match &token {
                Some(t) => token_position(t)?,
                None => self.req.param("start-after").unwrap_or("").to_owned(),
            }
        } else {
            self.req.param("marker").unwrap_or("").to_owned()
        };
        let listing = list(
            self.store(),
            &self.req.bucket,
            &prefix,
            delimiter.as_deref(),
            &after,
            max,
        )
        .await?;
        let fetch_owner = !v2 || self.req.param("fetch-owner") == Some("true");
        let owner_id = canonical_id(&bucket.row.account_id);
        let name = self.req.bucket.clone();
        let start_after = self.req.param("start-after").map(str::to_owned);
        let marker = self.req.param("marker").unwrap_or("").to_owned();
        Ok(xml_response(StatusCode::OK, "ListBucketResult", |w| {
            w.element("Name", &name);
            w.element("Prefix", &enc(&prefix));
            if v2 {
                if let Some(t) = &token {
                    w.element("ContinuationToken", t);
                }
                if let Some(s) = &start_after {
                    w.element("StartAfter", &enc(s));
                }
                w.element(
                    "KeyCount",
                    &(listing.contents.len() + listing.prefixes.len()).to_string(),
                );
            } else {
                w.element("Marker", &enc(&marker));
            }
            w.element("MaxKeys", &max_keys.to_string());
            if let Some(d) = &delimiter {
                w.element("Delimiter", &enc(d));
            }
            if url {
                w.element("EncodingType", "url");
            }
            w.element(
                "IsTruncated",
                if listing.truncated { "true" } else { "false" },
            );
            if listing.truncated
                && let Some(last) = &listing.last
            {
                if v2 {
                    w.element("NextContinuationToken", &continuation_token(last));
                } else if delimiter.is_some() {
                    w.element("NextMarker", &enc(last));
                }
            }
            for o in &listing.contents {
                w.nest("Contents", |w| {
                    w.element("Key", &enc(&o.key));
                    w.element("LastModified", &iso8601(o.last_modified));
                    w.element("ETag", &o.etag);
                    w.element("Size", &o.size.to_string());
                    if fetch_owner {
                        w.nest("Owner", |w| {
                            w.element("ID", &owner_id);
                            w.element("DisplayName", &bucket.row.account_id);
                        });
                    }
                    w.element("StorageClass", "STANDARD");
                });
            }
            for p in &listing.prefixes {
                w.nest("CommonPrefixes", |w| {
                    w.element("Prefix", &enc(p));
                });
            }
        }))
    }
}

/// The continuation token of a listing that ended at `last` (a key, prefix or bucket name).
pub(super) fn continuation_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

/// Where a continuation token says a listing goes on from; `InvalidArgument` when it is none
/// of ours.
pub(super) fn token_position(token: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_argument("The continuation token provided is incorrect"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn successor_bounds_every_extension() {
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor("photos/2024/").as_deref(), Some("photos/20240"));
        let s = successor("x\u{D7FF}").unwrap();
        assert_eq!(s, "x\u{E000}");
        assert_eq!(successor("\u{10FFFF}"), None);
        assert!("a/zzz" < successor("a/").unwrap().as_str());
    }
}
