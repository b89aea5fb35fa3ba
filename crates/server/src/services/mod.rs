//! The service adapters. JSON 1.1, Query and REST-JSON services implement
//! [`crate::pipeline::Service`]; S3 (REST-XML, streaming bodies) has its own router. No
//! adapter imports another: what two services share lives in [`crate::federation`].

pub(crate) mod iam;
pub(crate) mod identitypool;
pub(crate) mod organizations;
pub(crate) mod s3;
pub(crate) mod sns;
pub(crate) mod sts;
pub(crate) mod sync;
pub(crate) mod userpool;
