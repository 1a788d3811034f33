//! TLS to the database with rustls, from libpq's keywords: the mode
//! (`sslmode`, `requiressl`), the roots (`sslrootcert`, `system`, else
//! `~/.postgresql/root.crt`, else the system's), revocation lists
//! (`sslcrl`, `sslcrldir`, else `~/.postgresql/root.crl`), a client
//! certificate (`sslcert`/`sslkey`, else `~/.postgresql/postgresql.crt`
//! and `.key` when they exist; `sslcertmode`), `sslsni`, the protocol
//! range and `sslnegotiation=direct`'s ALPN.
//!
//! Unlike libpq, `require` verifies the chain (a certificate that chains to
//! no trusted root is refused), and an `sslcert` named but missing is an
//! error rather than no certificate. A file is named in an error, never
//! quoted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg_params::Params;
use crate::source::display_path;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tls {
    Off,
    On(Box<Settings>),
}

/// Everything a TLS connection is made with; files are read on connect.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Settings {
    /// PEM roots, or `None` for the system's.
    pub root: Option<PathBuf>,
    /// `verify-full`: the name is checked too.
    pub verify_name: bool,
    /// PEM revocation lists: files, and every file of the directories.
    pub crl: Vec<PathBuf>,
    pub crl_dirs: Vec<PathBuf>,
    /// The client's certificate chain and key.
    pub client: Option<(PathBuf, PathBuf)>,
    pub sni: bool,
    /// TLS 1.2 allowed (else 1.3 only), TLS 1.3 allowed (else 1.2 only).
    pub tls12: bool,
    pub tls13: bool,
    /// `sslnegotiation=direct`: TLS at once, with ALPN `postgresql`.
    pub alpn: bool,
}

/// The TLS `params` ask for; `home` holds libpq's default files
/// (`~/.postgresql/`), used when they exist.
pub(super) fn settings(params: &Params, home: Option<&Path>) -> Result<Tls, String> {
    let system = params.get("sslrootcert") == Some("system");
    let mode = params.get("sslmode").unwrap_or(if system {
        "verify-full"
    } else if params.flag("requiressl", false) {
        "require"
    } else {
        "disable"
    });
    let verify_name = match mode {
        "disable" | "allow" | "prefer" if params.get("sslnegotiation") == Some("direct") => {
            return Err(format!(
                "sslnegotiation=direct needs sslmode require, verify-ca or verify-full, not {mode}"
            ))
        }
        "disable" | "allow" | "prefer" => return Ok(Tls::Off),
        "require" | "verify-ca" if system => {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full, not {mode} (as in libpq)"
            ))
        }
        "verify-full" => true,
        _ => false,
    };
    if verify_name && params.get("host").is_none() && params.get("hostaddr").is_some() {
        // The name checked would be the defaulted `localhost`, which the
        // user never gave: refused, as by libpq.
        return Err(
            "sslmode=verify-full needs a host name to check the certificate \
                    against: give host (hostaddr alone has none)"
                .into(),
        );
    }
    let default = |name: &str| {
        home.map(|h| h.join(".postgresql").join(name))
            .filter(|f| f.exists())
    };
    let given = |name: &str| params.get(name).map(PathBuf::from);
    let root = match params.get("sslrootcert") {
        Some("system") => None,
        Some(file) => Some(PathBuf::from(file)),
        None => default("root.crt"),
    };
    if root.is_none() && !system && mode == "verify-ca" {
        // The system's roots would admit any publicly trusted certificate
        // for any name: libpq refuses verify-ca with them, so does this.
        return Err(
            "sslmode=verify-ca needs sslrootcert (or ~/.postgresql/root.crt): \
                    against the system's roots any public certificate, for any name, \
                    would pass; use verify-full for those"
                .into(),
        );
    }
    let (tls12, tls13) = versions(params)?;
    Ok(Tls::On(Box::new(Settings {
        root,
        verify_name,
        crl: given("sslcrl")
            .or_else(|| default("root.crl"))
            .into_iter()
            .collect(),
        crl_dirs: given("sslcrldir").into_iter().collect(),
        client: client(params, home)?,
        sni: params.flag("sslsni", true),
        tls12,
        tls13,
        alpn: params.get("sslnegotiation") == Some("direct"),
    })))
}

/// The client's certificate and key: `sslcert` and `sslkey`, else
/// libpq's `~/.postgresql/postgresql.crt` when it exists (and its `.key`);
/// none with `sslcertmode=disable`, and an error without one under
/// `require` (whether the server asks for it is not checked).
fn client(params: &Params, home: Option<&Path>) -> Result<Option<(PathBuf, PathBuf)>, String> {
    let mode = params.get("sslcertmode").unwrap_or("allow");
    if mode == "disable" {
        return Ok(None);
    }
    let dot = home.map(|h| h.join(".postgresql"));
    let cert = params.get("sslcert").map(PathBuf::from).or_else(|| {
        dot.as_ref()
            .map(|d| d.join("postgresql.crt"))
            .filter(|f| f.exists())
    });
    let Some(cert) = cert else {
        if mode == "require" {
            return Err(
                "sslcertmode=require, and no client certificate: set sslcert (or \
                        PGSSLCERT), or put it in ~/.postgresql/postgresql.crt"
                    .into(),
            );
        }
        return Ok(None);
    };
    let key = params
        .get("sslkey")
        .map(PathBuf::from)
        .unwrap_or_else(|| dot.map_or_else(PathBuf::new, |d| d.join("postgresql.key")));
    Ok(Some((cert, key)))
}

/// Which of TLS 1.2 and 1.3 the protocol range allows (rustls has none
/// older: a lower minimum is 1.2, a lower maximum is refused).
fn versions(params: &Params) -> Result<(bool, bool), String> {
    let min = params.get("ssl_min_protocol_version").unwrap_or("TLSv1.2");
    let max = params.get("ssl_max_protocol_version").unwrap_or("TLSv1.3");
    if matches!(max, "TLSv1" | "TLSv1.1") {
        return Err(format!(
            "ssl_max_protocol_version={max} is not supported: TLS before 1.2 is not built in"
        ));
    }
    let (tls12, tls13) = (min != "TLSv1.3", max == "TLSv1.3");
    if !tls12 && !tls13 {
        return Err(format!(
            "ssl_min_protocol_version={min} is above ssl_max_protocol_version={max}"
        ));
    }
    Ok((tls12, tls13))
}

fn shown(path: &Path) -> String {
    display_path(path)
}

/// A certificate, key or revocation list is at most this big (a large
/// CA's revocation list takes a few MB).
const MAX_TLS_FILE_BYTES: u64 = 64 << 20;

/// A TLS file's bytes: a regular file, opened without blocking (a FIFO or
/// a device put in its place is refused, never waited on or read forever).
fn read(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    super::file::disk::read_regular_at_most(path, MAX_TLS_FILE_BYTES)
        .map_err(|e| format!("cannot read {what} {}: {e}", shown(path)))
}

fn roots(root: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root {
        Some(path) => {
            let pem = read("sslrootcert", path)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", shown(path)))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {}: {e}", shown(path)))?;
            }
        }
        None => {
            // The system's roots are read from SSL_CERT_FILE when it is
            // set, to its end: a FIFO or a device there is refused here
            // first, never waited on or read forever.
            if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
                read("SSL_CERT_FILE", Path::new(&file))?;
            }
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err("no root certificate to verify the server with (set sslrootcert)".into());
    }
    Ok(roots)
}

fn crls(settings: &Settings) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let mut files = settings.crl.clone();
    for dir in &settings.crl_dirs {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read sslcrldir {}: {e}", shown(dir)))?;
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    let mut crls = Vec::new();
    for file in files {
        let pem = read("sslcrl", &file)?;
        for crl in CertificateRevocationListDer::pem_slice_iter(&pem) {
            crls.push(crl.map_err(|e| format!("sslcrl {}: {e}", shown(&file)))?);
        }
    }
    Ok(crls)
}

/// The client's chain and key, read from PEM (a key in PKCS#8, PKCS#1 or
/// SEC1). Like libpq, a key others can read is refused.
fn client_auth(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let pem = read("sslcert", cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslcert {}: {e}", shown(cert)))?;
    if chain.is_empty() {
        return Err(format!("sslcert {} holds no PEM certificate", shown(cert)));
    }
    let bytes = read("sslkey", key)?;
    if let Ok(meta) = std::fs::metadata(key) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode();
        let loose = if meta.uid() == 0 {
            mode & 0o037
        } else {
            mode & 0o077
        };
        if loose != 0 {
            return Err(format!(
                "sslkey {} can be read by others (mode {:o}): make it 0600, as libpq requires",
                shown(key),
                mode & 0o777
            ));
        }
    }
    let encrypted = |marker: &[u8]| bytes.windows(marker.len()).any(|w| w == marker);
    if encrypted(b"ENCRYPTED PRIVATE KEY") || encrypted(b"Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "sslkey {} is encrypted, which is not supported (nor sslpassword): \
             store it decrypted, mode 0600",
            shown(key)
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        format!(
            "sslkey {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            shown(key)
        )
    })?;
    Ok((chain, private))
}

/// The connector for `settings`; every file read here.
pub(super) fn connector(settings: &Settings) -> Result<MakeRustlsConnect, String> {
    let roots = roots(settings.root.as_deref())?;
    let crls = crls(settings)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| e.to_string())?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (settings.tls13, &rustls::version::TLS13),
        (settings.tls12, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter_map(|(on, v)| on.then_some(v))
    .collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            inner: webpki,
            verify_name: settings.verify_name,
        }));
    let mut config = match &settings.client {
        Some((cert, key)) => {
            let (chain, private) = client_auth(cert, key)?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| format!("sslcert {} with sslkey {}: {e}", shown(cert), shown(key)))?
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = settings.sni;
    if settings.alpn {
        config.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    Ok(MakeRustlsConnect::new(config))
}

/// WebPKI's verifier; without `verify_name`, a certificate for another
/// name is accepted when its chain is good (`verify-ca`).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(url: &str, home: Option<&Path>) -> Result<Tls, String> {
        let url = url::Url::parse(url).expect("url");
        let params = super::super::pg_params::resolve(&url, &|_| None, &|_| {
            Err(std::io::ErrorKind::NotFound.into())
        })?;
        settings(&params, home)
    }

    fn on(url: &str, home: Option<&Path>) -> Settings {
        match tls(url, home).expect(url) {
            Tls::On(s) => *s,
            Tls::Off => panic!("{url}: no TLS"),
        }
    }

    #[test]
    fn the_mode_decides_tls_and_the_name_check() {
        assert_eq!(tls("postgres://h/d", None), Ok(Tls::Off));
        assert_eq!(tls("postgres://h/d?sslmode=prefer", None), Ok(Tls::Off));
        assert!(!on("postgres://h/d?sslmode=verify-ca&sslrootcert=/ca.pem", None).verify_name);
        let e = tls("postgres://h/d?sslmode=verify-ca", None).expect_err("no root");
        assert!(e.contains("verify-ca needs sslrootcert"), "{e}");
        assert!(on("postgres://h/d?sslmode=verify-full", None).verify_name);
        assert!(!on("postgres://h/d?requiressl=1", None).verify_name);
        // sslrootcert=system: the system's roots, the name checked; weaker
        // modes refused, as in libpq 16.
        let system = on("postgres://h/d?sslrootcert=system", None);
        assert!(system.verify_name && system.root.is_none());
        let e = tls("postgres://h/d?sslrootcert=system&sslmode=require", None).expect_err("weak");
        assert!(
            e.contains("sslrootcert=system needs sslmode=verify-full"),
            "{e}"
        );
        let e =
            tls("postgres:///d?hostaddr=10.0.0.7&sslmode=verify-full", None).expect_err("no name");
        assert!(e.contains("verify-full needs a host name"), "{e}");
        assert!(
            on(
                "postgres:///d?host=db&hostaddr=10.0.0.7&sslmode=verify-full",
                None
            )
            .verify_name
        );
        let e = tls("postgres://h/d?sslnegotiation=direct", None).expect_err("plain");
        assert!(e.contains("sslnegotiation=direct needs"), "{e}");
    }

    #[test]
    fn libpq_default_files_are_used_when_they_exist() {
        let home = tempfile::tempdir().expect("dir");
        let url = "postgres://h/d?sslmode=require";
        let none = on(url, Some(home.path()));
        assert_eq!((none.root, none.client, none.crl), (None, None, vec![]));
        let dir = home.path().join(".postgresql");
        std::fs::create_dir(&dir).expect("mkdir");
        for f in ["root.crt", "root.crl", "postgresql.crt"] {
            std::fs::write(dir.join(f), "").expect("write");
        }
        let found = on(url, Some(home.path()));
        assert_eq!(found.root, Some(dir.join("root.crt")));
        assert_eq!(found.crl, [dir.join("root.crl")]);
        assert_eq!(
            found.client,
            Some((dir.join("postgresql.crt"), dir.join("postgresql.key")))
        );
        // Given files win; sslcertmode=disable sends none.
        let given = on(
            "postgres://h/d?sslmode=require&sslcert=/c.pem&sslkey=/k.pem&sslrootcert=/ca.pem",
            Some(home.path()),
        );
        assert_eq!(given.client, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(given.root, Some("/ca.pem".into()));
        let off = on(
            "postgres://h/d?sslmode=require&sslcertmode=disable",
            Some(home.path()),
        );
        assert_eq!(off.client, None);
        let e = tls("postgres://h/d?sslmode=require&sslcertmode=require", None).expect_err("none");
        assert!(e.contains("no client certificate"), "{e}");
    }

    #[test]
    fn the_protocol_range_maps_onto_rustls_versions() {
        let s = on("postgres://h/d?sslmode=require", None);
        assert!(s.tls12 && s.tls13 && s.sni && !s.alpn);
        let s = on(
            "postgres://h/d?sslmode=require&ssl_min_protocol_version=TLSv1.3",
            None,
        );
        assert!(!s.tls12 && s.tls13);
        let s = on(
            "postgres://h/d?sslmode=require&ssl_max_protocol_version=TLSv1.2&sslsni=0",
            None,
        );
        assert!(s.tls12 && !s.tls13 && !s.sni);
        for bad in [
            "postgres://h/d?sslmode=require&ssl_max_protocol_version=TLSv1.1",
            "postgres://h/d?sslmode=require&ssl_min_protocol_version=TLSv1.3&ssl_max_protocol_version=TLSv1.2",
        ] {
            tls(bad, None).expect_err(bad);
        }
        assert!(on("postgres://h/d?sslmode=require&sslnegotiation=direct", None).alpn);
    }

    #[test]
    fn a_bad_client_file_is_named_never_quoted() {
        let dir = tempfile::tempdir().expect("dir");
        let cert = dir.path().join("client.crt");
        let key = dir.path().join("client.key");
        for device in ["/dev/zero", "/dev/null"] {
            let e = client_auth(Path::new(device), &key).expect_err(device);
            assert_eq!(
                e,
                format!("cannot read sslcert {device}: not a regular file")
            );
        }
        let missing = client_auth(&cert, &key).expect_err("missing");
        assert!(missing.starts_with("cannot read sslcert ") && missing.contains("client.crt"));
        std::fs::write(&cert, "not a certificate: s3cret").expect("write");
        let e = client_auth(&cert, &key).expect_err("no pem");
        assert!(
            e.contains("holds no PEM certificate") && !e.contains("s3cret"),
            "{e}"
        );
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = client_auth(&cert, &key).expect_err("no key");
        assert!(
            e.starts_with("cannot read sslkey ") && e.contains("client.key"),
            "{e}"
        );
        std::fs::write(&key, "s3cret").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = client_auth(&cert, &key).expect_err("loose");
        assert!(e.contains("can be read by others (mode 644)"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = client_auth(&cert, &key).expect_err("not a key");
        assert!(
            e.contains("holds no PEM private key") && !e.contains("s3cret"),
            "{e}"
        );
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .expect("write");
        let e = client_auth(&cert, &key).expect_err("encrypted");
        assert!(e.contains("is encrypted"), "{e}");
    }
}
