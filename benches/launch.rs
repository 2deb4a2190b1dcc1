//! `cargo bench --bench launch`: launch-to-RUNNING latency through a real berth agent,
//! beside a bare `docker run -d` plus polling `docker inspect` until running, in the same
//! run; then 50 concurrent launches against 50 concurrent bare runs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::api::client::Client;
use berth::api::wire::TaskState;
use berth::containerizer::launch::Launched;
use berth::containerizer::TaskView;

const IMAGE: &str = "berth-test/shell:latest";
const N: usize = 50;
const POLL: Duration = Duration::from_millis(5);
const T: Duration = Duration::from_secs(30);

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn bare_once(name: &str) -> Duration {
    let start = Instant::now();
    let status = tokio::process::Command::new("docker")
        .args([
            "run",
            "-d",
            "--net=host",
            "--name",
            name,
            IMAGE,
            "sleep",
            "300",
        ])
        .stdout(Stdio::null())
        .status()
        .await
        .expect("docker run");
    assert!(status.success());
    loop {
        let out = tokio::process::Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", name])
            .output()
            .await
            .expect("inspect");
        if String::from_utf8_lossy(&out.stdout).trim() == "true" {
            return start.elapsed();
        }
        assert!(start.elapsed() < T, "{name} never ran");
        tokio::time::sleep(POLL).await;
    }
}

async fn berth_once(client: &Client, task_id: &str) -> Duration {
    let start = Instant::now();
    let task = serde_json::json!({
        "task_id": {"value": task_id},
        "command": {"value": "sleep 300"},
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
    });
    let launched: Launched = client
        .post_raw("/v1/tasks", task.to_string().into_bytes(), T)
        .await
        .expect("launch");
    loop {
        let view: TaskView = client
            .get(&format!("/v1/containers/{}", launched.container_id), T)
            .await
            .expect("get");
        if view.state == TaskState::Running {
            return start.elapsed();
        }
        assert!(!view.state.is_terminal(), "{view:?}");
        assert!(start.elapsed() < T, "{task_id} never ran");
        tokio::time::sleep(POLL).await;
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn cleanup(prefix: &str) {
    let names = docker(&["ps", "-aq", "--filter", &format!("name={prefix}")]);
    if !names.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(names.lines());
        docker(&args);
    }
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("agent")
        .arg("--work_dir")
        .arg(work.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("start agent");
    let client = Client::new(work.path().join("berth.sock"));
    let started = Instant::now();
    while client
        .get::<serde_json::Value>("/v1/health", T)
        .await
        .is_err()
    {
        assert!(started.elapsed() < T, "the agent did not come up");
        tokio::time::sleep(POLL).await;
    }
    let agent_id = client
        .get::<serde_json::Value>("/v1/health", T)
        .await
        .expect("health")["agent_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let bare_prefix = format!("berth-bench-{}", std::process::id());

    // Warm the engine once.
    bare_once(&format!("{bare_prefix}-warm")).await;
    let mut bare = Vec::new();
    let mut ours = Vec::new();
    for i in 0..N {
        // Interleaved, so that drift in the engine hits both alike.
        bare.push(bare_once(&format!("{bare_prefix}-{i}")).await);
        ours.push(berth_once(&client, &format!("bench-{i}")).await);
    }
    bare.sort();
    ours.sort();
    cleanup(&bare_prefix);
    cleanup(&format!("mesos-{agent_id}"));

    let t = Instant::now();
    let bare_all: Vec<_> = (0..N)
        .map(|i| {
            let name = format!("{bare_prefix}-c{i}");
            tokio::spawn(async move { bare_once(&name).await })
        })
        .collect();
    for h in bare_all {
        h.await.expect("bare");
    }
    let bare_concurrent = t.elapsed();
    let t = Instant::now();
    let ours_all: Vec<_> = (0..N)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { berth_once(&client, &format!("bench-c{i}")).await })
        })
        .collect();
    for h in ours_all {
        h.await.expect("berth");
    }
    let ours_concurrent = t.elapsed();
    cleanup(&bare_prefix);
    cleanup(&format!("mesos-{agent_id}"));
    let _ = agent.kill();
    let _ = agent.wait();

    println!("launch to RUNNING, {N} launches each, same run\n");
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "what", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "bare docker run -d + inspect until running",
        ms(pct(&bare, 0.5)),
        ms(pct(&bare, 0.99)),
        ms(bare[N - 1])
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "berth launch (API) until RUNNING",
        ms(pct(&ours, 0.5)),
        ms(pct(&ours, 0.99)),
        ms(ours[N - 1])
    );
    let ratio = pct(&ours, 0.5).as_secs_f64() / pct(&bare, 0.5).as_secs_f64();
    println!(
        "\np50 ratio berth / bare: {ratio:.2}x (goal at most 1.30x){}",
        if ratio <= 1.3 { "" } else { "  (above goal)" }
    );
    println!("\n{N} concurrent launches until all running");
    println!("{:<44} {:>10} {:>12}", "what", "total s", "launches/s");
    println!(
        "{:<44} {:>10.2} {:>12.1}",
        "bare docker run -d",
        bare_concurrent.as_secs_f64(),
        N as f64 / bare_concurrent.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2} {:>12.1}",
        "berth",
        ours_concurrent.as_secs_f64(),
        N as f64 / ours_concurrent.as_secs_f64()
    );
    println!(
        "throughput ratio berth / bare: {:.2}x",
        bare_concurrent.as_secs_f64() / ours_concurrent.as_secs_f64()
    );
}
