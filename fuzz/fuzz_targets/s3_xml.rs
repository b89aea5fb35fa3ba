//! Any request document is parsed or refused as MalformedXML by every S3 document parser,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cognate_s3::xml::delete_objects(data);
    let _ = cognate_s3::xml::complete_multipart(data);
    let _ = cognate_s3::xml::create_bucket_location(data);
});
