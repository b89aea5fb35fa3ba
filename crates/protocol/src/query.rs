//! The AWS Query protocol: form parameters in, XML out.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::ApiError;

/// The decoded parameters of a Query request (URL query and form body together).
#[derive(Debug, Clone, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Reads parameters from the URL query string and an `x-www-form-urlencoded` body.
    pub fn parse(url_query: &str, body: &[u8]) -> Result<Self, ApiError> {
        if std::str::from_utf8(body).is_err() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MalformedQueryString",
                "The query string contains a syntax error.",
            ));
        }
        let mut params: Vec<(String, String)> = form_urlencoded::parse(url_query.as_bytes())
            .into_owned()
            .collect();
        params.extend(form_urlencoded::parse(body).into_owned());
        Ok(QueryParams(params))
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any parameter is nested under `prefix` (`prefix.…`).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.iter().any(|(k, _)| {
            k.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    pub fn version(&self) -> Option<&str> {
        self.get("Version")
    }
}

/// Writes XML elements with escaped text.
#[derive(Debug, Default)]
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter {
            buf: String::with_capacity(256),
        }
    }

    /// `<name>text</name>`
    pub fn element(&mut self, name: &str, text: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self.buf.push_str(&quick_xml::escape::escape(text));
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name>` … `</name>` around what `inner` writes.
    pub fn nest(&mut self, name: &str, inner: impl FnOnce(&mut XmlWriter)) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        inner(self);
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

fn xml_response(status: StatusCode, body: String) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    res
}

/// A successful Query response: `<{Action}Response>` with its `<{Action}Result>` (omitted for
/// operations that return nothing) and `ResponseMetadata/RequestId`.
pub fn render_query(
    action: &str,
    namespace: &str,
    request_id: &str,
    result: Option<&str>,
) -> Response<Bytes> {
    let mut w = XmlWriter::new();
    w.buf
        .push_str(&format!("<{action}Response xmlns=\"{namespace}\">"));
    if let Some(result) = result {
        w.buf
            .push_str(&format!("<{action}Result>{result}</{action}Result>"));
    }
    w.nest("ResponseMetadata", |w| {
        w.element("RequestId", request_id);
    });
    w.buf.push_str(&format!("</{action}Response>"));
    xml_response(StatusCode::OK, w.finish())
}

/// A Query error: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
pub fn render_query_error(err: &ApiError, namespace: &str, request_id: &str) -> Response<Bytes> {
    let mut w = XmlWriter::new();
    w.buf
        .push_str(&format!("<ErrorResponse xmlns=\"{namespace}\">"));
    w.nest("Error", |w| {
        w.element(
            "Type",
            match err.fault {
                crate::Fault::Sender => "Sender",
                crate::Fault::Receiver => "Receiver",
            },
        );
        w.element("Code", &err.code);
        w.element("Message", &err.message);
    });
    w.element("RequestId", request_id);
    w.buf.push_str("</ErrorResponse>");
    xml_response(err.status, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_merge_query_and_body() {
        let p =
            QueryParams::parse("Version=2011-06-15", b"Action=GetCallerIdentity&X=a+b%21").unwrap();
        assert_eq!(p.action(), Some("GetCallerIdentity"));
        assert_eq!(p.version(), Some("2011-06-15"));
        assert_eq!(p.get("X"), Some("a b!"));
    }

    #[test]
    fn non_utf8_body_is_malformed() {
        assert_eq!(
            QueryParams::parse("", b"\xff\xfe").unwrap_err().code,
            "MalformedQueryString"
        );
    }

    #[test]
    fn text_is_escaped() {
        let mut w = XmlWriter::new();
        w.element("Message", "a<b & \"c\"");
        assert_eq!(w.finish(), "<Message>a&lt;b &amp; &quot;c&quot;</Message>");
    }

    #[test]
    fn error_shape_matches_aws() {
        let err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "Could not find operation Nope for version 2011-06-15",
        );
        let res = render_query_error(&err, "https://sts.amazonaws.com/doc/2011-06-15/", "req-1");
        let body = std::str::from_utf8(res.body()).unwrap();
        assert_eq!(
            body,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>Could not find operation Nope for version 2011-06-15</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"
        );
    }
}
