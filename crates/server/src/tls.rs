//! HTTPS: the server's certificate and key (rustls), either the operator's PEM files or, for
//! development, a certificate from a local CA generated once into `<data_dir>/tls`. The CA's
//! private key signs that one certificate and is then dropped: trusting `ca.pem` lets a
//! machine trust this server and nothing else anyone could mint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::bootstrap::{StartError, write_private};
use crate::config::Config;

/// The files development TLS keeps in `<data_dir>/tls`.
const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "server.pem";
const KEY_FILE: &str = "server-key.pem";

/// What HTTPS serves with, and for development the CA a client must trust.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub dev_ca: Option<PathBuf>,
}

fn config_error(message: String) -> StartError {
    StartError::Config(message)
}

/// The server's TLS settings, if it serves HTTPS.
pub fn load(config: &Config) -> Result<Option<Tls>, StartError> {
    let (cert, key, dev_ca) = match (&config.tls_cert, &config.tls_key, config.tls_dev) {
        (None, None, false) => return Ok(None),
        (Some(_), _, true) | (_, Some(_), true) => {
            return Err(config_error(
                "--tls-dev generates its own certificate: give it without --tls-cert/--tls-key"
                    .into(),
            ));
        }
        (Some(cert), Some(key), false) => (cert.clone(), key.clone(), None),
        (None, None, true) => {
            let dir = config.data_dir.join("tls");
            generate_dev(&dir, config)?;
            (
                dir.join(CERT_FILE),
                dir.join(KEY_FILE),
                Some(dir.join(CA_FILE)),
            )
        }
        _ => {
            return Err(config_error(
                "--tls-cert and --tls-key must be given together".into(),
            ));
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            config_error(format!(
                "reading the TLS certificate {}: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(config_error(format!(
            "the TLS certificate file {} holds no certificate",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| config_error(format!("reading the TLS key {}: {e}", key.display())))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| config_error(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(|e| {
        config_error(format!(
            "the TLS key {} does not fit the certificate {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        dev_ca,
    }))
}

/// The names the development certificate is for: this machine's loopback names, the listen
/// address unless it is a wildcard, and the public URL's host.
fn dev_names(config: &Config) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !config.listen.ip().is_unspecified() {
        names.push(config.listen.ip().to_string());
    }
    if let Some(host) = config
        .public_url
        .as_deref()
        .and_then(|u| u.split_once("://"))
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
        .map(|authority| match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
            None => authority
                .rsplit_once(':')
                .map_or(authority, |(h, _)| h)
                .to_owned(),
        })
        .filter(|h| !h.is_empty())
    {
        names.push(host);
    }
    names.sort();
    names.dedup();
    names
}

/// Creates the development CA and the server's certificate in `dir`, unless a certificate is
/// already there (then it is kept, so machines that trust the CA keep trusting the server).
fn generate_dev(dir: &Path, config: &Config) -> Result<(), StartError> {
    if [CA_FILE, CERT_FILE, KEY_FILE]
        .iter()
        .all(|f| dir.join(f).exists())
    {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| StartError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    let failed =
        |e: rcgen::Error| config_error(format!("generating the development TLS certificate: {e}"));
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Cognate development CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(failed)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(failed)?;
    let mut leaf = rcgen::CertificateParams::new(dev_names(config)).map_err(failed)?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "Cognate development server");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = leaf.signed_by(&leaf_key, &ca).map_err(failed)?;
    // Partial output of an earlier attempt is replaced.
    for file in [CA_FILE, CERT_FILE, KEY_FILE] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    write_private(&dir.join(KEY_FILE), leaf_key.serialize_pem().as_bytes())?;
    write_private(&dir.join(CERT_FILE), cert.pem().as_bytes())?;
    write_private(&dir.join(CA_FILE), ca.pem().as_bytes())?;
    Ok(())
}
