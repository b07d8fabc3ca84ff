//! The desk's settings: the whole of `crossdesk.toml` ([`DeskSettings`]). Every section and
//! every key has a default, so an empty file (or none) is a working desk; an unknown key is an
//! error, so a typo never silently keeps a default.
//!
//! The local stack reads the file named by `CROSSDESK_CONFIG` (or `./crossdesk.toml`); the
//! Lambda functions read the same text from their environment (see `crossdesk_lambda`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::notify::NotificationSettings;
use crate::personal_data::{PersonalDataDetector, PersonalDataSettings};
use crate::sla::{SlaPolicies, SlaSettings, SlaSettingsError};
use crate::templates::{CannedResponse, HandoffSettings, HandoffTemplates};

/// Everything `crossdesk.toml` sets, one field per section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeskSettings {
    /// `[sla]`: business hours, first-response and resolution targets.
    pub sla: SlaSettings,
    /// `[threading]`: when a known customer's new conversation continues their open ticket.
    pub threading: ThreadingSettings,
    /// `[personal_data]`: patterns (customer or order numbers) flagged in public messages, on
    /// top of email addresses, phone numbers, IBANs and card numbers.
    pub personal_data: PersonalDataSettings,
    /// `[handoff]`: the public-to-private handoff texts per language.
    pub handoff: HandoffSettings,
    /// `[[canned]]`: canned responses with placeholders.
    pub canned: Vec<CannedResponse>,
    /// `[notifications]`: agent notifications by mail and signed webhook (each
    /// `CROSSDESK_NOTIFY_*` variable that is set overrides its key).
    pub notifications: NotificationSettings,
}

/// `[threading]`: cross-channel continuation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreadingSettings {
    /// A known customer who starts a new conversation (a DM after a tweet) continues their
    /// most recent ticket that is not solved when it was active within this many hours
    /// (0: never; email follows its own rules). Default 72.
    pub continue_within_hours: u32,
}

impl Default for ThreadingSettings {
    fn default() -> Self {
        ThreadingSettings {
            continue_within_hours: 72,
        }
    }
}

impl DeskSettings {
    /// Parses and validates the text of a `crossdesk.toml`; errors name the line and the key.
    pub fn from_toml_str(text: &str) -> Result<Self, SettingsError> {
        Self::from_toml_source(text, "crossdesk.toml")
    }

    /// [`DeskSettings::from_toml_str`] with errors naming where the text came from (a path,
    /// an environment variable).
    pub fn from_toml_source(text: &str, origin: &str) -> Result<Self, SettingsError> {
        let settings: DeskSettings = toml::from_str(text).map_err(|e| SettingsError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        settings
            .validate()
            .map_err(|reason| SettingsError::Invalid {
                origin: origin.to_string(),
                reason,
            })?;
        Ok(settings)
    }

    /// Reads, parses and validates a settings file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_source(&text, &path.display().to_string())
    }

    /// Checks what parsing alone cannot (targets in range, business hours open some day).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.sla.validate().map_err(InvalidSetting::Sla)?;
        PersonalDataDetector::new(&self.personal_data)
            .map_err(|e| InvalidSetting::PersonalData(e.to_string()))?;
        HandoffTemplates::new(&self.handoff).map_err(|e| InvalidSetting::Handoff(e.to_string()))?;
        self.notifications
            .validate()
            .map_err(|e| InvalidSetting::Notifications(e.to_string()))?;
        let mut names = std::collections::BTreeSet::new();
        for canned in &self.canned {
            canned
                .validate()
                .map_err(|e| InvalidSetting::Canned(e.to_string()))?;
            if !names.insert(canned.name.trim()) {
                return Err(InvalidSetting::Canned(format!(
                    "two canned responses are named `{}`",
                    canned.name.trim()
                )));
            }
        }
        Ok(())
    }

    /// The personal-data detector of these (validated) settings.
    pub fn personal_data_detector(&self) -> Result<PersonalDataDetector, InvalidSetting> {
        PersonalDataDetector::new(&self.personal_data)
            .map_err(|e| InvalidSetting::PersonalData(e.to_string()))
    }

    /// The handoff templates of these (validated) settings.
    pub fn handoff_templates(&self) -> Result<HandoffTemplates, InvalidSetting> {
        HandoffTemplates::new(&self.handoff).map_err(|e| InvalidSetting::Handoff(e.to_string()))
    }

    /// The SLA policies of these (validated) settings.
    pub fn sla_policies(&self) -> Result<SlaPolicies, InvalidSetting> {
        SlaPolicies::new(self.sla.clone()).map_err(InvalidSetting::Sla)
    }
}

/// A setting that parses but cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum InvalidSetting {
    /// In `[sla]`.
    #[error(transparent)]
    Sla(#[from] SlaSettingsError),
    /// In `[personal_data]`.
    #[error("[personal_data]: {0}")]
    PersonalData(String),
    /// In `[handoff]`.
    #[error("[handoff]: {0}")]
    Handoff(String),
    /// In `[[canned]]`.
    #[error("[[canned]]: {0}")]
    Canned(String),
    /// In `[notifications]`.
    #[error("[notifications]: {0}")]
    Notifications(String),
}

/// Why the settings could not be loaded.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read the settings file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The parser's message: line, column and the offending key.
        message: String,
    },
    /// A value parses but cannot be used.
    #[error("{origin}: {reason}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// Which setting and why.
        reason: InvalidSetting,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::{DayHours, Holiday};

    #[test]
    fn an_empty_file_is_the_defaults() {
        let s = DeskSettings::from_toml_str("").unwrap();
        assert_eq!(s.sla, SlaSettings::default());
    }

    #[test]
    fn the_shipped_crossdesk_toml_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crossdesk.toml");
        let s = DeskSettings::from_file(&path).unwrap();
        assert_eq!(s, DeskSettings::default());
    }

    #[test]
    fn reads_a_partial_sla_section() {
        let s = DeskSettings::from_toml_str(
            r#"
            [sla]
            warn_before_minutes = 30

            [sla.business_hours]
            time_zone = "Europe/Berlin"
            saturday = "10:00-14:00"
            holidays = [2026-12-24, "12-25", "2027-01-01"]

            [sla.first_response.chat]
            low = 20
            normal = 10
            high = 5
            urgent = 1
            "#,
        )
        .unwrap();
        let sla = &s.sla;
        assert_eq!(sla.warn_before_minutes, 30);
        assert_eq!(sla.business_hours.time_zone.to_string(), "Europe/Berlin");
        assert_eq!(
            sla.business_hours.saturday,
            "10:00-14:00".parse::<DayHours>().unwrap()
        );
        // Unset days keep their default.
        assert_eq!(
            sla.business_hours.monday,
            "09:00-17:00".parse::<DayHours>().unwrap()
        );
        assert_eq!(
            sla.business_hours.holidays,
            vec![
                "2026-12-24".parse::<Holiday>().unwrap(),
                Holiday::Annual { month: 12, day: 25 },
                "2027-01-01".parse::<Holiday>().unwrap(),
            ]
        );
        assert_eq!(sla.first_response.chat.urgent, 1);
        assert_eq!(
            sla.first_response.email,
            SlaSettings::default().first_response.email
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_its_line() {
        let err = DeskSettings::from_toml_str("[sla]\nwarn_before_minute = 5\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("warn_before_minute"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        let err = DeskSettings::from_toml_str("[slas]\n").unwrap_err();
        assert!(err.to_string().contains("slas"), "{err}");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_it() {
        for (text, needle) in [
            (
                "[sla.business_hours]\ntime_zone = \"Mars/Olympus\"\n",
                "Mars/Olympus",
            ),
            ("[sla.business_hours]\nmonday = \"9 to 5\"\n", "9 to 5"),
            (
                "[sla.business_hours]\nholidays = [\"someday\"]\n",
                "someday",
            ),
            // A priority table must give every priority.
            ("[sla.first_response.chat]\nnormal = 5\n", "low"),
            ("[sla]\nwarn_before_minutes = -1\n", "warn_before_minutes"),
        ] {
            let err = DeskSettings::from_toml_str(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn validation_errors_name_the_origin_and_the_setting() {
        let err = DeskSettings::from_toml_source(
            "[sla.first_response.email]\nlow = 1\nnormal = 0\nhigh = 1\nurgent = 1\n",
            "/etc/crossdesk.toml",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/crossdesk.toml: "), "{text}");
        assert!(text.contains("sla.first_response.email.normal"), "{text}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = DeskSettings::from_file(Path::new("/nonexistent/crossdesk.toml")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/crossdesk.toml"),
            "{err}"
        );
    }
    #[test]
    fn the_workflow_sections_parse_and_bad_values_name_their_section() {
        let s = DeskSettings::from_toml_str(
            r#"
            [threading]
            continue_within_hours = 0
            [personal_data]
            patterns = [{ name = "order_number", regex = '\border\s*\d{6,}' }]
            [handoff]
            default_language = "de"
            [[canned]]
            name = "thanks"
            title = "Thanks"
            text = "Thanks, {{customer.first_name}}!"
            "#,
        )
        .unwrap();
        assert_eq!(s.threading.continue_within_hours, 0);
        assert_eq!(s.personal_data.patterns[0].name, "order_number");
        assert_eq!(s.handoff.default_language, "de");
        assert_eq!(s.canned[0].name, "thanks");

        let bad_regex = DeskSettings::from_toml_str(
            "[personal_data]\npatterns = [{ name = \"broken\", regex = \"(\" }]",
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad_regex.contains("[personal_data]") && bad_regex.contains("broken"),
            "{bad_regex}"
        );
        let typo = DeskSettings::from_toml_str(
            "[[canned]]\nname = \"x\"\ntitle = \"X\"\ntext = \"Hi {{customer.nmae}}\"",
        )
        .unwrap_err()
        .to_string();
        assert!(typo.contains("customer.nmae"), "{typo}");
        let twice = DeskSettings::from_toml_str(
            "[[canned]]\nname = \"x\"\ntitle = \"X\"\ntext = \"a\"\n[[canned]]\nname = \"x\"\ntitle = \"Y\"\ntext = \"b\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            twice.contains("two canned responses are named `x`"),
            "{twice}"
        );
        let unknown = DeskSettings::from_toml_str("[threading]\ncontinue_within = 3")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("continue_within"), "{unknown}");
    }
}
