//! Which servers an `https://` fetch trusts: the CA certificates OpenSSL, and so the
//! libcurl of Mesos's fetcher, would trust on this host, read once at the agent's start.
//! `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR` (`:`-separated directories of PEM
//! files) replace the system's store when either is set, as they do for OpenSSL;
//! otherwise the distribution's bundle is used (`/etc/ssl/certs/ca-certificates.crt` on
//! Debian). Certificates are verified with rustls and ring: no OpenSSL is loaded.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;

/// The trusted CA certificates, and what went wrong reading them.
#[derive(Debug, Clone)]
pub struct Trust {
    roots: Arc<RootCertStore>,
    /// Where they came from, for messages.
    source: String,
    /// Files that could not be read or parsed.
    problems: Vec<String>,
}

impl Default for Trust {
    /// Nothing trusted: every `https://` fetch fails verification.
    fn default() -> Self {
        Trust {
            roots: Arc::new(RootCertStore::empty()),
            source: "no store".into(),
            problems: Vec::new(),
        }
    }
}

impl Trust {
    /// Reads the certificates `SSL_CERT_FILE` and `SSL_CERT_DIR` (looked up through
    /// `lookup`) name, or the system's when neither is set.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Trust {
        let file = lookup("SSL_CERT_FILE").filter(|f| !f.is_empty());
        let dirs: Vec<String> = lookup("SSL_CERT_DIR")
            .map(|d| {
                d.split(':')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let (loaded, source) = if file.is_none() && dirs.is_empty() {
            (
                rustls_native_certs::load_native_certs(),
                "the system's store".to_owned(),
            )
        } else {
            let mut all = rustls_native_certs::CertificateResult::default();
            let paths = file.iter().map(|f| (Some(Path::new(f.as_str())), None));
            let paths = paths.chain(dirs.iter().map(|d| (None, Some(Path::new(d.as_str())))));
            for (file, dir) in paths {
                let more = rustls_native_certs::load_certs_from_paths(file, dir);
                all.certs.extend(more.certs);
                all.errors.extend(more.errors);
            }
            let mut named = Vec::new();
            if let Some(file) = &file {
                named.push(format!("SSL_CERT_FILE={file}"));
            }
            if !dirs.is_empty() {
                named.push(format!("SSL_CERT_DIR={}", dirs.join(":")));
            }
            (all, named.join(" and "))
        };
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(loaded.certs);
        let mut problems: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        if ignored > 0 {
            problems.push(format!(
                "{ignored} certificates could not be parsed and are not trusted"
            ));
        }
        if roots.is_empty() {
            problems.push(format!(
                "no CA certificate was found in {source}: every https:// fetch fails until one \
                 is there (install ca-certificates, or set SSL_CERT_FILE to a PEM bundle)"
            ));
        }
        Trust {
            roots: Arc::new(roots),
            source,
            problems,
        }
    }

    /// The TLS settings of a fetch: these roots, rustls's safe defaults, HTTP/1.1.
    pub fn config(&self) -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// How many certificates are trusted, and from where: for the agent's start and for
    /// the message of a certificate that is not trusted.
    pub fn describe(&self) -> String {
        format!(
            "the CA certificates of {} ({})",
            self.source,
            self.roots.len()
        )
    }

    /// What could not be read, to warn about at start.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("CA").pem()
    }

    #[test]
    fn named_files_and_directories_replace_the_system_store() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("bundle.pem");
        std::fs::write(&file, ca_pem() + &ca_pem())?;
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs)?;
        std::fs::write(certs.join("one.pem"), ca_pem())?;
        let (file, certs) = (file.display().to_string(), certs.display().to_string());
        let vars = |file: Option<&str>, dirs: Option<String>| {
            let file = file.map(str::to_owned);
            move |name: &str| match name {
                "SSL_CERT_FILE" => file.clone(),
                "SSL_CERT_DIR" => dirs.clone(),
                _ => None,
            }
        };
        let cases = [
            (
                Trust::from_vars(vars(Some(&file), None)),
                format!("the CA certificates of SSL_CERT_FILE={file} (2)"),
            ),
            (
                Trust::from_vars(vars(None, Some(format!(":{certs}:")))),
                format!("the CA certificates of SSL_CERT_DIR={certs} (1)"),
            ),
            (
                Trust::from_vars(vars(Some(&file), Some(certs.clone()))),
                format!("the CA certificates of SSL_CERT_FILE={file} and SSL_CERT_DIR={certs} (3)"),
            ),
        ];
        for (trust, want) in cases {
            assert_eq!(trust.describe(), want);
            assert!(trust.problems().is_empty(), "{:?}", trust.problems());
            assert!(trust.config().is_ok());
        }
        Ok(())
    }

    #[test]
    fn what_cannot_be_read_is_kept_to_warn_about() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("missing.pem").display().to_string();
        let trust = Trust::from_vars(|name| (name == "SSL_CERT_FILE").then(|| missing.clone()));
        assert!(
            trust.describe().ends_with("missing.pem (0)"),
            "{}",
            trust.describe()
        );
        assert!(
            trust.problems().iter().any(|p| p.contains("missing.pem")),
            "{:?}",
            trust.problems()
        );
        // Text that holds no certificate reads well and trusts nothing: said too.
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n")?;
        let empty = empty.display().to_string();
        let trust = Trust::from_vars(|name| (name == "SSL_CERT_FILE").then(|| empty.clone()));
        assert!(trust.describe().ends_with("(0)"), "{}", trust.describe());
        assert_eq!(
            trust.problems(),
            [format!(
                "no CA certificate was found in SSL_CERT_FILE={empty}: every https:// fetch \
                 fails until one is there (install ca-certificates, or set SSL_CERT_FILE to a \
                 PEM bundle)"
            )]
        );
        Ok(())
    }
}
