//! A full disk, for real: the store on a small tmpfs that is then filled. Recording must
//! fail with an error the caller sees (so the announced action does not happen), and what
//! was durable before must still be there once space is back.

use std::io::Write;
use std::process::Command;

use berth_state::{Flush, Phase, Store, StoreConfig};
use uuid::Uuid;

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &std::path::Path, size: &str) -> Tmpfs {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a tmpfs failed ({status}): this test needs root to make a real full disk"
    );
    Tmpfs(dir.to_owned())
}

fn fill(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).expect("create filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&block).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
}

#[tokio::test]
async fn a_full_disk_fails_the_record_and_loses_nothing_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _mount = mount_tmpfs(dir.path(), "4m");
    let store_dir = dir.path().join("state");
    let filler = dir.path().join("filler");
    let kept = Uuid::new_v4();
    {
        let store = Store::open(&store_dir, "b", &StoreConfig::default()).expect("open");
        // What the agent's metrics are told.
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let telling = told.clone();
        assert!(store.observe_flushes(Box::new(move |f| telling.lock().expect("lock").push(f))));
        assert!(
            !store.observe_flushes(Box::new(|_| {})),
            "one observer per store"
        );
        store
            .record_phase(
                kept,
                Phase::Accepted {
                    task_id: "kept".into(),
                    task_json: "{}".into(),
                    kill_at_ms: None,
                },
            )
            .await
            .expect("record before the disk fills");
        fill(&filler);
        let mut failed = None;
        for i in 0..10_000 {
            let result = store
                .record_phase(
                    Uuid::new_v4(),
                    Phase::Accepted {
                        task_id: format!("t{i}"),
                        task_json: "x".repeat(4096),
                        kill_at_ms: None,
                    },
                )
                .await;
            if let Err(e) = result {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("recording on a full disk must fail at some point");
        let failures = || {
            told.lock()
                .expect("lock")
                .iter()
                .filter(|f| **f == Flush::Failed)
                .count()
        };
        assert!(
            matches!(told.lock().expect("lock").first(), Some(Flush::Logged(_))),
            "{told:?}"
        );
        assert_eq!(failures(), 1, "the failure is told: {told:?}");
        let text = err.to_string();
        println!("on a full disk: {text}");
        assert!(
            text.contains("No space left on device"),
            "the error says the disk is full: {text}"
        );
        // Space back, the same store still refuses: a write made before a failed flush
        // may be lost even if a later flush succeeds, so nothing more is vouched for until
        // a restart reads what really is on disk.
        std::fs::remove_file(&filler).expect("free space");
        let again = store
            .record_phase(
                Uuid::new_v4(),
                Phase::Accepted {
                    task_id: "after".into(),
                    task_json: "{}".into(),
                    kill_at_ms: None,
                },
            )
            .await
            .expect_err("the store stays failed until it is reopened");
        assert_eq!(failures(), 1, "and told once: {told:?}");
        println!("after space came back, before a restart: {again}");
        // The store is dropped here.
    }
    let store =
        Store::open(&store_dir, "b", &StoreConfig::default()).expect("reopen once space is back");
    let history = store.history(kept).expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].phase.name(), "Accepted");
    assert!(store.verify().expect("verify").is_empty());
    store
        .record_phase(kept, Phase::Fetching)
        .await
        .expect("once reopened with space, the store records again");
}
