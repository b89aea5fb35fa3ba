//! Object tags: S3's limits, the `x-amz-tagging` header's encoding, and the `Tagging`
//! document.

/// An object carries at most this many tags; a bucket, [`MAX_BUCKET_TAGS`].
pub const MAX_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
/// Tag keys are 1 to 128 characters, values at most 256.
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 256;

/// Why a tag set is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagsInvalid {
    TooMany,
    Key,
    Value,
    /// `aws:` keys are AWS's own.
    Reserved,
    Duplicate,
}

/// Checks an object's tag set against S3's rules.
pub fn check(tags: &[(String, String)]) -> Result<(), TagsInvalid> {
    check_at_most(tags, MAX_TAGS)
}

/// Checks a tag set of at most `max` tags against S3's rules.
pub fn check_at_most(tags: &[(String, String)], max: usize) -> Result<(), TagsInvalid> {
    if tags.len() > max {
        return Err(TagsInvalid::TooMany);
    }
    for (i, (key, value)) in tags.iter().enumerate() {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(TagsInvalid::Key);
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(TagsInvalid::Reserved);
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(TagsInvalid::Value);
        }
        if tags.iter().take(i).any(|(k, _)| k == key) {
            return Err(TagsInvalid::Duplicate);
        }
    }
    Ok(())
}

/// The tags an `x-amz-tagging` header carries: URL query parameters (`k1=v1&k2=v2`).
pub fn from_header(value: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(value.as_bytes())
        .into_owned()
        .collect()
}

/// A tag set in the `x-amz-tagging` encoding, as objects store it.
pub fn to_header(tags: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(tags)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn limits_as_s3_has_them() {
        assert_eq!(check(&tags(&[("a", ""), ("b", "x y+z/=")])), Ok(()));
        let ten: Vec<_> = (0..10).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(check(&ten), Ok(()));
        let eleven: Vec<_> = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(check(&eleven), Err(TagsInvalid::TooMany));
        assert_eq!(check(&tags(&[("", "v")])), Err(TagsInvalid::Key));
        let long_key = "é".repeat(129);
        assert_eq!(check(&tags(&[(&long_key, "v")])), Err(TagsInvalid::Key));
        assert_eq!(
            check(&tags(&[(&"é".repeat(128), &"é".repeat(256))])),
            Ok(())
        );
        assert_eq!(
            check(&tags(&[("k", &"v".repeat(257))])),
            Err(TagsInvalid::Value)
        );
        assert_eq!(check(&tags(&[("AWS:x", "v")])), Err(TagsInvalid::Reserved));
        assert_eq!(
            check(&tags(&[("k", "1"), ("k", "2")])),
            Err(TagsInvalid::Duplicate)
        );
    }

    #[test]
    fn header_encoding_round_trips() {
        let set = tags(&[("project x", "a&b=c"), ("é", "")]);
        let header = to_header(&set);
        assert_eq!(header, "project+x=a%26b%3Dc&%C3%A9=");
        assert_eq!(from_header(&header), set);
        assert_eq!(from_header("a=1&b"), tags(&[("a", "1"), ("b", "")]));
    }
}
