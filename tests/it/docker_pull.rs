//! Pulls from the local registries (127.0.0.1 only): the if-missing and force policies,
//! and credentials found through the HOME given to the pull.

use std::path::Path;

use berth::docker::{DockerError, PullOutcome, PullPolicy};

use crate::support::{docker, docker_cli, AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER, OPEN_REGISTRY};

fn forget(image: &str) {
    // Absent already is fine: the point is that the next pull must really pull.
    let _ = docker_cli(&["rmi", "-f", image]);
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write_docker_config(home: &Path) {
    let auth = base64(format!("{AUTH_USER}:{AUTH_PASSWORD}").as_bytes());
    let dir = home.join(".docker");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{AUTH_REGISTRY}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("write config");
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
