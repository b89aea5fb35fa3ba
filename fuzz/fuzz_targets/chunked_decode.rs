//! Any aws-chunked body, split anywhere, decodes or is refused, never a panic; what it decodes
//! is never more than was sent.
#![no_main]

use bytes::Bytes;
use cognate_sigv4::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (split, body) = data.split_first().map_or((1, data), |(s, b)| (usize::from(*s).max(1), b));
    let mut decoder = ChunkedDecoder::new(None).declared(&["x-amz-checksum-crc32", "x-amz-checksum-sha256"]);
    let mut out = Vec::new();
    let mut failed = false;
    for piece in body.chunks(split) {
        if decoder.feed(Bytes::copy_from_slice(piece), &mut out).is_err() {
            failed = true;
            break;
        }
    }
    let decoded: usize = out.iter().map(Bytes::len).sum();
    assert!(decoded <= body.len());
    if !failed {
        let _ = decoder.finish();
    }
});
