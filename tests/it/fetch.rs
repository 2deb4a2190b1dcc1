//! The fetcher against real files and a real HTTP server: a small one this file starts on
//! 127.0.0.1 (loopback only), answering GET from a fixed route table.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::fetch::{fetch, fetch_all, Archive, FetchError, Limits, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, Arc::clone(&routes), Arc::clone(&log)));
            }
        });
        Server { addr, hits, accept }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits lock").clone()
    }
}

async fn answer(
    mut socket: TcpStream,
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
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(())
        }
        Reply::Stall { first } => {
            let mut out = head("200 OK", first.len() + 100, "").into_bytes();
            out.extend_from_slice(&first);
            let _ = socket.write_all(&out).await;
            std::future::pending().await
        }
    };
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
        ("/tls", Reply::Redirect("https://127.0.0.1:1/x".into())),
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

    let err = fetch(&uri(&server.url("/tls")), &d.sandbox, short_limits())
        .await
        .expect_err("redirect to https");
    assert!(err.to_string().contains("https://"), "{err}");
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
async fn https_and_other_schemes_are_refused() {
    let d = dirs();
    let err = fetch(
        &uri("https://example.com/app.tgz"),
        &d.sandbox,
        short_limits(),
    )
    .await
    .expect_err("https");
    let message = err.to_string();
    assert!(message.contains("https"), "{message}");
    assert!(message.contains("serve it over http"), "{message}");
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
