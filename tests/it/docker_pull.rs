//! Pulls from the local registries (127.0.0.1 only): the if-missing and force policies,
//! and credentials found through the HOME given to the pull.

use berth::docker::{DockerError, PullOutcome, PullPolicy};

use crate::support::{
    base64, docker, docker_cli, write_docker_config, AUTH_REGISTRY, OPEN_REGISTRY,
};

fn forget(image: &str) {
    // Absent already is fine: the point is that the next pull must really pull.
    let _ = docker_cli(&["rmi", "-f", image]);
}

#[tokio::test]
async fn if_missing_pulls_once_and_force_pulls_always() {
    let docker = docker();
    let image = format!("{OPEN_REGISTRY}/berth-test/public:latest");
    forget(&image);
    let home = tempfile::tempdir().expect("tempdir");
    let pull = |policy| docker.pull(&image, policy, Some(home.path()));
    assert_eq!(
        pull(PullPolicy::IfMissing).await.expect("pull"),
        PullOutcome::Pulled
    );
    assert!(docker.image_present(&image).await.expect("inspect image"));
    assert_eq!(
        pull(PullPolicy::IfMissing).await.expect("pull"),
        PullOutcome::Present
    );
    assert_eq!(
        pull(PullPolicy::Always).await.expect("pull"),
        PullOutcome::Pulled
    );
    forget(&image);
    assert!(!docker.image_present(&image).await.expect("inspect image"));
}

#[tokio::test]
async fn a_private_image_needs_the_credentials_in_home() {
    let docker = docker();
    let image = format!("{AUTH_REGISTRY}/berth-test/private:latest");
    forget(&image);
    let empty_home = tempfile::tempdir().expect("tempdir");
    let err = docker
        .pull(&image, PullPolicy::IfMissing, Some(empty_home.path()))
        .await
        .expect_err("no credentials");
    match &err {
        DockerError::Failed {
            command, stderr, ..
        } => {
            assert!(
                command.contains("pull") && command.contains(&image),
                "{command}"
            );
            let lower = stderr.to_lowercase();
            assert!(
                lower.contains("unauthorized") || lower.contains("no basic auth credentials"),
                "{stderr}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(!docker.image_present(&image).await.expect("inspect image"));

    let home = tempfile::tempdir().expect("tempdir");
    write_docker_config(home.path());
    let outcome = docker
        .pull(&image, PullPolicy::IfMissing, Some(home.path()))
        .await
        .expect("pull with credentials");
    assert_eq!(outcome, PullOutcome::Pulled);
    assert!(docker.image_present(&image).await.expect("inspect image"));
    forget(&image);
}

#[tokio::test]
async fn an_image_that_does_not_exist_fails_the_pull() {
    let docker = docker();
    let image = format!("{OPEN_REGISTRY}/berth-test/never-pushed:latest");
    let home = tempfile::tempdir().expect("tempdir");
    let err = docker
        .pull(&image, PullPolicy::Always, Some(home.path()))
        .await
        .expect_err("not in the registry");
    assert!(err.to_string().contains("never-pushed"), "{err}");
}

#[test]
fn base64_matches_the_rfc_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), want);
    }
}
