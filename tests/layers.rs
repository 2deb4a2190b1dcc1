//! The layering that docs/architecture.md states ("Invariants"), read from the sources:
//! which module may import which, and which may do I/O. A test rather than a review note,
//! so that a change that breaks a layer fails here with the line that broke it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its path relative to `dir`.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).expect("read a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                let relative = path
                    .strip_prefix(dir)
                    .expect("under the directory")
                    .to_string_lossy()
                    .into_owned();
                found.push((relative, text));
            }
        }
    }
    found.sort();
    found
}

/// The lines that are code: comments (doc comments included) say what they like.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// The module a file of `src/` belongs to: its top-level module, but for `api`, which
/// holds both ends of the wire (the server above the containerizer, the client below the
/// executor), its submodule.
fn node_of(file: &str) -> Option<String> {
    let mut parts = file.trim_end_matches(".rs").split('/');
    let top = parts.next()?;
    match top {
        "main" | "lib" => None,
        "api" => Some(format!("api::{}", parts.next().unwrap_or("mod"))),
        _ => Some(top.to_owned()),
    }
}

/// The nodes a line of `from` names: through `crate::…` (grouped `crate::{a, b}` too),
/// and through `super::…` where that leaves the node (the submodules of `api`).
fn named(from: &str, line: &str) -> Vec<String> {
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let node = |top: &str, after: &str| -> Option<String> {
        match top {
            "" => None,
            "api" => {
                let sub = after.strip_prefix("::").map(word);
                Some(format!("api::{}", sub.unwrap_or_else(|| "mod".into())))
            }
            _ => Some(top.to_owned()),
        }
    };
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let item = item.trim();
                let top = word(item);
                out.extend(node(&top, &item[top.len()..]));
            }
        } else {
            let top = word(after);
            out.extend(node(&top, &after[top.len()..]));
        }
        rest = after;
    }
    // In `api/x.rs`, `super::wire` is `api::wire`: another node.
    if from.starts_with("api::") {
        let mut rest = line;
        while let Some(at) = rest.find("super::") {
            let after = &rest[at + "super::".len()..];
            let sub = word(after);
            if !sub.is_empty() && sub != "super" {
                out.push(format!("api::{sub}"));
            }
            rest = after;
        }
    }
    out
}

/// Who imports whom among the modules of `dir` (`src` or `state/src`), with one line
/// that shows each edge.
fn edges_in(dir: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (file, text) in sources(&root().join(dir)) {
        let Some(from) = node_of(&file) else { continue };
        for (n, line) in code_lines(&text) {
            for to in named(&from, line) {
                if to != from && to != "api::mod" {
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{dir}/{file}:{n}: {}", line.trim()));
                }
            }
        }
    }
    edges
}

fn edges() -> BTreeMap<String, BTreeMap<String, String>> {
    edges_in("src")
}

/// The import loops among `edges`, each shown by the lines that make it.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, String>>) -> BTreeSet<String> {
    // Depth-first search for a path back to the start, from each module.
    let mut cycles = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(next.clone());
                    let shown: Vec<String> = cycle
                        .windows(2)
                        .map(|w| edges[&w[0]][&w[1]].clone())
                        .collect();
                    cycles.insert(shown.join("\n  then "));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    cycles
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    for dir in ["src", "state/src"] {
        let cycles = cycles(&edges_in(dir));
        assert!(
            cycles.is_empty(),
            "modules of {dir} that import each other:\n{}",
            cycles.into_iter().collect::<Vec<_>>().join("\n\n")
        );
    }
}

/// `(module, what it may not import, why)`.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "containerizer",
        "api::",
        "the containerizer takes typed requests; the API turns HTTP into them",
    ),
    (
        "recovery",
        "api::",
        "recovery decides from the store and Docker, not from the API",
    ),
    (
        "metrics",
        "containerizer",
        "metrics counts what it is told; the containerizer tells it",
    ),
    (
        "docker",
        "containerizer",
        "the Docker layer runs calls; it knows no task",
    ),
    (
        "task",
        "fetch",
        "a TaskInfo is parsed without the fetcher; the fetcher reads the task's URIs",
    ),
];

#[test]
fn lower_layers_never_import_higher_ones() {
    let edges = edges();
    let mut broken = Vec::new();
    for (from, to_prefix, why) in FORBIDDEN {
        for (to, line) in edges.get(*from).into_iter().flatten() {
            if to.starts_with(to_prefix) {
                broken.push(format!("{from} imports {to} ({why}):\n  {line}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// What the API's server side may import: the model, the containerizer's public verbs,
/// and what turns their answers into HTTP.
const API_SERVER_KNOWS: &[(&str, &str)] = &[
    ("model", "the task model"),
    ("task", "the TaskInfo a launch body is parsed into"),
    (
        "containerizer",
        "the verbs it serves: launch, kill, list, get, acknowledge",
    ),
    (
        "state_view",
        "the `berth state` views, rendered as the CLI renders them",
    ),
    ("metrics", "`/metrics`' content type"),
    ("docker", "the engine's reachability, for `/health`"),
    ("duration", "a kill's grace in Mesos's forms"),
];

#[test]
fn the_api_server_knows_only_the_model_and_the_containerizers_verbs() {
    let edges = edges();
    let mut broken = Vec::new();
    for node in ["api::server", "api::wire", "api::updates"] {
        for (to, line) in edges.get(node).into_iter().flatten() {
            let known = to.starts_with("api::") || API_SERVER_KNOWS.iter().any(|(m, _)| m == to);
            if !known {
                broken.push(format!("{node} imports {to}:\n  {line}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the API's server side imports beyond the model and the containerizer's verbs:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_task_model_is_a_leaf() {
    let edges = edges();
    let imports: Vec<&String> = edges
        .get("model")
        .into_iter()
        .flat_map(|e| e.values())
        .collect();
    assert!(
        imports.is_empty(),
        "src/model/ imports nothing of berth's, so that every layer can use it:\n{imports:#?}"
    );
}

/// Words that mean I/O, a clock or a runtime in a pure decision.
const IMPURE: &[&str] = &[
    "tokio",
    "std::fs",
    "std::process",
    "std::net",
    "std::thread",
    "Command::new",
    "SystemTime::now",
    "Instant::now",
    "File::",
    "std::env",
    "std::{",
    ".exists()",
    ".metadata(",
];

#[test]
fn the_pure_decisions_do_no_io() {
    let pure = [
        "src/recovery/plan.rs",
        "src/recovery/plan/views.rs",
        "src/recovery/plan/actions.rs",
        "src/recovery/plan/seen.rs",
        "src/recovery/plan/case.rs",
        "src/recovery/plan/ending.rs",
        "src/recovery/plan/launch.rs",
        "src/recovery/plan/orphan.rs",
        "src/recovery/plan/why.rs",
        "src/recovery/plan/tests.rs",
        "src/task/launch.rs",
        "src/docker/argv.rs",
        "src/fetch/plan.rs",
        "state/src/task_state.rs",
        "state/src/schema1.rs",
        "src/model/reason.rs",
        "src/model/report.rs",
        "src/model/phase.rs",
        "state/src/repair.rs",
    ];
    let mut broken = Vec::new();
    for file in pure {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        for (n, line) in code_lines(&text) {
            if let Some(word) = IMPURE.iter().find(|w| line.contains(*w)) {
                broken.push(format!("{file}:{n} uses {word}: {}", line.trim()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The files that start processes, and what they start. In the agent and its executors
/// the Docker CLI is started only by `src/docker/` (`invoke.rs`), or from the command line
/// `Docker::command_line` gives (`spawn.rs`, an executor's own container); the chaos
/// harness runs its own commands (docker among them) to make its faults.
const SPAWNERS: &[(&str, &str)] = &[
    (
        "src/docker/invoke.rs",
        "every Docker CLI call, with its deadline",
    ),
    (
        "src/containerizer/spawn.rs",
        "executors, and `docker run -i` of an executor's container from Docker::command_line",
    ),
    ("src/executor/mod.rs", "a plain-process task"),
    ("src/identity.rs", "its tests' own `sleep`"),
    (
        "src/chaos/",
        "the chaos harness's agents, faults and stand-ins",
    ),
];

#[test]
fn only_the_listed_files_start_processes() {
    let mut broken = Vec::new();
    for (file, text) in sources(&root().join("src")) {
        let path = format!("src/{file}");
        if SPAWNERS.iter().any(|(allowed, _)| {
            path == *allowed || (allowed.ends_with('/') && path.starts_with(allowed))
        }) {
            continue;
        }
        for (n, line) in code_lines(&text) {
            let spawns = [
                "process::Command::new",
                ".spawn()",
                ".status()",
                ".output()",
            ]
            .iter()
            .any(|w| line.contains(w))
                && text.contains("process::Command");
            if spawns {
                broken.push(format!("{path}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "processes are started only where SPAWNERS says (the Docker CLI only by src/docker/):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_store_knows_nothing_of_docker_or_tasks() {
    let manifest = std::fs::read_to_string(root().join("state/Cargo.toml")).expect("manifest");
    assert!(
        !manifest.contains("berth ") && !manifest.contains("path = \"..\""),
        "berth-state must not depend on berth"
    );
    let mut broken = Vec::new();
    for (file, text) in sources(&root().join("state/src")) {
        for (n, line) in code_lines(&text) {
            if line.contains("Command::new") || line.to_lowercase().contains("docker") {
                broken.push(format!("state/src/{file}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The files that start a task or a thread, and who owns what they start: in the agent, the
/// containerizer's tracker (`tasks.rs`) owns its background work; each other start is
/// awaited, held by a handle or a `JoinSet` that ends it, or bounded as its entry says. A
/// start anywhere else is work nobody has said how it ends.
const TASK_STARTERS: &[(&str, &str)] = &[
    (
        "src/containerizer/tasks.rs",
        "the tracker that owns the containerizer's background work",
    ),
    (
        "src/containerizer/mod.rs",
        "`spawn_owned`, which hands work to the tracker",
    ),
    ("src/containerizer/pipeline.rs", "blocking file work, awaited"),
    ("src/api/events.rs", "a blocking store read, awaited"),
    (
        "src/api/server.rs",
        "one `/metrics` connection, bounded by its deadline (5 s) and its slot",
    ),
    (
        "src/api/client.rs",
        "the connection driver of one request, which ends with the request's side of the connection",
    ),
    (
        "src/agent.rs",
        "the probe and `/metrics`, held by handles that end them; the server, aborted or awaited on every way out",
    ),
    (
        "src/recovery/act.rs",
        "one recovery's actions, a JoinSet drained before it returns (and aborted if dropped)",
    ),
    (
        "src/docker/mod.rs",
        "the inspects of one listing, a JoinSet dropped (aborting them) at its deadline",
    ),
    (
        "src/docker/invoke.rs",
        "the readers of one CLI call's output, awaited",
    ),
    ("src/fetch/mod.rs", "blocking fetches, awaited"),
    (
        "src/run_as.rs",
        "a user lookup on a thread of its own, given up on (not joined) at its deadline, so that a hung NSS call cannot hold a runtime thread",
    ),
    (
        "src/executor/mod.rs",
        "the executor process's pipe carriers and report sends, awaited, or ended with the process",
    ),
    (
        "src/executor/report.rs",
        "the executor process's report sends, awaited",
    ),
    (
        "src/chaos/loopback.rs",
        "the chaos harness's stand-in listener",
    ),
    (
        "src/chaos/campaign.rs",
        "a campaign's waits, a JoinSet drained at its end",
    ),
    (
        "state/src/flush/flusher.rs",
        "the store's flusher thread, joined on drop",
    ),
    (
        "chaos/src/kill_loop.rs",
        "the torture harness's reader of its child, which ends with the child",
    ),
];

/// Whether `line` starts a task or a thread: any `spawn(` or `spawn_blocking(` with
/// something to run (a process's `spawn()` takes nothing), and a thread's builder.
fn starts_task(line: &str) -> bool {
    let mut rest = line;
    while let Some(at) = rest.find("spawn") {
        let after = &rest[at + "spawn".len()..];
        let after = after.strip_prefix("_blocking").unwrap_or(after);
        let after = after.strip_prefix("_local").unwrap_or(after);
        if after.starts_with('(') && !after.starts_with("()") {
            return true;
        }
        rest = after;
    }
    line.contains("thread::Builder") || line.contains("thread::scope")
}

/// `text` without its `#[cfg(test)] mod tests { ... }` block: a unit test's tasks end
/// with its runtime. The block is cut at its own closing brace, so that code after it is
/// still read.
fn without_unit_tests(text: &str) -> String {
    let marker = "#[cfg(test)]\nmod tests {";
    let Some(start) = text.find(marker) else {
        return text.to_owned();
    };
    let mut depth = 0usize;
    let body = &text[start + marker.len() - 1..];
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let end = start + marker.len() - 1 + i + 1;
                    // Keep the line count, so that reported line numbers stay true.
                    let cut = "\n".repeat(text[start..end].matches('\n').count());
                    return format!(
                        "{}{cut}{}",
                        &text[..start],
                        without_unit_tests(&text[end..])
                    );
                }
            }
            _ => {}
        }
    }
    text[..start].to_owned()
}

#[test]
fn only_files_that_say_who_owns_it_start_a_task() {
    let mut broken = Vec::new();
    let mut used = BTreeSet::new();
    for dir in ["src", "state/src", "chaos/src"] {
        for (file, text) in sources(&root().join(dir)) {
            let path = format!("{dir}/{file}");
            let code = without_unit_tests(&text);
            for (n, line) in code_lines(&code) {
                if !starts_task(line) {
                    continue;
                }
                if TASK_STARTERS.iter().any(|(f, _)| *f == path) {
                    used.insert(path.clone());
                } else {
                    broken.push(format!("{path}:{n}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "tasks or threads started where TASK_STARTERS does not say who owns them:\n{}",
        broken.join("\n")
    );
    let stale: Vec<_> = TASK_STARTERS
        .iter()
        .filter(|(f, _)| !used.contains(*f))
        .collect();
    assert!(
        stale.is_empty(),
        "TASK_STARTERS lists files that start nothing: {stale:?}"
    );
}

#[test]
fn a_task_start_is_seen_however_it_is_written() {
    for line in [
        "tokio::spawn(async move {",
        "let driver = tokio::spawn(connection);",
        "acting.spawn(async move {",
        "self.background.spawn(work)",
        "tokio::task::spawn_blocking(move || {",
        "handle.spawn(fut);",
        "std::thread::Builder::new()",
        "std::thread::spawn(move || {",
    ] {
        assert!(starts_task(line), "{line}");
    }
    for line in [
        "let child = command.spawn()?;",
        "fn spawn_pipeline(self: &Arc<Self>) {",
    ] {
        assert!(!starts_task(line), "{line}");
    }
    let text = "a\n#[cfg(test)]\nmod tests {\n    fn f() { spawn(x) }\n}\nb\n";
    assert_eq!(without_unit_tests(text), "a\n\n\n\n\nb\n");
}
