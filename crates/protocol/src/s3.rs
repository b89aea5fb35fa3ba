//! The S3 (REST-XML) error shape.

use bytes::Bytes;
use http::{HeaderValue, Response, header};

use crate::{ApiError, XmlWriter};

/// `<Error><Code/><Message/><Resource/><RequestId/></Error>`.
pub fn render_s3_error(err: &ApiError, resource: &str, request_id: &str) -> Response<Bytes> {
    let mut w = XmlWriter::new();
    w.nest("Error", |w| {
        w.element("Code", &err.code);
        w.element("Message", &err.message);
        for (element, value) in &err.details {
            w.element(element, value);
        }
        w.element("Resource", resource);
        w.element("RequestId", request_id);
    });
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", w.finish());
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = err.status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    for (name, value) in &err.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            res.headers_mut().insert(*name, value);
        }
    }
    res
}
