//! `berth state ...` as an operator uses it after an incident: offline, on a real store.

use std::path::Path;
use std::process::{Command, Output};

use berth_state::{Phase, Store, StoreConfig};
use uuid::Uuid;

use crate::support::{TestAgent, SHELL_IMAGE};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn state(work: &Path, args: &[&str]) -> Output {
    Command::new(BERTH)
        .arg("state")
        .args(args)
        .arg("--work_dir")
        .arg(work)
        .output()
        .expect("run berth state")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn seed(work: &Path) -> (Uuid, u64) {
    let store = Store::open(&work.join("state"), "boot", &StoreConfig::default()).expect("open");
    let id = Uuid::new_v4();
    store
        .record_phase(
            id,
            Phase::Accepted {
                task_id: "web-1".into(),
                task_json: "{}".into(),
                kill_at_ms: None,
            },
        )
        .await
        .expect("record");
    let pulling = store
        .record_phase(
            id,
            Phase::Pulling {
                image: "busybox:1".into(),
            },
        )
        .await
        .expect("record");
    (id, pulling.seq)
}

#[tokio::test]
async fn ls_show_history_verify_export_offline() {
    let work = tempfile::tempdir().expect("tempdir");
    let (id, _) = seed(work.path()).await;
    let short = &id.to_string()[..8];

    let ls = state(work.path(), &["ls"]);
    assert!(ls.status.success(), "{}", text(&ls));
    let ls_text = text(&ls);
    assert!(ls_text.starts_with("CONTAINER"), "{ls_text}");
    assert!(
        ls_text.contains(&id.to_string())
            && ls_text.contains("web-1")
            && ls_text.contains("Pulling"),
        "{ls_text}"
    );

    let history = state(work.path(), &["history", short]);
    let history_text = text(&history);
    assert!(history.status.success(), "{history_text}");
    let phases: Vec<&str> = history_text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(phases, ["Accepted", "Pulling"], "{history_text}");
    assert!(history_text.contains("image busybox:1"));

    let show = state(work.path(), &["show", short, "--json"]);
    let json: serde_json::Value =
        serde_json::from_slice(&show.stdout).expect("show --json is JSON");
    assert_eq!(json["summary"]["task_id"], "web-1");
    assert_eq!(json["history"].as_array().map(Vec::len), Some(2));

    let verify = state(work.path(), &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).starts_with("ok: 1 containers"));

    let export = state(work.path(), &["export"]);
    let json: serde_json::Value = serde_json::from_slice(&export.stdout).expect("export is JSON");
    assert_eq!(
        json["containers"][0]["summary"]["container_id"],
        id.to_string()
    );
    assert!(json["agent"]["agent_id"].is_string());

    let unknown = state(work.path(), &["show", "ffffffff"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown).contains("no container id starts with"),
        "{}",
        text(&unknown)
    );
}

#[tokio::test]
async fn verify_fails_on_a_corrupt_record_and_names_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let (id, seq) = seed(work.path()).await;
    {
        let db = sled::open(work.path().join("state")).expect("raw open");
        let tree = db.open_tree("records").expect("tree");
        let mut key = vec![b'p'];
        key.extend_from_slice(id.as_bytes());
        key.extend_from_slice(&seq.to_be_bytes());
        let mut bytes = tree.get(&key).expect("get").expect("present").to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        tree.insert(key, bytes).expect("insert");
        db.flush().expect("flush");
    }
    let verify = state(work.path(), &["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    let report = text(&verify);
    assert!(
        report.contains(&format!("p/{id}/{seq}")) && report.contains("checksum"),
        "{report}"
    );
    // Offline inspection changed nothing: the bad record is still there to inspect.
    let again = state(work.path(), &["verify", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(json["ok"], false);
    assert_eq!(json["corrupt"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn while_the_agent_runs_the_views_come_through_its_api() {
    let work = tempfile::tempdir().expect("tempdir");
    let missing = state(work.path(), &["ls"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("no berth store"),
        "{}",
        text(&missing)
    );

    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "echo online"]);
    assert_eq!(agent.wait(&id)["state"], "TASK_FINISHED");

    let ls = agent.berth(&["state", "ls"]);
    assert!(ls.status.success(), "{}", text(&ls));
    assert!(text(&ls).contains(&id), "{}", text(&ls));
    let history = agent.berth(&["state", "history", &id[..8], "--json"]);
    assert!(history.status.success(), "{}", text(&history));
    let phases: Vec<String> = serde_json::from_slice::<serde_json::Value>(&history.stdout)
        .expect("history JSON")
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| match &r["phase"] {
            serde_json::Value::String(unit) => unit.clone(),
            other => other
                .as_object()
                .and_then(|p| p.keys().next().cloned())
                .unwrap_or_default(),
        })
        .collect();
    assert_eq!(
        phases,
        [
            "Accepted",
            "Fetching",
            "Pulling",
            "ExecutorStarting",
            "Running",
            "Terminated"
        ],
        "{}",
        text(&history)
    );
    let show = agent.berth(&["state", "show", &id]);
    assert!(show.status.success(), "{}", text(&show));
    assert!(text(&show).contains("Terminated"), "{}", text(&show));
    let verify = agent.berth(&["state", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let unknown = agent.berth(&["state", "show", "ffffffff"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown).contains("ffffffff"), "{}", text(&unknown));

    let online = agent.berth(&["state", "history", &id]);
    let work = agent.stop();
    let offline = state(work.path(), &["history", &id]);
    assert!(offline.status.success(), "{}", text(&offline));
    assert_eq!(
        String::from_utf8_lossy(&offline.stdout),
        String::from_utf8_lossy(&online.stdout),
        "online and offline views differ"
    );
}
