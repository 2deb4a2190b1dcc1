//! A plain process's output, carried from its pipes to the sandbox's rotated files.
//!
//! The process writes to pipes this executor reads, not to the files themselves, so that
//! the files can be rotated under it (a process holding a file open would go on writing
//! to the rotated one).

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, BorrowedFd};

use tokio::net::unix::pipe::Receiver;
use tokio::sync::watch;

use super::rotate::Sink;

/// What is read from a pipe at once.
const CHUNK: usize = 64 * 1024;

/// How much is read from a pipe once its process ended: what the process wrote is in the
/// pipe then (at most its capacity, 1 MiB unless an administrator raised
/// `fs.pipe-max-size`); more would come from leftovers of its that write on, which are not
/// waited for.
const DRAIN: usize = 1024 * 1024;

/// Makes the task's processes hold the read ends of their own output pipes, which they
/// never read: were the executor killed while the agent is down, a write would otherwise
/// end the task's main process with SIGPIPE, and with it the proof that the executor's
/// session is still the task's (a recorded process alive in it, docs/recovery.md, E3),
/// leaving whatever else the task started out of the sweep's reach. Holding them, a task
/// whose executor is gone blocks once a pipe is full and is swept at the next start.
#[allow(unsafe_code)]
pub(super) fn held_by_task(command: &mut tokio::process::Command, reads: [&Receiver; 2]) {
    let fds = reads.map(AsRawFd::as_raw_fd);
    // SAFETY: the closure runs between fork and exec and only calls fcntl(2), which is
    // async-signal-safe, on descriptors the parent keeps open across the spawn; clearing
    // FD_CLOEXEC changes the child's descriptor table alone.
    unsafe {
        command.pre_exec(move || {
            for fd in fds {
                let fd = BorrowedFd::borrow_raw(fd);
                nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )
                .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
}

/// Carries `pipe` to `sink` until the pipe ends, or until `ended` says the process was
/// reaped; then what the pipe holds still. A write that fails (a full disk) loses what it
/// held, and reading goes on, so that the process does not block on a full pipe while it
/// runs. After `ended`, nothing is read: what the task left that writes on is killed by
/// the executor (see `run_process`).
pub(super) async fn carry(pipe: Receiver, mut sink: Sink, mut ended: watch::Receiver<bool>) {
    let mut buf = vec![0u8; CHUNK];
    let mut failing = false;
    loop {
        let read = tokio::select! {
            ready = pipe.readable() => match ready {
                Ok(()) => pipe.try_read(&mut buf),
                Err(e) => Err(e),
            },
            _ = ended.wait_for(|ended| *ended) => break,
        };
        match read {
            Ok(0) => return,
            Ok(n) => super::on_disk(|| store(&mut sink, &buf[..n], &mut failing)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => {
                tracing::warn!("cannot read the task's output: {e}");
                return;
            }
        }
    }
    let mut drained = 0;
    while drained < DRAIN {
        match pipe.try_read(&mut buf) {
            Ok(n) if n > 0 => {
                super::on_disk(|| store(&mut sink, &buf[..n], &mut failing));
                drained += n;
            }
            _ => return,
        }
    }
}

/// Writes `bytes`, saying so once in the executor's log when writes start failing and
/// once when they work again.
fn store(sink: &mut Sink, bytes: &[u8], failing: &mut bool) {
    match sink.write_all(bytes) {
        Ok(()) if *failing => {
            *failing = false;
            tracing::warn!("the task's output is written to the sandbox again");
        }
        Ok(()) => {}
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!("cannot write the task's output to the sandbox ({e}); it is lost until a write works again");
        }
        Err(_) => {}
    }
}
