//! The start-up version check, against the real engine and against CLIs that report
//! versions no real install here can have.

use berth::docker::{Docker, DockerConfig, DockerError, Version};

use crate::support::{docker, docker_at, script};

#[tokio::test]
async fn the_installed_engine_passes_and_reports_both_versions() {
    let versions = docker().check_version().await.expect("engine is usable");
    let minimum = Version::parse("1.8.0").expect("valid");
    assert!(versions.client >= minimum, "{versions:?}");
    assert!(versions.server >= minimum, "{versions:?}");
}

#[tokio::test]
async fn an_unreachable_daemon_is_reported_with_the_command_and_its_stderr() {
    crate::support::require_engine();
    let docker = Docker::new(DockerConfig {
        socket: "/nonexistent/berth-test.sock".into(),
        ..DockerConfig::default()
    });
    let err = docker.check_version().await.expect_err("no daemon there");
    let text = err.to_string();
    assert!(matches!(err, DockerError::Failed { .. }), "{text}");
    assert!(
        text.contains("unix:///nonexistent/berth-test.sock"),
        "{text}"
    );
    assert!(text.contains("version"), "{text}");
    assert!(text.to_lowercase().contains("connect"), "{text}");
}

// The versions below cannot be installed here, so a stand-in CLI prints them.
#[tokio::test]
async fn versions_below_1_8_0_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("1.7.1|20.10.24", "client", "1.7.1"),
        ("28.2.2|1.6.2", "server", "1.6.2"),
    ];
    for (printed, component, found) in cases {
        let cli = script(dir.path(), component, &format!("echo '{printed}'"));
        let err = docker_at(&cli).check_version().await.expect_err("too old");
        let text = err.to_string();
        assert!(matches!(err, DockerError::TooOld { .. }), "{text}");
        assert!(text.contains(component) && text.contains(found), "{text}");
        assert!(text.contains("1.8.0"), "{text}");
    }
    let ok = script(dir.path(), "ok", "echo '1.8.0|1.8.0'");
    docker_at(&ok)
        .check_version()
        .await
        .expect("1.8.0 is enough");
}

#[tokio::test]
async fn unreadable_version_output_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, printed) in ["", "garbage", "28.2.2|", "|28.2.2", "x|y"]
        .iter()
        .enumerate()
    {
        let cli = script(
            dir.path(),
            &format!("v{i}"),
            &format!("printf '%s' '{printed}'"),
        );
        let err = docker_at(&cli)
            .check_version()
            .await
            .expect_err("unreadable");
        assert!(
            matches!(err, DockerError::Output { .. }),
            "{printed:?}: {err}"
        );
    }
}

#[tokio::test]
async fn a_missing_cli_is_reported_with_its_path() {
    let err = docker_at("/nonexistent/docker".as_ref())
        .check_version()
        .await
        .expect_err("no such binary");
    assert!(matches!(err, DockerError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/docker"), "{err}");
}
