//! TLS to the store's database with rustls (the `ring` provider only): what each of libpq's
//! `sslmode`s verifies, as rustls client configurations.
//!
//! - `verify-full`: the server's chain must end at a root of `sslrootcert`, and its
//!   certificate must name the connection's `host` (rustls' own WebPKI verifier);
//! - `verify-ca`: the chain must end at such a root; any name is accepted;
//! - `require`: encrypted, nothing about the certificate is checked (as libpq does: an active
//!   attacker can read everything), only that the server holds the key it presented.
//!
//! In every mode the handshake's signatures are checked with the provider's algorithms.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What a TLS connection verifies of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verify {
    /// Nothing (`sslmode=require` without a root).
    Nothing,
    /// The chain up to a trusted root (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    ChainAndName,
}

/// The roots of `sslrootcert`: every certificate of a PEM file.
pub(super) fn load_roots(file: &Path) -> Result<RootCertStore, String> {
    let shown = file.display();
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("sslrootcert {shown}: cannot read it: {e}"))?;
    for certificate in certificates {
        let certificate =
            certificate.map_err(|e| format!("sslrootcert {shown}: not a PEM file: {e}"))?;
        roots
            .add(certificate)
            .map_err(|e| format!("sslrootcert {shown}: a certificate that does not parse: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sslrootcert {shown}: no certificate in it (a PEM file of root certificates)"
        ));
    }
    Ok(roots)
}

/// The `ring` provider. rustls 0.23.48 deprecates it for want of post-quantum key exchange
/// (aws-lc-rs has it), but aws-lc needs cmake and a long C build: the classical key exchanges
/// (X25519, P-256, P-384) it has are what PostgreSQL's OpenSSL offers by default anyway.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `verify` with `roots` (needed unless nothing is verified).
pub(super) fn client_config(
    verify: Verify,
    roots: Option<RootCertStore>,
) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let roots = Arc::new(roots.unwrap_or_else(RootCertStore::empty));
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::ChainAndName => {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("TLS: {e}"))?
        }
        Verify::Chain => Arc::new(ChainOnly { roots, provider }),
        Verify::Nothing => Arc::new(Unverified { provider }),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `verify-ca`: the chain must end at a trusted root; the name is not checked.
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

/// `require`: the certificate is not checked, only the handshake's signatures.
struct Unverified {
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for ChainOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainOnly")
    }
}

impl fmt::Debug for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unverified")
    }
}

/// The handshake-signature checks every mode makes.
macro_rules! signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &certificate,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    signatures!();
}

impl ServerCertVerifier for Unverified {
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

    signatures!();
}
