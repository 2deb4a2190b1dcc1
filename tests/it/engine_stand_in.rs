//! A stand-in for the engine's socket, for the faults a real engine cannot be made to
//! show for one container alone (it fails or hangs describing that one): every
//! connection is passed through to the real socket, except one whose first request
//! names the odd container while the fault is on. berth's own requests to the API are
//! one per connection, so each is seen; a CLI's connection opens with `/_ping` and passes
//! through whole. It runs on a thread of its own, so that a test blocking on a CLI of its
//! own does not stall it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The real engine's socket.
const ENGINE: &str = "/var/run/docker.sock";

/// What the odd container's requests get.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// A 500 answer with this message, as an engine that cannot read the container's
    /// configuration gives.
    Fails(&'static str),
    /// No answer at all, as an engine blocked on the container's lock gives.
    Hangs,
}

/// The stand-in; dropping it stops it and removes its socket.
pub struct EngineStandIn {
    dir: tempfile::TempDir,
    on: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EngineStandIn {
    /// Starts passing connections through, with `fault` on for requests naming `odd`.
    pub fn start(odd: &str, fault: Fault) -> EngineStandIn {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("engine.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let on = Arc::new(AtomicBool::new(true));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (odd, switch) = (odd.to_owned(), on.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = UnixListener::from_std(listener).expect("listener");
                let serving = async {
                    loop {
                        let Ok((caller, _)) = listener.accept().await else {
                            // Out of descriptors, say: the stand-in stops answering,
                            // which the test then sees.
                            return;
                        };
                        let (odd, on) = (odd.clone(), switch.clone());
                        tokio::spawn(pass(caller, odd, on, fault));
                    }
                };
                tokio::select! {
                    () = serving => {}
                    _ = stopped => {}
                }
            });
        });
        EngineStandIn {
            dir,
            on,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The socket to give as `--docker_socket`.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("engine.sock")
    }

    /// Turns the fault off: from now on everything passes through.
    pub fn heal(&self) {
        self.on.store(false, Ordering::SeqCst);
    }
}

impl Drop for EngineStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: its request's head read, then either the fault or everything passed
/// through both ways.
async fn pass(mut caller: UnixStream, odd: String, on: Arc<AtomicBool>, fault: Fault) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // The whole head, so that an answer given here is not cut short by a reset for bytes
    // left unread.
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match caller.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let first_line = text.lines().next().unwrap_or_default();
    if on.load(Ordering::SeqCst) && first_line.contains(&odd) {
        match fault {
            Fault::Fails(message) => {
                let body = serde_json::json!({ "message": message }).to_string();
                let _ = caller
                    .write_all(
                        format!(
                            "HTTP/1.0 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n{body}"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
            Fault::Hangs => {
                // Held open, unanswered, until the caller gives up.
                let mut rest = [0u8; 1024];
                while caller.read(&mut rest).await.is_ok_and(|n| n > 0) {}
            }
        }
        return;
    }
    let Ok(mut engine) = UnixStream::connect(Path::new(ENGINE)).await else {
        return;
    };
    if engine.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut caller, &mut engine).await;
}
