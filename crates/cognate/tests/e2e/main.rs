//! End-to-end tests: the real `cognate` binary, real AWS clients. One test binary on purpose
//! (each binary links slowly); add modules here rather than new files under `tests/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;
mod lifecycle;
mod protocols;
mod s3;
mod sts;
