//! `/metrics` as a stock Prometheus reads it: counters of what a real agent recorded,
//! parsed with a Prometheus text parser, the same on the API socket and on
//! `--metrics_address`; and a `--metrics_address` the agent cannot use, refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::recovery::state_of;
use crate::support::{eventually, TestAgent, BERTH, SHELL_IMAGE};

const LIMIT: Duration = Duration::from_secs(60);

/// A port nobody listens on now, on the loopback.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `GET /metrics` over TCP, as Prometheus sends it: the `Content-Type` and the body.
fn scrape_tcp(address: SocketAddr) -> (String, String) {
    scrape_tcp_within(address, Duration::from_secs(10))
}

/// [`scrape_tcp`], waiting up to `patience` for the answer.
fn scrape_tcp_within(address: SocketAddr, patience: Duration) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect to --metrics_address");
    stream.set_read_timeout(Some(patience)).expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .expect("a Content-Type");
    (content_type, body.to_owned())
}

async fn scrape_socket(agent: &TestAgent) -> String {
    berth::api::client::Client::new(agent.work.path().join("berth.sock"))
        .get_text("/metrics", Duration::from_secs(5))
        .await
        .expect("metrics on the API socket")
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse")
}

/// The value of a counter or gauge sample, by name and one label.
fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a single value: {s:?}"),
        })
        .unwrap_or_else(|| panic!("no {name} {label:?} in the scrape"))
}

/// Runs `berth agent` with `args` in a work directory of its own, which it must leave
/// within a minute: one that serves instead is killed, and the test fails.
fn agent_that_stops(work: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let log = work.join("agent.log");
    let mut child = Command::new(BERTH)
        .args(["agent", "--work_dir"])
        .arg(work)
        .args(args)
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run berth");
    let deadline = std::time::Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the agent did not stop: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

fn ended(agent: &TestAgent, id: &str) -> String {
    agent.wait(id)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn counters_say_what_the_agent_recorded_on_the_socket_and_over_tcp() {
    let address = free_address();
    let agent = TestAgent::start(&["--metrics_address", &address.to_string()]).await;

    let finished = agent.launch(&["--image", SHELL_IMAGE, "--command", "true"]);
    assert_eq!(ended(&agent, &finished), "TASK_FINISHED");
    let failed = agent.launch(&["--image", SHELL_IMAGE, "--command", "exit 3"]);
    assert_eq!(ended(&agent, &failed), "TASK_FAILED");
    let killed = agent.launch(&["--image", SHELL_IMAGE, "--command", "sleep 300"]);
    eventually(LIMIT, "the task to run", async || {
        (state_of(&agent, &killed)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    let running = parse(&scrape_socket(&agent).await);
    assert_eq!(value(&running, "berth_slave_tasks_running", None), 1.0);
    assert_eq!(
        value(
            &running,
            "berth_tasks_ended",
            Some(("state", "TASK_FINISHED"))
        ),
        1.0
    );
    let out = agent.berth(&["kill", &killed]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ended(&agent, &killed), "TASK_KILLED");
    // Refused, nothing recorded.
    let refused = agent.launch_json("{not json");
    assert!(!refused.status.success());

    let text = scrape_socket(&agent).await;
    assert!(
        text.ends_with("# EOF\n"),
        "an OpenMetrics exposition ends so: {text}"
    );
    let got = parse(&text);
    let cases = [
        ("berth_launches_accepted_total", None, 3.0),
        (
            "berth_launches_refused_total",
            Some(("reason", "invalid")),
            1.0,
        ),
        ("berth_slave_tasks_finished_total", None, 1.0),
        ("berth_slave_tasks_failed_total", None, 1.0),
        ("berth_slave_tasks_killed_total", None, 1.0),
        ("berth_slave_tasks_lost_total", None, 0.0),
        ("berth_slave_container_launch_errors_total", None, 0.0),
        ("berth_kills_total", Some(("reason", "none")), 1.0),
        ("berth_executors_died_total", None, 0.0),
        ("berth_slave_tasks_running", None, 0.0),
        ("berth_slave_tasks_staging", None, 0.0),
        ("berth_tasks_ended", Some(("state", "TASK_FINISHED")), 1.0),
        ("berth_tasks_ended", Some(("state", "TASK_FAILED")), 1.0),
        ("berth_tasks_ended", Some(("state", "TASK_KILLED")), 1.0),
        (
            "berth_docker_pulls_total",
            Some(("outcome", "present")),
            3.0,
        ),
        ("berth_docker_available", None, 1.0),
        // Every task was recorded RUNNING before its end.
        ("berth_launch_latency_seconds_count", None, 3.0),
    ];
    for (name, label, want) in cases {
        assert_eq!(value(&got, name, label), want, "{name} {label:?}:\n{text}");
    }
    assert!(value(&got, "berth_slave_recovery_time_seconds", None) > 0.0);
    assert!(value(&got, "berth_launch_latency_seconds_sum", None) > 0.0);
    let flushes = value(&got, "berth_store_flush_seconds_count", None);
    assert!(flushes >= 3.0, "every record was flushed: {flushes}");

    // The histogram has buckets, cumulative, the last (+Inf) holding every observation.
    let latency = got
        .samples
        .iter()
        .find(|s| s.metric == "berth_launch_latency_seconds")
        .expect("the latency histogram");
    let prometheus_parse::Value::Histogram(buckets) = &latency.value else {
        panic!("{latency:?}");
    };
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count),
        "{buckets:?}"
    );
    let last = buckets.last().expect("a bucket");
    assert_eq!(
        (last.less_than, last.count),
        (f64::INFINITY, 3.0),
        "{buckets:?}"
    );

    // Over TCP: the same exposition, with the type Prometheus negotiates for it.
    let tcp = eventually(LIMIT, "the same exposition over TCP", async || {
        let (content_type, body) = scrape_tcp(address);
        let socket = scrape_socket(&agent).await;
        (body == socket).then_some((content_type, body))
    })
    .await;
    assert!(
        tcp.0
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{}",
        tcp.0
    );
    assert_eq!(
        value(&parse(&tcp.1), "berth_slave_tasks_killed_total", None),
        1.0
    );

    // A restart: counters start again from zero, and recovery's decisions are counted.
    let live = agent.launch(&["--image", SHELL_IMAGE, "--command", "sleep 300"]);
    eventually(LIMIT, "the task to run", async || {
        (state_of(&agent, &live)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    // A container of this agent's with no record: an orphan, removed and counted.
    let orphan_id = uuid::Uuid::new_v4().to_string();
    let orphan = format!("mesos-{}.{orphan_id}", agent.agent_id);
    crate::support::docker_ok(&[
        "create",
        "--name",
        &orphan,
        "--label",
        &format!("berth.agent_id={}", agent.agent_id),
        "--label",
        &format!("berth.container_id={orphan_id}"),
        SHELL_IMAGE,
        "true",
    ]);
    let mut agent = agent;
    agent.restart(&[]).await;
    let text = scrape_socket(&agent).await;
    let after = parse(&text);
    let cases = [
        ("berth_launches_accepted_total", None, 0.0),
        ("berth_slave_tasks_killed_total", None, 0.0),
        (
            "berth_recovery_decisions_total",
            Some(("action", "re-adopt")),
            1.0,
        ),
        (
            "berth_recovery_decisions_total",
            Some(("action", "remove at due time")),
            3.0,
        ),
        (
            "berth_recovery_decisions_total",
            Some(("action", "remove orphan")),
            1.0,
        ),
        ("berth_slave_tasks_running", None, 1.0),
        ("berth_tasks_ended", Some(("state", "TASK_KILLED")), 1.0),
    ];
    for (name, label, want) in cases {
        assert_eq!(
            value(&after, name, label),
            want,
            "{name} {label:?}:\n{text}"
        );
    }
    assert!(value(&after, "berth_slave_recovery_time_seconds", None) > 0.0);
}

#[test]
fn a_metrics_address_that_is_not_ip_and_port_is_refused_before_anything_starts() {
    let work = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = agent_that_stops(work.path(), &["--metrics_address", "localhost:9273"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--metrics_address takes IP:PORT, such as 127.0.0.1:9273"),
        "{stderr}"
    );
    let made: Vec<_> = std::fs::read_dir(work.path())
        .expect("read")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(made, ["agent.log"], "nothing but the test's log was made");
}

#[test]
fn a_metrics_address_in_use_stops_the_agent_and_says_so() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    let work = tempfile::tempdir().expect("tempdir");
    let (code, stderr) =
        agent_that_stops(work.path(), &["--metrics_address", &address.to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot serve metrics on --metrics_address {address}"
        )),
        "{stderr}"
    );
    drop(taken);
}

/// What anyone who reaches `--metrics_address` can take is bounded: the port serves
/// `/metrics` alone (the API stays on the owner-only socket), and clients that connect
/// and say nothing hold a connection only for a few seconds, so a scrape after them is
/// still answered and the agent still serves.
#[tokio::test]
async fn the_metrics_port_serves_metrics_alone_and_idle_clients_do_not_hold_it() {
    let address = free_address();
    let agent = TestAgent::start(&["--metrics_address", &address.to_string()]).await;
    let mut api = TcpStream::connect(address).expect("connect");
    api.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        api,
        "GET /v1/containers HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    api.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    // More idle clients than the port serves at once: each is dropped after a few
    // seconds, so the scrape behind them is answered within the minute.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(address).expect("connect"))
        .collect();
    let scraped = tokio::task::spawn_blocking(move || scrape_tcp_within(address, LIMIT))
        .await
        .expect("scrape");
    assert!(
        scraped.1.contains("berth_slave_tasks_running"),
        "{}",
        scraped.1
    );
    assert!(
        agent.berth(&["ps"]).status.success(),
        "the agent still serves"
    );
    drop(idle);
}

/// Every family carries its type: a counter registered as a gauge would read the same
/// value, so the `# TYPE` lines are checked themselves.
#[tokio::test]
async fn every_metric_family_says_its_type() {
    let agent = TestAgent::start(&[]).await;
    let text = scrape_socket(&agent).await;
    let types: std::collections::BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for (family, kind) in [
        ("berth_slave_tasks_finished", "counter"),
        ("berth_slave_tasks_running", "gauge"),
        ("berth_launch_latency_seconds", "histogram"),
    ] {
        assert_eq!(types.get(family), Some(&kind), "{family} in {types:?}");
    }
    assert!(
        types
            .values()
            .all(|k| ["counter", "gauge", "histogram"].contains(k)),
        "{types:?}"
    );
}
