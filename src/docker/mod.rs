//! The Docker adapter: the only module that spawns `docker` or talks to the engine.
//!
//! The CLI is the contract for actions, as in Mesos. Each verb here builds its argv with a
//! pure function from [`argv`], runs it through `invoke` with a deadline, and parses
//! what comes back into typed values. Every call carries `-H unix://<--docker_socket>`.
//! The questions a launch asks on its way to RUNNING (is the image here, does the
//! container run) go to the engine's API on the same socket ([`engine`]): the same answer
//! without a CLI process's start-up.

pub mod argv;
pub mod engine;
mod error;
pub mod inspect;
mod invoke;
pub mod listing;
pub mod log;
pub mod name;
pub mod reach;
pub mod version;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use argv::{Attach, PullPolicy, RunSpec};
pub use error::DockerError;
pub use inspect::{ContainerInfo, ContainerState, Mount};
pub use name::ContainerName;
pub use reach::Reachability;
pub use version::Version;

use invoke::{Call, Finished};

/// How many containers a listing asks the engine about at once: enough to keep both of a
/// small host's cores busy, few enough not to crowd out the engine's other callers.
const LISTING_AT_ONCE: usize = 8;

/// Where the CLI is and how long its calls may take.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The CLI (`--docker`).
    pub program: PathBuf,
    /// The engine's socket (`--docker_socket`).
    pub socket: PathBuf,
    /// Deadline of the start-up version check (Mesos uses 5 s).
    pub version_timeout: Duration,
    /// Deadline of ordinary calls: inspect, ps, rm, run -d.
    pub call_timeout: Duration,
    /// Deadline of a pull, which moves whole images.
    pub pull_timeout: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            program: PathBuf::from("docker"),
            socket: PathBuf::from("/var/run/docker.sock"),
            version_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            pull_timeout: Duration::from_secs(600),
        }
    }
}

/// The client and engine versions found at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// The CLI's version.
    pub client: Version,
    /// The engine's version.
    pub server: Version,
}

/// What a pull step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// The image was present and the policy allowed using it.
    Present,
    /// `docker pull` ran and succeeded.
    Pulled,
}

/// A handle on the Docker CLI. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Docker {
    config: DockerConfig,
    /// Whether the engine answers, shared by the clones: each call's result goes in.
    reach: Arc<reach::Reach>,
}

impl Docker {
    /// A handle that will use `config` for every call. Nothing is run yet.
    pub fn new(config: DockerConfig) -> Docker {
        Docker {
            config,
            reach: Arc::new(reach::Reach::new()),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Checks that both the CLI and the engine answer and are at least
    /// [`version::MINIMUM`].
    pub async fn check_version(&self) -> Result<Versions, DockerError> {
        let out = self
            .call(argv::version(), self.config.version_timeout)
            .await?
            .success()?;
        let unreadable = |what: &str| DockerError::Output {
            command: out.command.clone(),
            reason: format!("{what} in {:?}", out.stdout.trim()),
        };
        let (client, server) = version::split_client_server(&out.stdout)
            .ok_or_else(|| unreadable("no CLIENT|SERVER line"))?;
        let client = Version::parse(client).ok_or_else(|| unreadable("no client version"))?;
        let server = Version::parse(server).ok_or_else(|| unreadable("no server version"))?;
        for (component, found) in [("client", client), ("server", server)] {
            if found < version::MINIMUM {
                return Err(DockerError::TooOld { component, found });
            }
        }
        Ok(Versions { client, server })
    }

    /// `docker run -d`: starts the container and returns its id.
    pub async fn run_detached(&self, spec: &RunSpec) -> Result<String, DockerError> {
        let out = self
            .call(argv::run(spec, Attach::Detached)?, self.config.call_timeout)
            .await?
            .success()?;
        container_id(out)
    }

    /// `docker create`: the container exists, stopped, and its id is returned.
    pub async fn create(&self, spec: &RunSpec) -> Result<String, DockerError> {
        let argv = argv::create(spec)?;
        let out = crashing("create", self.call(argv, self.config.call_timeout)).await?;
        container_id(out.success()?)
    }

    /// `docker start NAME`: starts a created container; starting a running one is no
    /// change.
    pub async fn start(&self, name: &str) -> Result<(), DockerError> {
        let out = self
            .call(argv::start(name), self.config.call_timeout)
            .await?;
        not_found_as_error(name, out).map(drop)
    }

    /// `docker stop -t GRACE`: SIGTERM, then SIGKILL after the grace period.
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<(), DockerError> {
        // Docker takes whole seconds; round up so the task gets at least its grace.
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let timeout = self.config.call_timeout + Duration::from_secs(secs);
        let out = crashing("stop", self.call(argv::stop(name, secs), timeout)).await?;
        not_found_as_error(name, out).map(drop)
    }

    /// `docker kill --signal KILL`: the escalation once a kill's grace is over.
    pub async fn kill(&self, name: &str) -> Result<(), DockerError> {
        let out = self
            .call(argv::kill(name), self.config.call_timeout)
            .await?;
        not_found_as_error(name, out).map(drop)
    }

    /// `docker rm -f -v`. Removing a container that is already gone succeeds.
    pub async fn rm(&self, name: &str) -> Result<(), DockerError> {
        let out = crashing("rm", self.call(argv::rm(name), self.config.call_timeout)).await?;
        match not_found_as_error(name, out) {
            Ok(_) | Err(DockerError::NoSuchContainer(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Inspects one container; `None` when it does not exist.
    pub async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, DockerError> {
        let mut found = self.inspect_many(&[name.to_owned()]).await?;
        Ok(found.pop())
    }

    /// `docker inspect` of one container, as Docker prints it, for a person to read;
    /// `None` when it does not exist.
    pub async fn inspect_document(
        &self,
        name: &str,
    ) -> Result<Option<serde_json::Value>, DockerError> {
        let mut found = Vec::new();
        for call in argv::inspect_containers(&[name.to_owned()]) {
            let out = self.call(call, self.config.call_timeout).await?;
            let missing = out.stderr.lines().any(is_not_found);
            if out.code != Some(0) {
                return if missing {
                    Ok(None)
                } else {
                    Err(out.failure())
                };
            }
            let parsed: Vec<serde_json::Value> =
                serde_json::from_str(&out.stdout).map_err(|e| DockerError::Output {
                    command: out.command.clone(),
                    reason: format!("not a JSON array: {e}"),
                })?;
            found.extend(parsed);
        }
        Ok(found.pop())
    }

    /// Inspects many containers in as few calls as the argv budget allows. Containers that
    /// vanished between listing and inspecting are left out rather than failing the rest.
    pub async fn inspect_many(&self, ids: &[String]) -> Result<Vec<ContainerInfo>, DockerError> {
        let mut all = Vec::with_capacity(ids.len());
        for call in argv::inspect_containers(ids) {
            let out = self.call(call, self.config.call_timeout).await?;
            // Docker prints the containers it found even when others were missing, and
            // exits 1 with one "No such ..." line per missing one. A failure that says
            // nothing (a CLI killed by a signal) is not read as "all missing".
            let mut said = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .peekable();
            let only_missing = said.peek().is_some() && said.all(is_not_found);
            if out.code != Some(0) && !only_missing {
                return Err(out.failure());
            }
            let parsed = inspect::parse(&out.stdout).map_err(|source| DockerError::Inspect {
                command: out.command.clone(),
                source,
            })?;
            all.extend(parsed);
        }
        Ok(all)
    }

    /// Every container whose name starts with `prefix`, inspected: one `docker ps`, then
    /// each container asked of the engine's API, `LISTING_AT_ONCE` at a time (a
    /// millisecond or so each, where one batched `docker inspect` takes the engine's time
    /// one after the other, plus a CLI's start-up). A container Docker cannot describe,
    /// or whose inspect hangs, is reported with its error and the others are still
    /// described; only a Docker out of reach fails the whole listing.
    pub async fn list(&self, prefix: &str) -> Result<Vec<listing::Listed>, DockerError> {
        let out = self
            .call(argv::ps_prefix(prefix), self.config.call_timeout)
            .await?
            .success()?;
        let rows =
            listing::parse_rows(&out.stdout, prefix).map_err(|reason| DockerError::Output {
                command: out.command.clone(),
                reason,
            })?;
        self.inspect_each(rows).await
    }

    /// Inspects each listed container by itself through the API, [`LISTING_AT_ONCE`] at a
    /// time, within twice the call timeout in all: a container whose inspect fails or
    /// hangs is reported failed, one that vanished since `ps` is left out, and only a
    /// Docker out of reach fails the whole listing.
    async fn inspect_each(
        &self,
        rows: Vec<listing::Row>,
    ) -> Result<Vec<listing::Listed>, DockerError> {
        let budget = self.config.call_timeout * 2;
        let permits = Arc::new(tokio::sync::Semaphore::new(LISTING_AT_ONCE));
        let mut inspecting = tokio::task::JoinSet::new();
        for (i, row) in rows.iter().enumerate() {
            let (docker, id, permits) = (self.clone(), row.id.clone(), permits.clone());
            inspecting.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (i, docker.inspect_by_api(&id).await)
            });
        }
        let mut results: Vec<Option<Result<Option<ContainerInfo>, DockerError>>> =
            rows.iter().map(|_| None).collect();
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            match tokio::time::timeout_at(deadline, inspecting.join_next()).await {
                Ok(Some(Ok((i, result)))) => results[i] = Some(result),
                Ok(Some(Err(e))) => tracing::error!("an inspect of the listing failed: {e}"),
                Ok(None) => break,
                // Dropping the set aborts the requests still under way.
                Err(_) => break,
            }
        }
        let mut listed = Vec::with_capacity(rows.len());
        for (row, result) in rows.into_iter().zip(results) {
            let inspect = match result {
                Some(Ok(Some(info))) => Ok(info),
                Some(Ok(None)) => continue,
                Some(Err(e)) if listing::docker_out_of_reach(&e) => return Err(e),
                Some(Err(e)) => Err(e),
                None => Err(DockerError::Timeout {
                    command: format!("GET /containers/{}/json", row.id),
                    timeout: budget,
                }),
            };
            listed.push(listing::Listed {
                name: row.name,
                inspect,
            });
        }
        Ok(listed)
    }

    /// Whether the image is present locally, asked of the engine's API.
    pub async fn image_present(&self, image: &str) -> Result<bool, DockerError> {
        argv::validate_image(image)?;
        let request = format!("/images/{}/json", engine::path_part(image));
        match self.ask(&request).await? {
            (200, _) => Ok(true),
            (404, body) if is_not_found(&engine::message(&body)) => Ok(false),
            (status, body) => Err(refused(&request, status, &body)),
        }
    }

    /// Inspects one container through the engine's API, as [`Docker::inspect`] does
    /// through the CLI; `None` when it does not exist.
    pub async fn inspect_by_api(&self, name: &str) -> Result<Option<ContainerInfo>, DockerError> {
        let request = format!("/containers/{}/json", engine::path_part(name));
        match self.ask(&request).await? {
            (200, body) => {
                inspect::parse_one(&body)
                    .map(Some)
                    .map_err(|source| DockerError::Inspect {
                        command: format!("GET {request}"),
                        source,
                    })
            }
            // Only the engine's own word: a 404 from anything else (a path it no longer
            // serves, a proxy) must not make a running container gone.
            (404, body) if is_not_found(&engine::message(&body)) => Ok(None),
            (status, body) => Err(refused(&request, status, &body)),
        }
    }

    /// `GET request` of the engine's API within the call timeout, noted in the
    /// reachability record.
    async fn ask(&self, request: &str) -> Result<(u16, Vec<u8>), DockerError> {
        let started = reach::Started::now();
        let timeout = self.config.call_timeout;
        let result = engine::get(&self.config.socket, request, timeout)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::TimedOut => DockerError::Timeout {
                    command: format!("GET {request}"),
                    timeout,
                },
                _ => DockerError::Engine {
                    request: format!("GET {request}"),
                    source,
                },
            });
        self.reach.note_asked(started, &result);
        result
    }

    /// Makes `image` present according to `policy`. `home`, when given, is the `HOME` of
    /// the pull, so that a `.docker/config.json` (or legacy `.dockercfg`) there supplies
    /// the registry credentials; `DOCKER_CONFIG` is removed so it cannot override them.
    pub async fn pull(
        &self,
        image: &str,
        policy: PullPolicy,
        home: Option<&Path>,
    ) -> Result<PullOutcome, DockerError> {
        let argv = argv::pull(image)?;
        if policy == PullPolicy::IfMissing && self.image_present(image).await? {
            return Ok(PullOutcome::Present);
        }
        let mut env = Vec::new();
        if let Some(home) = home {
            env.push(("HOME", OsString::from(home)));
        }
        let pulled = self.call_with(argv, self.config.pull_timeout, env, &["DOCKER_CONFIG"]);
        crashing("pull", pulled).await?.success()?;
        Ok(PullOutcome::Pulled)
    }

    /// The program and full argv (with the global `-H`) of a call the caller runs itself:
    /// one that must hold a pipe, which [`Docker`]'s own calls do not.
    pub fn command_line(&self, argv: Vec<String>) -> (PathBuf, Vec<String>) {
        (self.config.program.clone(), self.global_args(argv))
    }

    fn global_args(&self, argv: Vec<String>) -> Vec<String> {
        let mut full = vec![
            "-H".to_owned(),
            format!("unix://{}", self.config.socket.display()),
        ];
        full.extend(argv);
        full
    }

    async fn call(&self, argv: Vec<String>, timeout: Duration) -> Result<Finished, DockerError> {
        self.call_with(argv, timeout, Vec::new(), &[]).await
    }

    /// Runs a call, and notes in the reachability record what it says about the engine.
    async fn call_with(
        &self,
        argv: Vec<String>,
        timeout: Duration,
        env: Vec<(&'static str, OsString)>,
        env_remove: &'static [&'static str],
    ) -> Result<Finished, DockerError> {
        let started = reach::Started::now();
        let result = self.invoke(argv, timeout, env, env_remove).await;
        self.reach.note(started, &result);
        result
    }

    async fn invoke(
        &self,
        argv: Vec<String>,
        timeout: Duration,
        env: Vec<(&'static str, OsString)>,
        env_remove: &'static [&'static str],
    ) -> Result<Finished, DockerError> {
        invoke::run(Call {
            program: &self.config.program,
            argv: self.global_args(argv),
            env,
            env_remove,
            timeout,
        })
        .await
    }
}

/// An error answer of the engine's API.
fn refused(request: &str, status: u16, body: &[u8]) -> DockerError {
    DockerError::Refused {
        request: format!("GET {request}"),
        status,
        message: engine::message(body),
    }
}

/// The container id `run -d` and `create` print, checked to be one word.
fn container_id(out: Finished) -> Result<String, DockerError> {
    let id = out.stdout.trim();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(DockerError::Output {
            command: out.command.clone(),
            reason: format!("expected a container id, got {:?}", out.stdout),
        });
    }
    Ok(id.to_owned())
}

/// A failed call whose stderr says the container does not exist becomes
/// [`DockerError::NoSuchContainer`].
fn not_found_as_error(name: &str, out: Finished) -> Result<Finished, DockerError> {
    match out.code {
        Some(0) => Ok(out),
        _ if out.stderr.lines().any(is_not_found) => {
            Err(DockerError::NoSuchContainer(name.to_owned()))
        }
        _ => Err(out.failure()),
    }
}

/// Docker's wording for a missing object has varied: "No such container: x",
/// "No such image: x", "No such object: x", "Error: No such container: x".
fn is_not_found(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    ["no such container", "no such image", "no such object"]
        .iter()
        .any(|needle| lower.contains(needle))
}

/// Runs a Docker action between its crash points `docker-<verb>-before` and `-after`.
async fn crashing<T>(verb: &str, action: impl std::future::Future<Output = T>) -> T {
    crate::crash_point::hit(&format!("docker-{verb}-before"));
    let done = action.await;
    crate::crash_point::hit(&format!("docker-{verb}-after"));
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_wordings() {
        for line in [
            "Error: No such container: mesos-x",
            "Error response from daemon: No such container: nosuch1",
            "Error: No such object: abc",
            "Error response from daemon: No such image: foo:latest",
        ] {
            assert!(is_not_found(line), "{line}");
        }
        for line in [
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock",
            "permission denied",
            "",
        ] {
            assert!(!is_not_found(line), "{line}");
        }
    }
}
