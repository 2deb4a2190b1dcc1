//! `berth logs`: a task's output.
//!
//! The output is read from the task's sandbox, `<work_dir>/sandboxes/<container id>/stdout`
//! and `stderr`, which its executor writes: through the agent, which says where the
//! sandbox is and when the task has ended, or from the work directory alone when no agent
//! answers. Files rotated away by size (`stdout.N` ... `stdout.1`, the newest being
//! `stdout.1`, as logrotate names them) are read first, oldest first. Nothing is read
//! whole into memory: `--tail` seeks back from the end, and everything is copied through
//! a small buffer.
//!
//! The sandbox files hold the bytes the task wrote and no times, so `--since` reads
//! Docker's own log of the task's container instead, through the engine's API, which
//! needs the agent (it names the container) and a Docker task.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::api::client::{Client, ClientError};
use crate::containerizer::TaskView;
use crate::docker::log::{self, Query, Stream};

/// How much is read back from the end at a time while looking for `--tail`'s lines.
const TAIL_CHUNK: usize = 64 * 1024;
/// How often a follow looks at the files when no change was notified, and asks the agent
/// whether the task has ended.
const FOLLOW_TICK: Duration = Duration::from_secs(1);

/// Which of a task's streams to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Streams {
    /// Its standard output, on standard output.
    Stdout,
    /// Its standard error, on standard output.
    Stderr,
    /// Both: its standard output on standard output and its standard error on standard
    /// error, as `docker logs` prints them.
    Both,
}

impl Streams {
    fn names(self) -> &'static [&'static str] {
        match self {
            Streams::Stdout => &["stdout"],
            Streams::Stderr => &["stderr"],
            Streams::Both => &["stdout", "stderr"],
        }
    }
}

/// What `berth logs` was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// A container id or a unique prefix of one.
    pub id: String,
    /// Which streams.
    pub streams: Streams,
    /// Keep printing what is appended: until the task has ended, through the agent; until
    /// interrupted, without it.
    pub follow: bool,
    /// Only the last this many lines of each stream.
    pub tail: Option<u64>,
    /// Only what Docker logged from then on.
    pub since: Option<SystemTime>,
}

/// Why `berth logs` could not print.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The agent answered with an error, or broke off.
    #[error(transparent)]
    Agent(#[from] ClientError),
    /// No agent answers and the id names no single sandbox in the work directory.
    #[error("no agent answers at {socket}, and {why} in {dir}: check the id and --work_dir")]
    NoSandbox {
        /// The agent's socket.
        socket: PathBuf,
        /// The sandboxes' directory.
        dir: PathBuf,
        /// What the directory said.
        why: String,
    },
    /// `--since` without an agent.
    #[error("--since reads Docker's log of the task's container, which needs the agent to name it, and no agent answers at {0}; without --since the sandbox's files are read (they hold no times)")]
    SinceOffline(PathBuf),
    /// `--since` for a task with no Docker container.
    #[error("--since reads Docker's log, and task {0} runs as a plain process without a Docker container; leave --since out to read its sandbox's files")]
    SinceWithoutDocker(String),
    /// Docker's log could not be read.
    #[error("cannot read Docker's log of {name} through {socket}: {source}")]
    Docker {
        /// The container's name.
        name: String,
        /// The engine's socket.
        socket: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A sandbox file could not be read, or the output written.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where `--since` comes from: a duration back from now (`10m`, `2hrs`) or an RFC 3339
/// time (`2026-01-01T10:00:00Z`). Pure.
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(back) = crate::duration::parse(text) {
        return Ok(now.checked_sub(back).unwrap_or(SystemTime::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
        format!("invalid time {text:?}: write a duration back from now, such as 10m or 2hrs, or an RFC 3339 time, such as 2026-01-01T10:00:00Z")
    })
}

/// The files one stream is kept in, oldest first: the rotated ones (`stdout.N` ...
/// `stdout.1`) by number, then the live one, of those `names` (a sandbox's entries) holds.
/// Pure.
pub fn chain(stream: &str, names: &[String]) -> Vec<String> {
    let mut rotated: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|name| {
            let n = name.strip_prefix(stream)?.strip_prefix('.')?;
            // Only plain numbers: `stdout.1.gz` or `stdout.tmp` are not the stream's.
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((n.parse().ok()?, name))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<String> = rotated.into_iter().map(|(_, n)| n.clone()).collect();
    if names.iter().any(|n| n == stream) {
        files.push(stream.to_owned());
    }
    files
}

/// Where the last `lines` lines of `files`, read one after the other, start: the index of
/// a file and the offset in it. A last line without its line break counts as a line, as
/// with `tail -n`. Reads back from the end `chunk` bytes at a time, no more than it needs.
pub fn tail_start<R: Read + Seek>(
    files: &mut [R],
    lines: u64,
    chunk: usize,
) -> io::Result<(usize, u64)> {
    let mut lengths = Vec::with_capacity(files.len());
    for file in files.iter_mut() {
        lengths.push(file.seek(SeekFrom::End(0))?);
    }
    let end = match lengths.iter().rposition(|&len| len > 0) {
        Some(last) => (last, lengths[last]),
        None => return Ok((0, 0)),
    };
    if lines == 0 {
        return Ok(end);
    }
    let mut breaks = 0u64;
    let mut buf = vec![0u8; chunk.max(1)];
    // The very last byte ends the last line: it does not start one.
    let mut skip_last = true;
    for index in (0..=end.0).rev() {
        let mut pos = lengths[index];
        while pos > 0 {
            let size = usize::try_from(pos).map_or(buf.len(), |p| p.min(buf.len()));
            pos -= size as u64;
            let file = &mut files[index];
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut buf[..size])?;
            for (i, &byte) in buf[..size].iter().enumerate().rev() {
                if std::mem::take(&mut skip_last) {
                    continue;
                }
                if byte == b'\n' {
                    breaks += 1;
                    if breaks == lines {
                        return Ok((index, pos + i as u64 + 1));
                    }
                }
            }
        }
    }
    Ok((0, 0))
}

/// Copies `files` from `start` on to `out`, through a small buffer.
fn copy_from(files: &mut [File], start: (usize, u64), out: &mut dyn Write) -> io::Result<()> {
    for (index, file) in files.iter_mut().enumerate().skip(start.0) {
        let offset = if index == start.0 { start.1 } else { 0 };
        file.seek(SeekFrom::Start(offset))?;
        io::copy(file, out)?;
    }
    out.flush()
}

/// One stream of a sandbox: printed once, then followed.
struct Follower {
    /// The live file (`<sandbox>/stdout`).
    path: PathBuf,
    /// The live file as it was opened, read up to where it was printed.
    file: Option<File>,
    /// Where this stream goes.
    out: Box<dyn Write>,
}

impl Follower {
    /// Prints the stream's files (their last `tail` lines) and keeps the live one open.
    fn start(
        sandbox: &Path,
        stream: &str,
        tail: Option<u64>,
        out: Box<dyn Write>,
    ) -> io::Result<Follower> {
        let names: Vec<String> = match std::fs::read_dir(sandbox) {
            Ok(dir) => dir
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        let mut live = None;
        for name in chain(stream, &names) {
            // A rotation may move a file away between listing and opening: it is then
            // read under its next name, or was already.
            match File::open(sandbox.join(&name)) {
                Ok(file) => {
                    if name == stream {
                        live = Some(files.len());
                    }
                    files.push(file);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut follower = Follower {
            path: sandbox.join(stream),
            file: None,
            out,
        };
        let start = match tail {
            Some(lines) => tail_start(&mut files, lines, TAIL_CHUNK)?,
            None => (0, 0),
        };
        copy_from(&mut files, start, &mut follower.out)?;
        follower.file = live.map(|i| files.swap_remove(i));
        Ok(follower)
    }

    /// Prints what was appended since; after a rotation, what the old file got last,
    /// then the new file from its start.
    fn pump(&mut self) -> io::Result<()> {
        // Looked at first: a writer makes its new file once it has left the old one, so
        // the old one, drained after this look, is complete.
        let moved = match std::fs::metadata(&self.path) {
            Ok(now) => match &self.file {
                Some(held) => {
                    let held = held.metadata()?;
                    (held.dev(), held.ino()) != (now.dev(), now.ino())
                }
                None => true,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if let Some(file) = &mut self.file {
            io::copy(file, &mut self.out)?;
        }
        if moved {
            match File::open(&self.path) {
                Ok(mut file) => {
                    io::copy(&mut file, &mut self.out)?;
                    self.file = Some(file);
                }
                // Rotated away again since the look: the next pump finds the newest.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.out.flush()
    }
}

/// `berth logs`. `socket` is the agent's; `work_dir` is where its sandboxes are found when
/// it does not answer; `docker_socket` is the engine's, for `--since`.
pub async fn run(
    request: &Request,
    socket: &Path,
    work_dir: &Path,
    docker_socket: &Path,
) -> Result<(), LogsError> {
    // Impatient: a stopped agent is no reason to wait, the files are there.
    let client = Client::new(socket);
    let view = match crate::cli::get(&client, &request.id).await {
        Ok(view) => Some(view),
        Err(e) if e.not_ready().is_some() => None,
        Err(e) => return Err(e.into()),
    };
    let done = match (&view, request.since) {
        (Some(view), Some(since)) => docker_log(view, request, since, docker_socket).await,
        (None, Some(_)) => Err(LogsError::SinceOffline(socket.to_owned())),
        (Some(view), None) => sandbox_log(&view.sandbox, request, Some((&client, view))).await,
        (None, None) => {
            let sandbox = offline_sandbox(&request.id, work_dir, socket)?;
            sandbox_log(&sandbox, request, None).await
        }
    };
    match done {
        // `berth logs ID | head`: what the reader did not take is not wanted.
        Err(LogsError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        done => done,
    }
}

/// The sandbox of the container whose id `arg` is, or starts with, among the work
/// directory's sandboxes.
fn offline_sandbox(arg: &str, work_dir: &Path, socket: &Path) -> Result<PathBuf, LogsError> {
    let dir = work_dir.join("sandboxes");
    let no_sandbox = |why: String| LogsError::NoSandbox {
        socket: socket.to_owned(),
        dir: dir.clone(),
        why,
    };
    let ids: Vec<uuid::Uuid> = std::fs::read_dir(&dir)
        .map_err(|e| no_sandbox(format!("its sandboxes cannot be listed ({e})")))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let id = berth_state::inspect::resolve(arg, &ids).map_err(|e| match e {
        berth_state::inspect::IdError::NotFound(_) => {
            no_sandbox(format!("no sandbox's name starts with {arg:?}"))
        }
        berth_state::inspect::IdError::Ambiguous(_, n) => {
            no_sandbox(format!("{arg:?} starts {n} sandboxes' names"))
        }
    })?;
    Ok(dir.join(id.to_string()))
}

fn output(stream: &str, streams: Streams) -> Box<dyn Write> {
    match (streams, stream) {
        (Streams::Both, "stderr") => Box::new(io::stderr()),
        _ => Box::new(io::stdout()),
    }
}

async fn sandbox_log(
    sandbox: &Path,
    request: &Request,
    agent: Option<(&Client, &TaskView)>,
) -> Result<(), LogsError> {
    let mut followers = Vec::new();
    for stream in request.streams.names() {
        followers.push(Follower::start(
            sandbox,
            stream,
            request.tail,
            output(stream, request.streams),
        )?);
    }
    if !request.follow {
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Watch the directory: the files may not exist yet, and are replaced when rotated.
    let mut watcher = notify::recommended_watcher(move |_| {
        let _ = tx.send(());
    })
    .map_err(io::Error::other)?;
    notify::Watcher::watch(&mut watcher, sandbox, notify::RecursiveMode::NonRecursive)
        .map_err(io::Error::other)?;
    loop {
        tokio::select! {
            _ = rx.recv() => {
                for f in &mut followers {
                    f.pump()?;
                }
            }
            _ = tokio::time::sleep(FOLLOW_TICK) => {
                // Asked before the last pump, so that what the task wrote before it
                // ended is printed; an agent that went away ends the follow too.
                let ended = match agent {
                    Some((client, view)) => crate::cli::get(client, &view.container_id.to_string())
                        .await
                        .map(|v| v.state.is_terminal())
                        .unwrap_or(true),
                    None => false,
                };
                for f in &mut followers {
                    f.pump()?;
                }
                if ended {
                    return Ok(());
                }
            }
        }
    }
}

async fn docker_log(
    view: &TaskView,
    request: &Request,
    since: SystemTime,
    docker_socket: &Path,
) -> Result<(), LogsError> {
    let Some(name) = &view.docker_name else {
        return Err(LogsError::SinceWithoutDocker(view.container_id.to_string()));
    };
    let failed = |source| LogsError::Docker {
        name: name.clone(),
        socket: docker_socket.to_owned(),
        source,
    };
    let query = Query {
        since: Some(since),
        tail: request.tail,
        follow: request.follow,
    };
    let mut messages = log::open(docker_socket, name, &query)
        .await
        .map_err(failed)?;
    let (mut out, mut err) = (io::stdout(), io::stderr());
    while let Some(message) = messages
        .next(|e| eprintln!("berth: Docker: {e}"))
        .await
        .map_err(failed)?
    {
        let sink: &mut dyn Write = match (request.streams, message.stream) {
            (Streams::Both, Stream::Stderr) => &mut err,
            (Streams::Both | Streams::Stdout, Stream::Stdout)
            | (Streams::Stderr, Stream::Stderr) => &mut out,
            (Streams::Stdout, Stream::Stderr) | (Streams::Stderr, Stream::Stdout) => continue,
        };
        sink.write_all(&message.bytes)?;
        sink.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_stream_is_read_from_its_oldest_rotated_file_to_the_live_one() {
        let cases: [(&[&str], &[&str]); 5] = [
            (&["stdout", "stderr"], &["stdout"]),
            (&[], &[]),
            (
                &["stdout.1", "stdout", "stdout.10", "stdout.2", "stderr.1"],
                &["stdout.10", "stdout.2", "stdout.1", "stdout"],
            ),
            // Rotated, the live file not made again yet.
            (&["stdout.1"], &["stdout.1"]),
            // Not the stream's: other streams, compressed or temporary files.
            (
                &[
                    "stdout.1.gz",
                    "stdout.",
                    "stdout.x",
                    "stdoutx",
                    "stdout.-1",
                    "stdout",
                ],
                &["stdout"],
            ),
        ];
        for (dir, want) in cases {
            assert_eq!(chain("stdout", &names(dir)), names(want), "{dir:?}");
        }
    }

    /// The text from where `tail_start` says, for each chunk size.
    fn tail(files: &[&str], lines: u64) -> Vec<String> {
        [1, 2, 3, 7, 64 * 1024]
            .into_iter()
            .map(|chunk| {
                let mut cursors: Vec<_> = files.iter().map(|f| Cursor::new(f.as_bytes())).collect();
                let (index, offset) = tail_start(&mut cursors, lines, chunk).expect("in memory");
                let mut text = String::new();
                for (i, f) in files.iter().enumerate().skip(index) {
                    let from = if i == index { offset as usize } else { 0 };
                    text.push_str(f.get(from..).unwrap_or_default());
                }
                text
            })
            .collect()
    }

    #[test]
    fn tail_starts_at_the_last_lines_across_rotated_files() {
        type Case = (&'static [&'static str], u64, &'static str);
        let cases: [Case; 13] = [
            (&["a\nb\nc\n"], 2, "b\nc\n"),
            (&["a\nb\nc\n"], 3, "a\nb\nc\n"),
            (&["a\nb\nc\n"], 10, "a\nb\nc\n"),
            (&["a\nb\nc\n"], 0, ""),
            // A last line without its break is a line.
            (&["a\nb\nc"], 1, "c"),
            (&["a\nb\nc"], 2, "b\nc"),
            // Empty lines count.
            (&["\n\n\n"], 2, "\n\n"),
            (&[""], 3, ""),
            (&[], 3, ""),
            // Across the rotated files, oldest first.
            (&["a\nb\n", "c\n", "d\ne\n"], 3, "c\nd\ne\n"),
            (&["a\nb\n", "c\n", "d\ne\n"], 4, "b\nc\nd\ne\n"),
            // A line cut by the rotation is one line; an empty live file is skipped.
            (&["a\nb", "c\n", ""], 1, "bc\n"),
            (&["a\n", "", ""], 1, "a\n"),
        ];
        for (files, lines, want) in cases {
            for got in tail(files, lines) {
                assert_eq!(got, want, "{files:?} {lines}");
            }
        }
    }

    /// What a follower printed.
    #[derive(Clone, Default)]
    struct Printed(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Printed {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Printed {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
        }
    }

    #[test]
    fn a_follow_reads_on_across_a_rotation_without_losing_or_repeating_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("stdout.1"), "old\n").expect("write");
        let mut writer = File::create(path("stdout")).expect("create");
        writer.write_all(b"one\ntwo\n").expect("write");
        let printed = Printed::default();
        let mut follower =
            Follower::start(dir.path(), "stdout", Some(2), Box::new(printed.clone()))
                .expect("start");
        assert_eq!(printed.text(), "one\ntwo\n");
        writer.write_all(b"three\n").expect("write");
        follower.pump().expect("pump");
        assert_eq!(printed.text(), "one\ntwo\nthree\n");
        // Rotated as logrotate would: the writer's last line still goes to the old file,
        // then it moves to a new one.
        std::fs::rename(path("stdout.1"), path("stdout.2")).expect("rename");
        std::fs::rename(path("stdout"), path("stdout.1")).expect("rename");
        writer.write_all(b"four\n").expect("write");
        let mut writer = File::create(path("stdout")).expect("create");
        writer.write_all(b"five\n").expect("write");
        follower.pump().expect("pump");
        writer.write_all(b"six\n").expect("write");
        follower.pump().expect("pump");
        follower.pump().expect("pump");
        assert_eq!(printed.text(), "one\ntwo\nthree\nfour\nfive\nsix\n");
        // From the start, the rotated files come first, oldest first.
        let all = Printed::default();
        Follower::start(dir.path(), "stdout", None, Box::new(all.clone())).expect("start");
        assert_eq!(all.text(), "old\none\ntwo\nthree\nfour\nfive\nsix\n");
        // A stream whose file is not there yet prints nothing, then what comes.
        let later = Printed::default();
        let mut follower =
            Follower::start(dir.path(), "stderr", None, Box::new(later.clone())).expect("start");
        follower.pump().expect("pump");
        std::fs::write(path("stderr"), "err\n").expect("write");
        follower.pump().expect("pump");
        assert_eq!(later.text(), "err\n");
    }

    #[test]
    fn since_is_a_duration_back_or_a_time() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let cases = [
            ("10m", Some(1_767_225_000)),
            ("2hrs", Some(1_767_218_400)),
            ("0s", Some(1_767_225_600)),
            ("2026-01-01T00:00:00Z", Some(1_767_225_600)),
            ("2025-12-31T23:00:00Z", Some(1_767_222_000)),
            ("1000weeks", Some(1_162_425_600)),
            // Further back than a duration holds.
            ("100000weeks", None),
            ("yesterday", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = parse_since(text, now).ok().map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            });
            assert_eq!(got, want, "{text:?}");
        }
    }
}
