//! The XML documents S3 requests carry: `CreateBucketConfiguration`, `Delete`,
//! `CompleteMultipartUpload`. Anything that does not parse is `MalformedXML` to the caller.

use quick_xml::events::Event;

/// The document does not parse or lacks what the operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The longest request document accepted (DeleteObjects' 1,000 keys of 1,024 bytes fit).
pub const MAX_DOCUMENT: usize = 2 * 1024 * 1024;

/// The deepest nesting, the longest element name and the most elements accepted: S3's request
/// documents are a few levels deep with short names (DeleteObjects' 1,000 objects fit), and
/// these bounds keep the work and memory of parsing linear in the document's size.
pub const MAX_DEPTH: usize = 8;
const MAX_NAME: usize = 64;
const MAX_ELEMENTS: usize = 8 * 1024;

/// An element event: its path from the root (local names joined by `/`) and, for a leaf,
/// its text.
pub(crate) enum Item {
    Open(String),
    Text(String, String),
}

/// An element's local name, refused when longer than any S3 document's.
fn element_name(e: &quick_xml::events::BytesStart<'_>) -> Result<String, Malformed> {
    let name = AsRef::<str>::as_ref(&e.local_name()).to_owned();
    if name.len() > MAX_NAME {
        return Err(Malformed);
    }
    Ok(name)
}

pub(crate) fn items(body: &[u8]) -> Result<Vec<Item>, Malformed> {
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut seen_root = false;
    // Whitespace-only text is layout between elements, unless it turns out to be (part of) a
    // leaf's value: a key may be nothing but spaces. It waits here until that is known.
    let mut blank: Option<(String, String)> = None;
    // Appends `value` to the text of the element at `here`, after any whitespace waiting.
    let push_text =
        |out: &mut Vec<Item>, blank: &mut Option<(String, String)>, here: String, value: &str| {
            let mut value = value.to_owned();
            if let Some((p, ws)) = blank.take()
                && p == here
            {
                value.insert_str(0, &ws);
            }
            match out.last_mut() {
                Some(Item::Text(p, v)) if *p == here => v.push_str(&value),
                _ => out.push(Item::Text(here, value)),
            }
        };
    loop {
        match reader.read_event().map_err(|_| Malformed)? {
            Event::Start(e) => {
                if path.is_empty() && seen_root {
                    return Err(Malformed);
                }
                seen_root = true;
                if path.len() >= MAX_DEPTH || out.len() >= MAX_ELEMENTS {
                    return Err(Malformed);
                }
                blank = None;
                let name = element_name(&e)?;
                path.push(name);
                out.push(Item::Open(path.join("/")));
            }
            Event::Empty(e) => {
                if path.len() >= MAX_DEPTH || out.len() >= MAX_ELEMENTS {
                    return Err(Malformed);
                }
                blank = None;
                let name = element_name(&e)?;
                seen_root = true;
                out.push(Item::Open(if path.is_empty() {
                    name
                } else {
                    format!("{}/{name}", path.join("/"))
                }));
            }
            Event::End(_) => {
                let here = path.join("/");
                // Whitespace that was all of a leaf's content is its value.
                if let Some((p, ws)) = blank.take()
                    && p == here
                    && matches!(out.last(), Some(Item::Open(o)) if *o == here)
                {
                    out.push(Item::Text(here, ws));
                }
                path.pop().ok_or(Malformed)?;
            }
            Event::Text(t) => {
                let value = t.xml10_content();
                if path.is_empty() {
                    continue;
                }
                let here = path.join("/");
                if value.trim().is_empty()
                    && !matches!(out.last(), Some(Item::Text(p, _)) if *p == here)
                {
                    match &mut blank {
                        Some((p, ws)) if *p == here => ws.push_str(&value),
                        _ => blank = Some((here, value.into_owned())),
                    }
                } else {
                    push_text(&mut out, &mut blank, here, &value);
                }
            }
            Event::GeneralRef(r) => {
                // An entity or character reference inside text: resolve the predefined ones.
                let resolved = match r.resolve_char_ref().map_err(|_| Malformed)? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::unescape(&format!("&{};", r.xml10_content()))
                        .map_err(|_| Malformed)?
                        .into_owned(),
                };
                push_text(&mut out, &mut blank, path.join("/"), &resolved);
            }
            Event::CData(t) => {
                push_text(&mut out, &mut blank, path.join("/"), &t.xml10_content());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() || !seen_root {
        return Err(Malformed);
    }
    Ok(out)
}

/// `CreateBucketConfiguration`: the `LocationConstraint`, if any. An empty body is fine.
pub fn create_bucket_location(body: &[u8]) -> Result<Option<String>, Malformed> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut location = None;
    for item in items(body)? {
        match item {
            Item::Text(p, v) if p == "CreateBucketConfiguration/LocationConstraint" => {
                location = Some(v)
            }
            Item::Open(p) if !p.starts_with("CreateBucketConfiguration") => return Err(Malformed),
            _ => {}
        }
    }
    Ok(location)
}

/// One object a `Delete` names: its key and, optionally, the version to delete.
pub type DeleteTarget = (String, Option<String>);

/// `Delete`: the objects and whether `Quiet` is set.
pub fn delete_objects(body: &[u8]) -> Result<(Vec<DeleteTarget>, bool), Malformed> {
    let mut keys: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut quiet = false;
    for item in items(body)? {
        match item {
            Item::Open(p) if p == "Delete/Object" => keys.push((None, None)),
            Item::Open(p) if !p.starts_with("Delete") => return Err(Malformed),
            Item::Text(p, v) if p == "Delete/Object/Key" => {
                keys.last_mut().ok_or(Malformed)?.0 = Some(v);
            }
            Item::Text(p, v) if p == "Delete/Object/VersionId" => {
                keys.last_mut().ok_or(Malformed)?.1 = Some(v);
            }
            Item::Text(p, v) if p == "Delete/Quiet" => quiet = v.trim() == "true",
            _ => {}
        }
    }
    let keys: Vec<DeleteTarget> = keys
        .into_iter()
        .map(|(k, v)| Some((k?, v)))
        .collect::<Option<_>>()
        .ok_or(Malformed)?;
    if keys.is_empty() {
        return Err(Malformed);
    }
    Ok((keys, quiet))
}

/// `Tagging`: its tags, in order.
pub fn tagging(body: &[u8]) -> Result<Vec<(String, String)>, Malformed> {
    let mut tags: Vec<(Option<String>, Option<String>)> = Vec::new();
    for item in items(body)? {
        match item {
            Item::Open(p) if p == "Tagging/TagSet/Tag" => tags.push((None, None)),
            Item::Open(p) if !p.starts_with("Tagging") => return Err(Malformed),
            Item::Text(p, v) if p == "Tagging/TagSet/Tag/Key" => {
                tags.last_mut().ok_or(Malformed)?.0 = Some(v);
            }
            Item::Text(p, v) if p == "Tagging/TagSet/Tag/Value" => {
                tags.last_mut().ok_or(Malformed)?.1 = Some(v);
            }
            _ => {}
        }
    }
    // A tag needs its Key; an empty Value element has no text.
    tags.into_iter()
        .map(|(k, v)| Some((k?, v.unwrap_or_default())))
        .collect::<Option<_>>()
        .ok_or(Malformed)
}

/// `VersioningConfiguration`: its `Status` and `MfaDelete`, as given.
pub fn versioning(body: &[u8]) -> Result<(Option<String>, Option<String>), Malformed> {
    let (mut status, mut mfa_delete) = (None, None);
    for item in items(body)? {
        match item {
            Item::Open(p) if !p.starts_with("VersioningConfiguration") => return Err(Malformed),
            Item::Text(p, v) if p == "VersioningConfiguration/Status" => status = Some(v),
            Item::Text(p, v) if p == "VersioningConfiguration/MfaDelete" => mfa_delete = Some(v),
            _ => {}
        }
    }
    Ok((status, mfa_delete))
}

/// `CompleteMultipartUpload`: (part number, ETag) in the order given.
pub fn complete_multipart(body: &[u8]) -> Result<Vec<(i64, String)>, Malformed> {
    let mut parts: Vec<(Option<i64>, Option<String>)> = Vec::new();
    for item in items(body)? {
        match item {
            Item::Open(p) if p == "CompleteMultipartUpload/Part" => parts.push((None, None)),
            Item::Open(p) if !p.starts_with("CompleteMultipartUpload") => return Err(Malformed),
            Item::Text(p, v) if p == "CompleteMultipartUpload/Part/PartNumber" => {
                parts.last_mut().ok_or(Malformed)?.0 =
                    Some(v.trim().parse().map_err(|_| Malformed)?);
            }
            Item::Text(p, v) if p == "CompleteMultipartUpload/Part/ETag" => {
                parts.last_mut().ok_or(Malformed)?.1 = Some(v.trim().to_owned());
            }
            _ => {}
        }
    }
    let parts: Vec<(i64, String)> = parts
        .into_iter()
        .map(|(n, e)| Some((n?, e?)))
        .collect::<Option<_>>()
        .ok_or(Malformed)?;
    if parts.is_empty() {
        return Err(Malformed);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn delete_document_as_boto3_sends_it() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a/b.txt</Key></Object><Object><Key>x &amp; y</Key><VersionId>null</VersionId></Object><Quiet>true</Quiet></Delete>"#;
        let (keys, quiet) = delete_objects(body).unwrap();
        assert_eq!(
            keys,
            vec![
                ("a/b.txt".to_owned(), None),
                ("x & y".to_owned(), Some("null".to_owned()))
            ]
        );
        assert!(quiet);
    }

    #[test]
    fn tagging_document() {
        let body = br#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>"#;
        assert_eq!(
            tagging(body).unwrap(),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new())
            ]
        );
        assert_eq!(tagging(b"<Tagging><TagSet/></Tagging>").unwrap(), vec![]);
        assert_eq!(
            tagging(b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>"),
            Err(Malformed)
        );
    }

    #[test]
    fn versioning_document() {
        let body = br#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>"#;
        assert_eq!(
            versioning(body).unwrap(),
            (Some("Enabled".to_owned()), Some("Disabled".to_owned()))
        );
        assert_eq!(
            versioning(b"<VersioningConfiguration/>").unwrap(),
            (None, None)
        );
        assert_eq!(
            versioning(b"<Other><Status>Enabled</Status></Other>"),
            Err(Malformed)
        );
    }

    #[test]
    fn keys_are_opaque_even_when_they_are_only_spaces() {
        let body = b"<Delete>\n  <Object><Key>   </Key></Object>\n  <Object><Key>  &amp; b </Key></Object>\n  <Object><Key><![CDATA[c]]></Key></Object>\n</Delete>";
        let (keys, quiet) = delete_objects(body).unwrap();
        let keys: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec!["   ".to_owned(), "  & b ".to_owned(), "c".to_owned()]
        );
        assert!(!quiet);
    }

    #[test]
    fn deep_nesting_is_refused_without_quadratic_work() {
        // 180 KB of nested elements once cost memory quadratic in the depth.
        let mut deep = String::from("<Delete>");
        for _ in 0..30_000 {
            deep.push_str("<a>");
        }
        assert_eq!(delete_objects(deep.as_bytes()), Err(Malformed));
        let mut empties = String::from("<Delete>");
        for _ in 0..MAX_DEPTH {
            empties.push_str("<a>");
        }
        empties.push_str("<b/>");
        assert_eq!(delete_objects(empties.as_bytes()), Err(Malformed));
        // Long names, or very many elements, are refused too (each would copy the path).
        let mut long = format!("<{}>", "n".repeat(1_000_000));
        long.push_str(&"<b/>".repeat(250_000));
        assert_eq!(delete_objects(long.as_bytes()), Err(Malformed));
        let many = format!("<Delete>{}</Delete>", "<b/>".repeat(MAX_ELEMENTS + 1));
        assert_eq!(delete_objects(many.as_bytes()), Err(Malformed));
        // A thousand keys, as S3 allows, parse.
        let mut wide = String::from("<Delete>");
        for i in 0..1000 {
            wide.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
        }
        wide.push_str("</Delete>");
        assert_eq!(delete_objects(wide.as_bytes()).unwrap().0.len(), 1000);
    }

    #[test]
    fn complete_document_and_malformed_ones() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"abc"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>"def"</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            complete_multipart(body).unwrap(),
            vec![(1, "\"abc\"".to_owned()), (2, "\"def\"".to_owned())]
        );
        for bad in [
            &b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"[..],
            b"<CompleteMultipartUpload></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part>",
            b"not xml at all",
            b"<Other/>",
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        ] {
            assert_eq!(complete_multipart(bad), Err(Malformed), "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn create_bucket_configuration() {
        assert_eq!(create_bucket_location(b"").unwrap(), None);
        assert_eq!(
            create_bucket_location(
                b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
            )
            .unwrap(),
            Some("eu-west-1".to_owned())
        );
        assert_eq!(create_bucket_location(b"<Nope/>"), Err(Malformed));
    }
}
