//! Pulls from the authenticated local registry through a real agent: credentials fetched
//! into the sandbox (Mesos's `.dockercfg`, and `.docker/config.json`), `--docker_config`
//! as the fallback, and a pull without any credentials.

use crate::support::{
    base64, docker_cli, push_private, write_docker_config, TestAgent, AUTH_PASSWORD, AUTH_REGISTRY,
    AUTH_USER,
};

fn auth() -> String {
    base64(format!("{AUTH_USER}:{AUTH_PASSWORD}").as_bytes())
}

fn task(image: &str, uris: &str) -> String {
    format!(
        r#"{{"task_id": {{"value": "private"}},
            "command": {{"value": "echo pulled", "uris": [{uris}]}},
            "container": {{"type": "DOCKER", "docker": {{"image": "{image}"}}}}}}"#
    )
}

fn launched(agent: &TestAgent, json: &str) -> String {
    let out = agent.launch_json(json);
    assert!(
        out.status.success(),
        "launch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn assert_ran(agent: &TestAgent, id: &str, image: &str) {
    let done = agent.wait(id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let stdout = std::fs::read_to_string(agent.sandbox(id).join("stdout")).expect("stdout");
    assert_eq!(stdout, "pulled\n");
    let _ = docker_cli(&["rmi", "-f", image]);
}

#[tokio::test]
async fn a_fetched_dockercfg_authenticates_the_pull() {
    let image = push_private("dockercfg");
    let files = tempfile::tempdir().expect("tempdir");
    let dockercfg = files.path().join(".dockercfg");
    std::fs::write(
        &dockercfg,
        format!(
            r#"{{"{AUTH_REGISTRY}": {{"auth": "{}", "email": ""}}}}"#,
            auth()
        ),
    )
    .expect("write .dockercfg");
    let agent = TestAgent::start(&[]).await;
    let id = launched(
        &agent,
        &task(
            &image,
            &format!(r#"{{"value": "file://{}"}}"#, dockercfg.display()),
        ),
    );
    assert_ran(&agent, &id, &image);
    assert!(agent.sandbox(&id).join(".dockercfg").is_file());
}

#[tokio::test]
async fn a_fetched_docker_config_json_authenticates_the_pull() {
    let image = push_private("config-json");
    let files = tempfile::tempdir().expect("tempdir");
    write_docker_config(files.path());
    let config = files.path().join(".docker").join("config.json");
    let agent = TestAgent::start(&[]).await;
    let id = launched(
        &agent,
        &task(
            &image,
            &format!(
                r#"{{"value": "{}", "output_file": ".docker/config.json"}}"#,
                config.display()
            ),
        ),
    );
    assert_ran(&agent, &id, &image);
}

#[tokio::test]
async fn docker_config_is_the_fallback_and_stays_out_of_the_sandbox() {
    let image = push_private("fallback");
    let json = format!(
        r#"{{"auths":{{"{AUTH_REGISTRY}":{{"auth":"{}"}}}}}}"#,
        auth()
    );
    let agent = TestAgent::start(&["--docker_config", &json]).await;
    let id = launched(&agent, &task(&image, ""));
    assert_ran(&agent, &id, &image);
    let sandbox = agent.sandbox(&id);
    assert!(!sandbox.join(".docker").exists());
    assert!(!sandbox.join(".dockercfg").exists());
}

#[tokio::test]
async fn a_private_pull_without_credentials_fails_the_task() {
    let image = push_private("no-credentials");
    let agent = TestAgent::start(&[]).await;
    let id = launched(&agent, &task(&image, ""));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_CONTAINER_LAUNCH_FAILED");
    let message = done["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(message.contains(&image.to_lowercase()), "{done}");
    assert!(
        message.contains("unauthorized") || message.contains("no basic auth credentials"),
        "{done}"
    );
    assert!(agent.containers().is_empty());
}

#[tokio::test]
async fn a_docker_config_that_does_not_read_stops_the_agent_with_the_reason() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(crate::support::BERTH)
        .arg("agent")
        .arg("--work_dir")
        .arg(work.path())
        .args(["--docker_config", "/nonexistent/berth/config.json"])
        .output()
        .expect("run berth agent");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--docker_config") && stderr.contains("/nonexistent/berth/config.json"),
        "{stderr}"
    );
}
