//! The shipped systemd unit, contrib/systemd/berth.service, as `systemd-analyze verify`
//! reads it (Debian's systemd package; `scripts/docker-engine registry` installs it). It
//! needs no running systemd: what it checks is the file, with `ExecStart` pointed at the
//! binary under test, since the one it names is installed only by the operator.

use std::process::Command;

use crate::support::BERTH;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/berth.service");

#[test]
fn the_shipped_unit_parses_and_keeps_executors_alive_across_restarts() {
    let text = std::fs::read_to_string(UNIT).expect("read the unit");
    for setting in [
        "KillMode=process",
        "Delegate=yes",
        "Restart=always",
        "LimitNOFILE=",
        "ExecStart=/usr/local/bin/berth agent",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(setting)),
            "the unit lacks {setting}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("berth.service");
    std::fs::write(
        &unit,
        text.replace(
            "ExecStart=/usr/local/bin/berth",
            &format!("ExecStart={BERTH}"),
        ),
    )
    .expect("write the unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/docker-engine registry installs it)");
    let said = String::from_utf8_lossy(&out.stderr);
    // It exits 0 on settings it ignores, saying so: anything it says about the unit fails.
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("berth.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {}{said}",
        String::from_utf8_lossy(&out.stdout)
    );
}
