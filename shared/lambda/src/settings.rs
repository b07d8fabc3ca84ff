//! The desk settings (`crossdesk.toml`) of a Lambda function, read once per cold start.
//!
//! Two sources, at most one set:
//! - `CROSSDESK_SETTINGS`: the TOML text itself. This is what the template uses (its
//!   `DeskSettings` parameter): no file has to travel with the function package.
//! - `CROSSDESK_CONFIG`: the path of a file bundled in the function package (relative paths are
//!   relative to the package root, Lambda's working directory).
//!
//! Neither (or both empty): the built-in defaults, which `crossdesk.toml` at the repository
//! root lists.

use crossdesk_core::settings::DeskSettings;

use crate::deploy::DeployError;

/// The desk settings from the process environment.
pub fn desk_settings() -> Result<DeskSettings, DeployError> {
    desk_settings_with(|name| std::env::var(name).ok())
}

/// The desk settings from `CROSSDESK_SETTINGS` (the text) or `CROSSDESK_CONFIG` (a file), read
/// through `env`; the defaults when neither is set. Errors name the variable, and the line and
/// key at fault.
pub fn desk_settings_with(
    env: impl Fn(&str) -> Option<String>,
) -> Result<DeskSettings, DeployError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let invalid = |name: &'static str, reason: String| DeployError::Invalid { name, reason };
    match (get("CROSSDESK_SETTINGS"), get("CROSSDESK_CONFIG")) {
        (Some(_), Some(_)) => Err(invalid(
            "CROSSDESK_SETTINGS",
            "CROSSDESK_CONFIG is set too: set the settings text or the file, not both".into(),
        )),
        (Some(text), None) => DeskSettings::from_toml_source(&text, "CROSSDESK_SETTINGS")
            .map_err(|e| invalid("CROSSDESK_SETTINGS", e.to_string())),
        (None, Some(path)) => DeskSettings::from_file(std::path::Path::new(path.trim()))
            .map_err(|e| invalid("CROSSDESK_CONFIG", e.to_string())),
        (None, None) => Ok(DeskSettings::default()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<DeskSettings, DeployError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        desk_settings_with(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_without_either_variable() {
        let s = settings(&[("CROSSDESK_SETTINGS", " ")]).unwrap();
        assert_eq!(s.sla, Default::default());
    }

    #[test]
    fn reads_the_text_of_crossdesk_settings() {
        let s = settings(&[(
            "CROSSDESK_SETTINGS",
            r#"sla = { warn_before_minutes = 10, business_hours = { time_zone = "Europe/Berlin" } }"#,
        )])
        .unwrap();
        assert_eq!(s.sla.warn_before_minutes, 10);
        assert_eq!(s.sla.business_hours.time_zone.to_string(), "Europe/Berlin");
    }

    #[test]
    fn reads_the_file_crossdesk_config_names() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crossdesk.toml");
        let s = settings(&[("CROSSDESK_CONFIG", root)]).unwrap();
        assert_eq!(s.sla, Default::default());
    }

    #[test]
    fn errors_name_the_variable_and_the_problem() {
        let err = settings(&[("CROSSDESK_SETTINGS", "[sla]\nwarn = 1\n")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CROSSDESK_SETTINGS") && err.contains("warn"),
            "{err}"
        );
        let err = settings(&[("CROSSDESK_CONFIG", "/nonexistent/crossdesk.toml")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CROSSDESK_CONFIG") && err.contains("/nonexistent/crossdesk.toml"),
            "{err}"
        );
        let both = settings(&[
            ("CROSSDESK_SETTINGS", "[sla]"),
            ("CROSSDESK_CONFIG", "x.toml"),
        ]);
        assert!(both.is_err());
    }
}
