//! TLS client configuration: the one builder for every protocol (reqwest's HTTPS, HTTP/2 and
//! `wss://`).
//!
//! Certificates are verified with the platform verifier and the ring provider, unless the run
//! was started with `--insecure`: then any certificate is accepted but handshake signatures are
//! still checked. A configuration is built once per run (HTTP, in the driver's shared state) or
//! per process (`wss://`, on the first connect) and then shared read-only: loading the system
//! roots costs milliseconds, and thousands of users must not repeat it.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;

/// ALPN for HTTP/1.1 only: plain HTTP clients, and every WebSocket upgrade (an HTTP/1.1
/// request: ALPN must never pick h2).
pub const HTTP1: &[&[u8]] = &[b"http/1.1"];
/// ALPN for a client that prefers HTTP/2 (`http { http2 #true }`).
pub const H2: &[&[u8]] = &[b"h2", b"http/1.1"];

static VERIFIED: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
static INSECURE: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();

/// The client configuration for `wss://` (built on first use, then shared).
pub(super) fn ws_config(insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let cell = if insecure { &INSECURE } else { &VERIFIED };
    cell.get_or_init(|| client_config(insecure, HTTP1).map(Arc::new))
        .clone()
}

/// A client configuration offering `alpn`; `insecure` accepts any certificate.
pub fn client_config(insecure: bool, alpn: &[&[u8]]) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_platform_verifier()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// `--insecure`: any certificate is accepted, but handshake signatures are still
/// checked (so the session is at least encrypted to whoever answered).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_config_is_built_once_and_shared() {
        let a = ws_config(true).expect("insecure config builds");
        let b = ws_config(true).expect("insecure config builds");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
