//! Registry credentials for a pull whose `HOME` is the sandbox.
//!
//! Mesos documents fetching a `.dockercfg` into the sandbox. Docker clients from 1.7 on
//! read `~/.docker/config.json` instead, and current ones ignore `.dockercfg`: a legacy
//! file is therefore also written in the new form, so that the CLI the machine actually
//! has finds the credentials.

use std::path::Path;

use serde_json::{Map, Value};

/// Why the credentials in the sandbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The legacy file is not the JSON Docker wrote.
    #[error("the fetched .dockercfg is not valid: {0}")]
    Invalid(String),
    /// The new file could not be written.
    #[error("cannot write .docker/config.json in the sandbox: {0}")]
    Write(std::io::Error),
}

/// Converts legacy `.dockercfg` JSON (`{"registry": {"auth": ..., "email": ...}}`) to
/// `config.json` JSON (`{"auths": {"registry": {"auth": ...}}}`). Pure.
pub fn convert_legacy(legacy: &str) -> Result<String, CredentialsError> {
    let value: Value =
        serde_json::from_str(legacy).map_err(|e| CredentialsError::Invalid(e.to_string()))?;
    let Value::Object(registries) = value else {
        return Err(CredentialsError::Invalid("not a JSON object".into()));
    };
    let mut auths = Map::new();
    for (registry, entry) in registries {
        let auth = entry
            .get("auth")
            .and_then(Value::as_str)
            .ok_or_else(|| CredentialsError::Invalid(format!("{registry} has no auth")))?;
        auths.insert(registry, serde_json::json!({ "auth": auth }));
    }
    Ok(serde_json::json!({ "auths": auths }).to_string())
}

/// Makes a fetched `.dockercfg` visible to current Docker clients. Leaves an existing
/// `.docker/config.json` alone.
pub fn prepare_home(home: &Path) -> Result<(), CredentialsError> {
    let modern = home.join(".docker").join("config.json");
    let legacy = home.join(".dockercfg");
    if modern.exists() || !legacy.exists() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&legacy).map_err(|e| CredentialsError::Invalid(e.to_string()))?;
    let converted = convert_legacy(&text)?;
    std::fs::create_dir_all(home.join(".docker")).map_err(CredentialsError::Write)?;
    std::fs::write(&modern, converted).map_err(CredentialsError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_legacy_form() {
        let got = convert_legacy(r#"{"127.0.0.1:5055": {"auth": "YmVydGg6cw==", "email": ""}}"#)
            .expect("valid");
        assert_eq!(
            got,
            r#"{"auths":{"127.0.0.1:5055":{"auth":"YmVydGg6cw=="}}}"#
        );
        for bad in ["", "[]", r#"{"r": {"email": "x"}}"#, "{"] {
            assert!(convert_legacy(bad).is_err(), "{bad}");
        }
    }
}
