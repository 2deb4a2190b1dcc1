//! The fetcher against real files and real servers this file starts on 127.0.0.1
//! (loopback only): HTTP and HTTPS servers answering GET from a fixed route table, with
//! certificates of a CA the test makes, and a forwarding and CONNECT proxy. The library is
//! driven directly, and through a real agent for what the agent's flags and environment
//! decide.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::fetch::{Archive, FetchError, Fetched, Fetcher, Limits, Network, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{eventually, TestAgent, PLAIN_PROCESSES, SHELL_IMAGE};

/// How the test server answers one path.
#[derive(Clone)]
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// 302 to this Location.
    Redirect(String),
    /// Reads the request and never answers.
    Hang,
    /// Announces `len` bytes, sends `first` at once, then one byte every 20 ms, forever.
    Drip { len: usize, first: Vec<u8> },
    /// Announces more bytes than it sends `first`, then goes silent.
    Stall { first: Vec<u8> },
}

struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    hits: Arc<Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Server {
    async fn start(routes: &[(&str, Reply)]) -> Server {
        Server::serve(routes, None).await
    }

    /// The same over TLS, with `pki`'s server certificate.
    async fn start_tls(routes: &[(&str, Reply)], pki: &Pki) -> Server {
        Server::serve(routes, Some(pki.acceptor())).await
    }

    async fn serve(routes: &[(&str, Reply)], tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .iter()
                .map(|(path, reply)| (path.to_string(), reply.clone()))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&hits);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (routes, log, tls) = (Arc::clone(&routes), Arc::clone(&log), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        // A client that does not trust the certificate ends here.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(socket).await {
                                answer(stream, routes, log).await;
                            }
                        }
                        None => answer(socket, routes, log).await,
                    }
                });
            }
        });
        Server {
            addr,
            scheme,
            hits,
            accept,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits lock").clone()
    }
}

async fn answer(
    mut socket: impl AsyncRead + AsyncWrite + Unpin,
    routes: Arc<HashMap<String, Reply>>,
    hits: Arc<Mutex<Vec<String>>>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request).into_owned();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    hits.lock().expect("hits lock").push(path.clone());
    let head = |status: &str, len: usize, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n")
    };
    let route = path.split('?').next().unwrap_or("");
    let reply = routes.get(route).cloned().unwrap_or(Reply::Status(404));
    let _ = match reply {
        Reply::Body(body) => {
            let mut out = head("200 OK", body.len(), "").into_bytes();
            out.extend_from_slice(&body);
            socket.write_all(&out).await
        }
        Reply::Status(code) => {
            socket
                .write_all(head(&code.to_string(), 0, "").as_bytes())
                .await
        }
        Reply::Redirect(location) => {
            let extra = format!("Location: {location}\r\n");
            socket
                .write_all(head("302 Found", 0, &extra).as_bytes())
                .await
        }
        Reply::Hang => std::future::pending().await,
        Reply::Drip { len, first } => {
            let mut out = head("200 OK", len, "").into_bytes();
            out.extend_from_slice(&first);
            if socket.write_all(&out).await.is_ok() {
                while socket.write_all(b"x").await.is_ok() {
                    let _ = socket.flush().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(())
        }
        Reply::Stall { first } => {
            let mut out = head("200 OK", first.len() + 100, "").into_bytes();
            out.extend_from_slice(&first);
            let _ = socket.write_all(&out).await;
            let _ = socket.flush().await;
            std::future::pending().await
        }
    };
    let _ = socket.shutdown().await;
}

/// A CA this test makes, and a server certificate it signs for 127.0.0.1, localhost and
/// `names`.
struct Pki {
    ca_pem: String,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivatePkcs8KeyDer<'static>,
}

impl Pki {
    fn new(names: &[&str]) -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "berth test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA cert");
        let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        sans.extend(names.iter().map(|n| (*n).to_owned()));
        let key = rcgen::KeyPair::generate().expect("server key");
        let cert = rcgen::CertificateParams::new(sans)
            .expect("server params")
            .signed_by(&key, &ca)
            .expect("server cert");
        Pki {
            ca_pem: ca.pem(),
            chain: vec![cert.der().clone(), ca.der().clone()],
            key: rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key().into())
            .expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Writes the CA's certificate to `dir/ca.pem`, for `SSL_CERT_FILE`.
    fn ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write CA");
        path
    }
}

/// A forwarding and CONNECT proxy on 127.0.0.1 that sends every request, whatever host it
/// names, to `http` (plain requests) or `https` (tunnels), and logs each request line with
/// its `Proxy-Authorization`. So a URL whose host resolves nowhere (`.invalid`) is fetched
/// only through it.
struct TestProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl TestProxy {
    async fn start(http: SocketAddr, https: SocketAddr) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let _ = relay(client, http, https, log).await;
                });
            }
        });
        TestProxy { addr, seen, accept }
    }

    /// Its URL, with credentials.
    fn url(&self) -> String {
        format!("http://berth:secret@{}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("proxy log").clone()
    }
}

async fn relay(
    mut client: TcpStream,
    http: SocketAddr,
    https: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or_default().to_owned();
    let auth = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then_some(value)
        })
        .unwrap_or("none");
    log.lock()
        .expect("proxy log")
        .push(format!("{line} auth={auth}"));
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        let mut upstream = TcpStream::connect(https).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // `GET http://host/path HTTP/1.1` goes on as `GET /path HTTP/1.1`.
    let path = target
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let rest = head.split_once("\r\n").map_or("", |(_, rest)| rest);
    let mut upstream = TcpStream::connect(http).await?;
    upstream
        .write_all(format!("{method} {path} HTTP/1.1\r\n{rest}").as_bytes())
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// The fetcher with `limits`, no proxy, and trust in no CA.
async fn fetch(uri: &Uri, sandbox: &Path, limits: Limits) -> Result<Fetched, FetchError> {
    fetcher(limits, Network::default())
        .fetch(uri, sandbox)
        .await
}

async fn fetch_all(uris: &[Uri], sandbox: &Path, limits: Limits) -> Result<(), FetchError> {
    fetcher(limits, Network::default())
        .fetch_all(uris, sandbox)
        .await
}

fn fetcher(limits: Limits, network: Network) -> Fetcher {
    Fetcher { limits, network }
}

fn uri(value: &str) -> Uri {
    Uri {
        value: value.to_owned(),
        ..Uri::default()
    }
}

/// A sandbox inside a directory of its own, so that "nothing outside the sandbox" can be
/// checked by listing that directory.
struct Dirs {
    outer: tempfile::TempDir,
    sandbox: PathBuf,
}

fn dirs() -> Dirs {
    let outer = tempfile::tempdir().expect("tempdir");
    let sandbox = outer.path().join("sandbox");
    std::fs::create_dir(&sandbox).expect("mkdir sandbox");
    Dirs { outer, sandbox }
}

impl Dirs {
    /// Entries of the outer directory: only the sandbox may be there.
    fn outside(&self) -> Vec<String> {
        names(self.outer.path())
            .into_iter()
            .filter(|n| n != "sandbox")
            .collect()
    }

    /// Every path under the sandbox, relative, sorted.
    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![PathBuf::new()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(self.sandbox.join(&dir)).expect("read_dir") {
                let entry = entry.expect("dir entry");
                let rel = dir.join(entry.file_name());
                if entry.file_type().expect("file type").is_dir() {
                    dirs.push(rel.clone());
                }
                out.push(rel.to_string_lossy().into_owned());
            }
        }
        out.sort();
        out
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.sandbox.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    fn mode(&self, rel: &str) -> u32 {
        let meta = std::fs::metadata(self.sandbox.join(rel)).expect("metadata");
        meta.permissions().mode() & 0o7777
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn no_temp_files(dirs: &Dirs) {
    let temps: Vec<String> = dirs
        .tree()
        .into_iter()
        .filter(|p| p.contains(".berth-fetch-"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

fn tar_bytes(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        builder
            .append_data(&mut header, path, *data)
            .expect("tar append");
    }
    builder.into_inner().expect("tar finish")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip write");
    encoder.finish().expect("gzip finish")
}

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o640);
        writer.start_file(*name, options).expect("zip start");
        writer.write_all(data).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}

fn short_limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
        ..Limits::default()
    }
}

#[tokio::test]
async fn plain_file_over_http() {
    let server = Server::start(&[("/dist/hello.txt", Reply::Body(b"hello\n".to_vec()))]).await;
    let d = dirs();
    let fetched = fetch(
        &uri(&server.url("/dist/hello.txt?v=2")),
        &d.sandbox,
        short_limits(),
    )
    .await
    .expect("fetch");
    assert_eq!(fetched.path, d.sandbox.join("hello.txt"));
    assert_eq!(fetched.bytes, 6);
    assert_eq!(fetched.unpacked, None);
    assert_eq!(d.read("hello.txt"), b"hello\n");
    assert_eq!(d.mode("hello.txt"), 0o644);
    assert_eq!(d.tree(), ["hello.txt"]);
    assert_eq!(server.hits(), ["/dist/hello.txt?v=2"]);
}

#[tokio::test]
async fn output_file_into_a_nested_directory() {
    let server = Server::start(&[("/download", Reply::Body(b"{\"a\":1}".to_vec()))]).await;
    let d = dirs();
    let mut u = uri(&server.url("/download"));
    u.output_file = Some("conf/app/settings.json".into());
    fetch(&u, &d.sandbox, short_limits()).await.expect("fetch");
    assert_eq!(d.read("conf/app/settings.json"), b"{\"a\":1}");
    assert_eq!(d.tree(), ["conf", "conf/app", "conf/app/settings.json"]);
}

#[tokio::test]
async fn executable_sets_mode_0755_and_does_not_unpack() {
    let server = Server::start(&[
        ("/tool", Reply::Body(b"#!/bin/sh\necho hi\n".to_vec())),
        ("/tool.gz", Reply::Body(gzip(b"binary"))),
    ])
    .await;
    let d = dirs();
    for path in ["/tool", "/tool.gz"] {
        let mut u = uri(&server.url(path));
        u.executable = Some(true);
        let fetched = fetch(&u, &d.sandbox, short_limits()).await.expect("fetch");
        assert_eq!(fetched.unpacked, None, "{path}");
    }
    assert_eq!(d.mode("tool"), 0o755);
    assert_eq!(d.mode("tool.gz"), 0o755);
    assert_eq!(d.tree(), ["tool", "tool.gz"]);
}

#[tokio::test]
async fn tarballs_are_unpacked_into_the_sandbox_and_kept() {
    let tar = tar_bytes(&[
        ("app/run.sh", b"#!/bin/sh\n", 0o755),
        ("app/data/x.txt", b"x", 0o644),
    ]);
    let server = Server::start(&[
        ("/app.tar.gz", Reply::Body(gzip(&tar))),
        ("/app.tgz", Reply::Body(gzip(&tar))),
        ("/app.tar", Reply::Body(tar.clone())),
    ])
    .await;
    for (path, archive) in [
        ("/app.tar.gz", Archive::TarGz),
        ("/app.tgz", Archive::TarGz),
        ("/app.tar", Archive::Tar),
    ] {
        let d = dirs();
        let fetched = fetch(&uri(&server.url(path)), &d.sandbox, short_limits())
            .await
            .expect("fetch");
        let unpacked = fetched.unpacked.expect("unpacked");
        assert_eq!(unpacked.archive, archive, "{path}");
        assert_eq!(unpacked.bytes, 11, "{path}");
        assert_eq!(d.read("app/run.sh"), b"#!/bin/sh\n", "{path}");
        assert_eq!(d.read("app/data/x.txt"), b"x", "{path}");
        assert_eq!(d.mode("app/run.sh") & 0o111, 0o111, "{path}");
        assert!(d.sandbox.join(&path[1..]).is_file(), "{path}: archive kept");
        no_temp_files(&d);
    }
}

#[tokio::test]
async fn extract_false_keeps_the_archive_packed() {
    let server = Server::start(&[(
        "/app.tgz",
        Reply::Body(gzip(&tar_bytes(&[("f", b"1", 0o644)]))),
    )])
    .await;
    let d = dirs();
    let mut u = uri(&server.url("/app.tgz"));
    u.extract = Some(false);
    fetch(&u, &d.sandbox, short_limits()).await.expect("fetch");
    assert_eq!(d.tree(), ["app.tgz"]);
}

#[tokio::test]
async fn zips_are_unpacked() {
    let zip = zip_bytes(&[("site/index.html", b"<p>hi</p>"), ("site/a/b.css", b"p{}")]);
    let server = Server::start(&[("/site.zip", Reply::Body(zip))]).await;
    let d = dirs();
    let fetched = fetch(&uri(&server.url("/site.zip")), &d.sandbox, short_limits())
        .await
        .expect("fetch");
    assert_eq!(fetched.unpacked.map(|u| u.archive), Some(Archive::Zip));
    assert_eq!(d.read("site/index.html"), b"<p>hi</p>");
    assert_eq!(d.read("site/a/b.css"), b"p{}");
    assert_eq!(d.mode("site/index.html"), 0o640);
    assert!(d.sandbox.join("site.zip").is_file());
}

#[tokio::test]
async fn gz_is_gunzipped_beside_into_the_top_directory() {
    let data = b"a,b\n1,2\n".repeat(1000);
    let server = Server::start(&[("/data.csv.gz", Reply::Body(gzip(&data)))]).await;
    let d = dirs();
    let fetched = fetch(
        &uri(&server.url("/data.csv.gz")),
        &d.sandbox,
        short_limits(),
    )
    .await
    .expect("fetch");
    assert_eq!(d.read("data.csv"), data);
    assert_eq!(
        fetched.unpacked.map(|u| (u.archive, u.bytes)),
        Some((Archive::Gz, 8000))
    );
    // As in Mesos, a nested output_file still gunzips into the sandbox's top directory.
    let mut u = uri(&server.url("/data.csv.gz"));
    u.output_file = Some("dl/other.csv.gz".into());
    fetch(&u, &d.sandbox, short_limits()).await.expect("fetch");
    assert_eq!(d.read("other.csv"), data);
    assert_eq!(
        d.tree(),
        [
            "data.csv",
            "data.csv.gz",
            "dl",
            "dl/other.csv.gz",
            "other.csv"
        ]
    );
}

#[tokio::test]
async fn local_paths_and_file_urls_are_copied() {
    let source = tempfile::tempdir().expect("tempdir");
    let file = source.path().join("my file.sh");
    std::fs::write(&file, b"echo local\n").expect("write source");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let d = dirs();
    let plain = file.to_str().expect("utf-8 path");
    fetch(&uri(plain), &d.sandbox, short_limits())
        .await
        .expect("fetch path");
    let url = format!("file://{}", plain.replace(' ', "%20"));
    let mut u = uri(&url);
    u.output_file = Some("copy.sh".into());
    fetch(&u, &d.sandbox, short_limits())
        .await
        .expect("fetch file://");
    assert_eq!(d.read("my file.sh"), b"echo local\n");
    assert_eq!(d.read("copy.sh"), b"echo local\n");
    // An executable source stays executable.
    assert_eq!(d.mode("copy.sh"), 0o755);

    let missing = fetch(&uri("/nonexistent/berth/x"), &d.sandbox, short_limits()).await;
    let message = missing.expect_err("missing file").to_string();
    assert!(message.contains("/nonexistent/berth/x"), "{message}");
}

#[tokio::test]
async fn not_found_names_the_status_and_url() {
    let server = Server::start(&[]).await;
    let d = dirs();
    let url = server.url("/missing.tgz");
    let err = fetch(&uri(&url), &d.sandbox, short_limits())
        .await
        .expect_err("404");
    assert!(matches!(err, FetchError::Status { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("404"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(d.tree().is_empty(), "{:?}", d.tree());
}

#[tokio::test]
async fn redirects_are_followed_up_to_five() {
    let server = Server::start(&[
        ("/old", Reply::Redirect("/new".into())),
        ("/new", Reply::Body(b"moved".to_vec())),
        ("/r0", Reply::Redirect("r1".into())),
        ("/r1", Reply::Redirect("/r2".into())),
        ("/r2", Reply::Redirect("/r3".into())),
        ("/r3", Reply::Redirect("/r4".into())),
        ("/r4", Reply::Redirect("/r5".into())),
        ("/r5", Reply::Redirect("/r6".into())),
        ("/r6", Reply::Body(b"too far".to_vec())),
        ("/ftp", Reply::Redirect("ftp://127.0.0.1:1/x".into())),
    ])
    .await;
    let d = dirs();
    fetch(&uri(&server.url("/old")), &d.sandbox, short_limits())
        .await
        .expect("fetch");
    // Named after the URI asked for, as Mesos names it.
    assert_eq!(d.read("old"), b"moved");

    let err = fetch(&uri(&server.url("/r0")), &d.sandbox, short_limits())
        .await
        .expect_err("six redirects");
    assert!(err.to_string().contains("more than 5 redirects"), "{err}");
    assert!(!server.hits().contains(&"/r6".to_owned()));

    let err = fetch(&uri(&server.url("/ftp")), &d.sandbox, short_limits())
        .await
        .expect_err("redirect to ftp");
    assert!(matches!(err, FetchError::Redirect { .. }), "{err:?}");
    assert!(err.to_string().contains("ftp://"), "{err}");
    assert_eq!(d.tree(), ["old"]);
}

#[tokio::test]
async fn output_file_outside_the_sandbox_is_refused_before_fetching() {
    let server = Server::start(&[("/x", Reply::Body(b"x".to_vec()))]).await;
    let d = dirs();
    let absolute = d.outer.path().join("escaped");
    for out in ["../x", "a/../../x", absolute.to_str().expect("utf-8")] {
        let mut u = uri(&server.url("/x"));
        u.output_file = Some(out.into());
        let err = fetch(&u, &d.sandbox, short_limits())
            .await
            .expect_err("escape");
        assert!(
            matches!(err, FetchError::OutputFile { .. }),
            "{out}: {err:?}"
        );
        assert!(err.to_string().contains("output_file"), "{err}");
    }
    assert!(d.outside().is_empty(), "{:?}", d.outside());
    assert!(d.tree().is_empty());
    assert!(server.hits().is_empty());
}

/// A tar whose one entry is named `name` verbatim (the tar crate's builder refuses `..`,
/// as it should; hostile archives are not built with it).
fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    let bytes = name.as_bytes();
    header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, data).expect("tar append");
    builder.into_inner().expect("tar finish")
}

fn symlink_tar(entries: &[(&str, &str)], file: Option<&str>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (link, target) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder
            .append_link(&mut header, link, target)
            .expect("tar link");
    }
    if let Some(path) = file {
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, &b"evil"[..])
            .expect("tar file");
    }
    builder.into_inner().expect("tar finish")
}

#[tokio::test]
async fn archive_entries_that_escape_are_refused() {
    let server = Server::start(&[
        ("/dotdot.tar", Reply::Body(raw_tar("../evil", b"evil"))),
        (
            "/dotdot.tgz",
            Reply::Body(gzip(&raw_tar("a/../../evil", b"evil"))),
        ),
        (
            "/dotdot.zip",
            Reply::Body(zip_bytes(&[("../evil", b"evil")])),
        ),
        (
            "/link.tar",
            Reply::Body(symlink_tar(&[("ln", "..")], Some("ln/evil"))),
        ),
        (
            "/abslink.tar",
            Reply::Body(symlink_tar(&[("passwd", "/etc/passwd")], None)),
        ),
        (
            "/later.tar",
            Reply::Body(symlink_tar(&[("a", "b/../evil"), ("b", ".")], None)),
        ),
    ])
    .await;
    for path in [
        "/dotdot.tar",
        "/dotdot.tgz",
        "/dotdot.zip",
        "/link.tar",
        "/abslink.tar",
        "/later.tar",
    ] {
        let d = dirs();
        let err = fetch(&uri(&server.url(path)), &d.sandbox, short_limits())
            .await
            .expect_err("escaping archive");
        assert!(matches!(err, FetchError::Extract { .. }), "{path}: {err:?}");
        assert!(
            err.to_string().contains("outside the sandbox"),
            "{path}: {err}"
        );
        assert!(d.outside().is_empty(), "{path}: {:?}", d.outside());
        // The refused archive is not left under its name; links that escape are removed.
        let tree = d.tree();
        assert!(!tree.contains(&path[1..].to_owned()), "{path}: {tree:?}");
        for link in ["ln", "passwd", "a"] {
            assert!(!tree.contains(&link.to_owned()), "{path}: {tree:?}");
        }
        no_temp_files(&d);
    }
}

#[tokio::test]
async fn other_schemes_are_refused() {
    let d = dirs();
    let err = fetch(&uri("ftp://127.0.0.1/app.tgz"), &d.sandbox, short_limits())
        .await
        .expect_err("ftp");
    let message = err.to_string();
    assert!(message.contains("not ftp://"), "{message}");
    assert!(message.contains("serve it over http or https"), "{message}");
    assert!(message.contains("fetch it to a local path"), "{message}");
    let err = fetch(&uri("bin/tool"), &d.sandbox, short_limits())
        .await
        .expect_err("relative");
    assert!(matches!(err, FetchError::Relative { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_hangs_times_out() {
    let server = Server::start(&[
        ("/hang", Reply::Hang),
        (
            "/stall",
            Reply::Stall {
                first: vec![b'x'; 1000],
            },
        ),
    ])
    .await;
    let d = dirs();
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..short_limits()
    };
    let started = Instant::now();
    let err = fetch(&uri(&server.url("/hang")), &d.sandbox, limits)
        .await
        .expect_err("hang");
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not complete within 300ms"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let limits = Limits {
        stall_timeout: Duration::from_millis(200),
        ..short_limits()
    };
    let err = fetch(&uri(&server.url("/stall")), &d.sandbox, limits)
        .await
        .expect_err("stall");
    assert!(matches!(err, FetchError::Stalled { .. }), "{err:?}");
    assert!(d.tree().is_empty(), "{:?}", d.tree());
}

#[tokio::test]
async fn dropping_a_fetch_mid_download_leaves_nothing() {
    let server = Server::start(&[(
        "/big.bin",
        Reply::Drip {
            len: 10_000_000,
            // More than the fetcher buffers, so that some reaches the file.
            first: vec![7; 1_000_000],
        },
    )])
    .await;
    let d = dirs();
    let sandbox = d.sandbox.clone();
    let u = uri(&server.url("/big.bin"));
    let task = tokio::spawn(async move { fetch(&u, &sandbox, short_limits()).await });
    // Wait until the download is under way: its temporary file holds bytes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let partial = d
            .tree()
            .into_iter()
            .find(|p| p.starts_with(".berth-fetch-"));
        let size = partial
            .and_then(|p| std::fs::metadata(d.sandbox.join(p)).ok())
            .map_or(0, |m| m.len());
        if size > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the download never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_cancelled()));
    assert!(!d.sandbox.join("big.bin").exists());
    assert!(d.tree().is_empty(), "{:?}", d.tree());
}

#[tokio::test]
async fn fetch_all_goes_in_order_and_stops_at_the_first_failure() {
    let server = Server::start(&[
        ("/one", Reply::Body(b"1".to_vec())),
        ("/three", Reply::Body(b"3".to_vec())),
    ])
    .await;
    let d = dirs();
    let uris = [
        uri(&server.url("/one")),
        uri(&server.url("/two")),
        uri(&server.url("/three")),
    ];
    let err = fetch_all(&uris, &d.sandbox, short_limits())
        .await
        .expect_err("two is missing");
    assert!(err.to_string().contains("/two"), "{err}");
    assert_eq!(d.tree(), ["one"]);
    assert_eq!(server.hits(), ["/one", "/two"]);

    fetch_all(
        &[uris[0].clone(), uris[2].clone()],
        &d.sandbox,
        short_limits(),
    )
    .await
    .expect("fetch_all");
    assert_eq!(d.tree(), ["one", "three"]);
}

#[tokio::test]
async fn size_limits_hold_for_downloads_and_unpacking() {
    let bomb = gzip(&vec![0u8; 1 << 20]);
    let server = Server::start(&[
        ("/big", Reply::Body(vec![1; 1000])),
        ("/zeros.gz", Reply::Body(bomb)),
    ])
    .await;
    let d = dirs();
    let limits = Limits {
        max_bytes: 100,
        ..short_limits()
    };
    let err = fetch(&uri(&server.url("/big")), &d.sandbox, limits)
        .await
        .expect_err("too large");
    assert!(
        matches!(err, FetchError::TooLarge { limit: 100, .. }),
        "{err:?}"
    );

    let limits = Limits {
        max_unpacked_bytes: 1000,
        ..short_limits()
    };
    let err = fetch(&uri(&server.url("/zeros.gz")), &d.sandbox, limits)
        .await
        .expect_err("bomb");
    assert!(err.to_string().contains("limit of 1000 bytes"), "{err}");
    assert!(d.tree().is_empty(), "{:?}", d.tree());
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(data).expect("bzip2 write");
    encoder.finish().expect("bzip2 finish")
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    encoder.write_all(data).expect("xz write");
    encoder.finish().expect("xz finish")
}

/// A network that trusts `pki`'s CA alone, as an agent whose `SSL_CERT_FILE` names it.
fn trusting(pki: &Pki, dir: &Path) -> Network {
    let ca = pki.ca_file(dir).to_string_lossy().into_owned();
    Network::from_vars(|name| (name == "SSL_CERT_FILE").then(|| ca.clone()))
}

#[tokio::test]
async fn https_is_fetched_from_servers_whose_ca_is_trusted_and_only_those() {
    let pki = Pki::new(&[]);
    let tar = tar_bytes(&[("app/run.sh", b"#!/bin/sh\n", 0o755)]);
    let server = Server::start_tls(
        &[
            ("/hello.txt", Reply::Body(b"over tls\n".to_vec())),
            ("/app.tgz", Reply::Body(gzip(&tar))),
        ],
        &pki,
    )
    .await;
    let plain = Server::start(&[("/moved", Reply::Redirect(server.url("/hello.txt")))]).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let trusted = fetcher(short_limits(), trusting(&pki, certs.path()));
    let d = dirs();
    trusted
        .fetch(&uri(&server.url("/hello.txt")), &d.sandbox)
        .await
        .expect("fetch over https");
    assert_eq!(d.read("hello.txt"), b"over tls\n");
    // From http to https, as curl -L follows it.
    trusted
        .fetch(&uri(&plain.url("/moved")), &d.sandbox)
        .await
        .expect("redirect to https");
    assert_eq!(d.read("moved"), b"over tls\n");
    let fetched = trusted
        .fetch(&uri(&server.url("/app.tgz")), &d.sandbox)
        .await
        .expect("archive over https");
    assert_eq!(fetched.unpacked.map(|u| u.archive), Some(Archive::TarGz));
    assert_eq!(d.read("app/run.sh"), b"#!/bin/sh\n");

    // Another CA's server, and a fetcher that trusts nothing: refused, saying what to do.
    let other = Pki::new(&[]);
    let stranger = Server::start_tls(&[("/x", Reply::Body(b"x".to_vec()))], &other).await;
    for (who, url) in [
        ("a trusted CA's", server.url("/hello.txt")),
        ("another CA's", stranger.url("/x")),
    ] {
        let network = if who == "another CA's" {
            trusting(&pki, certs.path())
        } else {
            Network::default()
        };
        let before = d.tree();
        let err = fetcher(short_limits(), network)
            .fetch(&uri(&url), &d.sandbox)
            .await
            .expect_err("untrusted certificate");
        assert!(matches!(err, FetchError::Tls { .. }), "{who}: {err:?}");
        let message = err.to_string();
        for part in ["certificate", "SSL_CERT_FILE", &url] {
            assert!(message.contains(part), "{who}: {message}");
        }
        assert_eq!(d.tree(), before, "{who}");
    }
    assert_eq!(stranger.hits(), Vec::<String>::new());
    no_temp_files(&d);
}

#[tokio::test]
async fn bzip2_and_xz_tarballs_are_unpacked_and_bare_files_kept() {
    let tar = tar_bytes(&[
        ("app/run.sh", b"#!/bin/sh\n", 0o755),
        ("app/data/x.txt", b"x", 0o644),
    ]);
    let server = Server::start(&[
        ("/app.tar.bz2", Reply::Body(bzip2(&tar))),
        ("/app.tbz2", Reply::Body(bzip2(&tar))),
        ("/app.tar.xz", Reply::Body(xz(&tar))),
        ("/app.txz", Reply::Body(xz(&tar))),
        // Named as gzip, compressed with xz: libarchive goes by the content.
        ("/mislabelled.tgz", Reply::Body(xz(&tar))),
        ("/notes.xz", Reply::Body(xz(b"notes"))),
        ("/notes.bz2", Reply::Body(bzip2(b"notes"))),
    ])
    .await;
    for (path, archive) in [
        ("/app.tar.bz2", Archive::TarBz2),
        ("/app.tbz2", Archive::TarBz2),
        ("/app.tar.xz", Archive::TarXz),
        ("/app.txz", Archive::TarXz),
        ("/mislabelled.tgz", Archive::TarGz),
    ] {
        let d = dirs();
        let fetched = fetch(&uri(&server.url(path)), &d.sandbox, short_limits())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let unpacked = fetched.unpacked.expect("unpacked");
        assert_eq!((unpacked.archive, unpacked.bytes), (archive, 11), "{path}");
        assert_eq!(d.read("app/run.sh"), b"#!/bin/sh\n", "{path}");
        assert_eq!(d.read("app/data/x.txt"), b"x", "{path}");
        assert_eq!(d.mode("app/run.sh") & 0o111, 0o111, "{path}");
        assert!(d.sandbox.join(&path[1..]).is_file(), "{path}: archive kept");
        no_temp_files(&d);
    }
    // Mesos decompresses no bare file but a .gz.
    let d = dirs();
    for path in ["/notes.xz", "/notes.bz2"] {
        let fetched = fetch(&uri(&server.url(path)), &d.sandbox, short_limits())
            .await
            .expect("fetch");
        assert_eq!(fetched.unpacked, None, "{path}");
    }
    assert_eq!(d.tree(), ["notes.bz2", "notes.xz"]);
}

#[tokio::test]
async fn bzip2_and_xz_tarballs_keep_the_sandbox_and_size_rules() {
    let zeros = tar_bytes(&[("zeros", &vec![0u8; 1 << 20], 0o644)]);
    let server = Server::start(&[
        (
            "/dotdot.tar.bz2",
            Reply::Body(bzip2(&raw_tar("../evil", b"evil"))),
        ),
        (
            "/link.txz",
            Reply::Body(xz(&symlink_tar(&[("ln", "..")], Some("ln/evil")))),
        ),
        ("/bomb.tar.xz", Reply::Body(xz(&zeros))),
        ("/bomb.tbz2", Reply::Body(bzip2(&zeros))),
        ("/corrupt.tar.xz", Reply::Body(xz(&zeros)[..200].to_vec())),
    ])
    .await;
    for path in ["/dotdot.tar.bz2", "/link.txz"] {
        let d = dirs();
        let err = fetch(&uri(&server.url(path)), &d.sandbox, short_limits())
            .await
            .expect_err("escaping archive");
        assert!(
            err.to_string().contains("outside the sandbox"),
            "{path}: {err}"
        );
        assert!(d.outside().is_empty(), "{path}: {:?}", d.outside());
        assert!(!d.tree().contains(&"ln".to_owned()), "{path}");
        no_temp_files(&d);
    }
    let limits = Limits {
        max_unpacked_bytes: 1000,
        ..short_limits()
    };
    for path in ["/bomb.tar.xz", "/bomb.tbz2"] {
        let d = dirs();
        let err = fetch(&uri(&server.url(path)), &d.sandbox, limits)
            .await
            .expect_err("bomb");
        assert!(
            err.to_string().contains("limit of 1000 bytes"),
            "{path}: {err}"
        );
        assert!(!d.tree().contains(&path[1..].to_owned()), "{path}");
        no_temp_files(&d);
    }
    let d = dirs();
    let err = fetch(
        &uri(&server.url("/corrupt.tar.xz")),
        &d.sandbox,
        short_limits(),
    )
    .await
    .expect_err("corrupt");
    assert!(matches!(err, FetchError::Extract { .. }), "{err:?}");
    no_temp_files(&d);
}

/// Launches a plain-process task (the mesos containerizer: no image) that fetches `uris`
/// and runs `command` in its sandbox; returns its container id.
fn launch_fetching(agent: &TestAgent, task_id: &str, uris: &[&str], command: &str) -> String {
    let uris: Vec<serde_json::Value> = uris
        .iter()
        .map(|u| serde_json::json!({ "value": u }))
        .collect();
    let task = serde_json::json!({
        "task_id": {"value": task_id},
        "command": {"value": command, "uris": uris},
    });
    let out = agent.launch_json(&task.to_string());
    assert!(
        out.status.success(),
        "launch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn message(done: &serde_json::Value) -> String {
    done["message"].as_str().unwrap_or_default().to_owned()
}

fn sandbox_temp_files(agent: &TestAgent, id: &str) -> Vec<String> {
    names(&agent.sandbox(id))
        .into_iter()
        .filter(|n| n.contains(".berth-fetch-"))
        .collect()
}

/// An agent trusts the CAs of the `SSL_CERT_FILE` in its environment, as libcurl's
/// OpenSSL does for Mesos's fetcher, and refuses a server signed by another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fetches_https_trusting_the_ca_file_of_its_environment() {
    let pki = Pki::new(&[]);
    let server =
        Server::start_tls(&[("/hello.txt", Reply::Body(b"over tls\n".to_vec()))], &pki).await;
    let other = Pki::new(&[]);
    let stranger = Server::start_tls(&[("/hello.txt", Reply::Body(b"x\n".to_vec()))], &other).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let ca = pki.ca_file(certs.path());
    let agent = TestAgent::start_with_env(
        &[PLAIN_PROCESSES],
        &[
            ("SSL_CERT_FILE", ca.to_str().expect("utf-8")),
            ("SSL_CERT_DIR", ""),
        ],
    )
    .await;

    let id = launch_fetching(
        &agent,
        "https-trusted",
        &[&server.url("/hello.txt")],
        "cat hello.txt",
    );
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let stdout = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).expect("stdout");
    assert_eq!(stdout, "over tls\n");

    let id = launch_fetching(
        &agent,
        "https-untrusted",
        &[&stranger.url("/hello.txt")],
        "echo ran",
    );
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{done}");
    let said = message(&done);
    for part in [
        "certificate",
        &format!("the CA certificates of SSL_CERT_FILE={} (1)", ca.display()),
        &stranger.url("/hello.txt"),
    ] {
        assert!(said.contains(part), "{part:?} missing: {said}");
    }
    assert!(!agent.sandbox(&id).join("hello.txt").exists());
    assert!(!agent.sandbox(&id).join("stdout").exists(), "the task ran");
    assert!(sandbox_temp_files(&agent, &id).is_empty());
}

/// The agent's `http_proxy`, `https_proxy` and `no_proxy` steer its fetches as libcurl's
/// would: plain requests forwarded, https tunnelled with CONNECT, listed hosts direct.
/// The proxied host resolves nowhere, so only the proxy can have served it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fetches_through_the_proxies_of_its_environment() {
    const ORIGIN: &str = "origin.berth-test.invalid";
    let pki = Pki::new(&[ORIGIN]);
    let http = Server::start(&[
        ("/via-proxy.txt", Reply::Body(b"proxied\n".to_vec())),
        ("/direct.txt", Reply::Body(b"direct\n".to_vec())),
    ])
    .await;
    let https = Server::start_tls(
        &[("/tunnelled.txt", Reply::Body(b"tunnelled\n".to_vec()))],
        &pki,
    )
    .await;
    let proxy = TestProxy::start(http.addr, https.addr).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let ca = pki.ca_file(certs.path());
    let proxy_url = proxy.url();
    let agent = TestAgent::start_with_env(
        &[PLAIN_PROCESSES],
        &[
            ("http_proxy", proxy_url.as_str()),
            ("HTTPS_PROXY", proxy_url.as_str()),
            ("no_proxy", "localhost, 127.0.0.0/8"),
            ("SSL_CERT_FILE", ca.to_str().expect("utf-8")),
            ("SSL_CERT_DIR", ""),
        ],
    )
    .await;
    let id = launch_fetching(
        &agent,
        "proxied",
        &[
            &format!("http://{ORIGIN}/via-proxy.txt"),
            &format!("https://{ORIGIN}/tunnelled.txt"),
            &http.url("/direct.txt"),
        ],
        "cat via-proxy.txt tunnelled.txt direct.txt",
    );
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let stdout = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).expect("stdout");
    assert_eq!(stdout, "proxied\ntunnelled\ndirect\n");
    let auth = crate::support::base64(b"berth:secret");
    assert_eq!(
        proxy.seen(),
        [
            format!("GET http://{ORIGIN}/via-proxy.txt HTTP/1.1 auth=Basic {auth}"),
            format!("CONNECT {ORIGIN}:443 HTTP/1.1 auth=Basic {auth}"),
        ]
    );
    assert_eq!(http.hits(), ["/via-proxy.txt", "/direct.txt"]);
    assert_eq!(https.hits(), ["/tunnelled.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_unpacks_bzip2_and_xz_tarballs_into_the_sandbox() {
    let server = Server::start(&[
        (
            "/one.tar.bz2",
            Reply::Body(bzip2(&tar_bytes(&[("bz/app.txt", b"bzip2\n", 0o644)]))),
        ),
        (
            "/two.txz",
            Reply::Body(xz(&tar_bytes(&[("xz/app.txt", b"xz\n", 0o644)]))),
        ),
    ])
    .await;
    let agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let id = launch_fetching(
        &agent,
        "archives",
        &[&server.url("/one.tar.bz2"), &server.url("/two.txz")],
        "cat bz/app.txt xz/app.txt",
    );
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let stdout = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).expect("stdout");
    assert_eq!(stdout, "bzip2\nxz\n");
}

/// `--fetcher_stall_timeout` bounds a fetch that receives nothing (Mesos's default is a
/// minute; the task fails well before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stall_timeout_flag_fails_a_fetch_that_receives_nothing() {
    let server = Server::start(&[(
        "/stalls.bin",
        Reply::Stall {
            first: vec![b'x'; 1000],
        },
    )])
    .await;
    let agent = TestAgent::start(&[PLAIN_PROCESSES, "--fetcher_stall_timeout", "1secs"]).await;
    let started = Instant::now();
    let id = launch_fetching(&agent, "stalled", &[&server.url("/stalls.bin")], "echo ran");
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{done}");
    assert!(message(&done).contains("sent nothing for 1s"), "{done}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!agent.sandbox(&id).join("stdout").exists(), "the task ran");
    assert!(sandbox_temp_files(&agent, &id).is_empty());
}

/// Mesos's `--executor_registration_timeout` (here from a Mesos agent's environment
/// variable): a launch stuck fetching is given up when it runs out, the task FAILED with
/// Mesos's reason, nothing started, the sandbox kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_timeout_gives_up_a_launch_stuck_fetching() {
    let server = Server::start(&[("/hangs.tgz", Reply::Hang)]).await;
    let agent =
        TestAgent::start_with_env(&[], &[("MESOS_EXECUTOR_REGISTRATION_TIMEOUT", "2secs")]).await;
    let started = Instant::now();
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo ran",
        "--uri",
        &server.url("/hangs.tgz"),
    ]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(
        done["reason"], "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        "{done}"
    );
    let said = message(&done);
    for part in ["2secs", "--executor_registration_timeout", "fetching"] {
        assert!(said.contains(part), "{part:?} missing: {said}");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(server.hits(), ["/hangs.tgz"]);
    assert!(agent.sandbox(&id).is_dir(), "the sandbox is kept");
    assert!(sandbox_temp_files(&agent, &id).is_empty());
    assert!(!agent.sandbox(&id).join("stdout").exists(), "the task ran");
    assert!(agent.containers().is_empty());
}

/// The same for a pull that never ends: the `docker pull` is stopped with the launch. A
/// pull that hangs cannot be had from a real registry on demand: the stand-in CLI hangs on
/// `pull` and passes everything else to the real docker.
#[tokio::test]
async fn the_registration_timeout_gives_up_a_launch_stuck_pulling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("pulling");
    let cli = crate::support::script(
        dir.path(),
        "slow-pull-docker",
        &format!(
            "for a in \"$@\"; do if [ \"$a\" = pull ]; then echo $$ > {}; exec sleep 300; fi; done\nexec docker \"$@\"",
            marker.display()
        ),
    );
    let agent = TestAgent::start(&[
        "--docker",
        cli.to_str().expect("utf-8"),
        "--executor_registration_timeout",
        "3secs",
    ])
    .await;
    let id = agent.launch(&[
        "--image",
        "127.0.0.1:5056/berth-test/public:latest",
        "--force_pull",
        "--command",
        "echo ran",
    ]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(
        done["reason"], "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        "{done}"
    );
    assert!(message(&done).contains("pulling"), "{done}");
    let pid: i32 = std::fs::read_to_string(&marker)
        .expect("the pull started")
        .trim()
        .parse()
        .expect("pid");
    eventually(
        Duration::from_secs(10),
        "the pull to be stopped",
        async || (!crate::support::process_alive(pid)).then_some(()),
    )
    .await;
    assert!(agent.containers().is_empty());
    assert!(!agent.sandbox(&id).join("stdout").exists(), "the task ran");
}

/// The deadline is counted from the task's durable acceptance: a launch resumed after a
/// restart that came too late is given up at once, without fetching again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_deadline_holds_across_a_restart() {
    let server = Server::start(&[("/hangs.tgz", Reply::Hang)]).await;
    let flags = ["--executor_registration_timeout", "3secs"];
    let mut agent = TestAgent::start(&flags).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo ran",
        "--uri",
        &server.url("/hangs.tgz"),
    ]);
    // The launch's acceptance is recorded before `launch` returns.
    let deadline = Instant::now() + Duration::from_secs(3);
    eventually(Duration::from_secs(10), "the fetch to start", async || {
        (!server.hits().is_empty()).then_some(())
    })
    .await;
    agent.crash();
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    agent.restart(&flags).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(
        done["reason"], "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        "{done}"
    );
    assert_eq!(
        server.hits(),
        ["/hangs.tgz"],
        "fetched again after the deadline"
    );
    assert!(agent.containers().is_empty());
    assert!(sandbox_temp_files(&agent, &id).is_empty());
}
