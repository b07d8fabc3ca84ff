//! What a deployment's own settings say about its channels, without asking any platform: the
//! signature mode of each signed webhook ([`crate::verification`]) and how long the Graph API
//! version still works ([`crate::graph_version`]). The same findings go to `GET /api/channels`
//! (as [`ChannelSetup`](crossdesk_core::health::ChannelSetup) findings) and to the scheduled
//! health check ([`ConfigCheck`]), so a `report` mode or a retiring Graph version is flagged on
//! every run and cannot be left on silently.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use crossdesk_core::health::{ChannelFinding, CheckStatus};
use crossdesk_core::{ChannelKind, Clock};
use tracing::warn;

use crate::graph_version::{
    graph_version_finding, GraphApiVersion, InvalidGraphVersion, GRAPH_API_VERSION_VARIABLE,
    GRAPH_VERSION_CHECK,
};
use crate::health::{CredentialVerdict, HealthCheck, Observation};
use crate::verification::{
    signature_mode_finding, InvalidSignatureMode, SignatureModes, SIGNATURE_MODE_CHECK,
};

/// The configuration findings of one channel on `today`: its signature mode (Facebook and
/// Instagram share the Facebook webhook's; X; chat) and, for Facebook and Instagram, the
/// Graph API version. Email has none.
pub fn config_findings(
    channel: ChannelKind,
    modes: &SignatureModes,
    graph_version: &GraphApiVersion,
    today: NaiveDate,
) -> Vec<ChannelFinding> {
    let route = match channel {
        ChannelKind::Facebook | ChannelKind::Instagram => "facebook",
        ChannelKind::Twitter => "twitter",
        ChannelKind::Chat => "chat",
        ChannelKind::Email => return Vec::new(),
    };
    let mut findings = Vec::new();
    if let Some((_, mode, variable)) = modes.routes().into_iter().find(|(r, _, _)| *r == route) {
        findings.push(signature_mode_finding(mode, variable));
    }
    if route == "facebook" {
        findings.push(graph_version_finding(graph_version, today));
    }
    findings
}

/// The settings the findings are drawn from. Read from the environment by a function that
/// only reports on channels (the agent API), an invalid value is not a reason to stop: it
/// becomes a `failing` finding naming the variable (the webhooks and the reply sender refuse
/// to start with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFindings {
    modes: Result<SignatureModes, InvalidSignatureMode>,
    graph_version: Result<GraphApiVersion, InvalidGraphVersion>,
}

impl ConfigFindings {
    /// Findings from settings already checked.
    pub fn new(modes: SignatureModes, graph_version: GraphApiVersion) -> Self {
        ConfigFindings {
            modes: Ok(modes),
            graph_version: Ok(graph_version),
        }
    }

    /// Findings from `CROSSDESK_<CHANNEL>_SIGNATURE_MODE` and `CROSSDESK_GRAPH_API_VERSION`
    /// read through `lookup` (unset or empty: `enforce` and the pinned version).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let graph_version = match lookup(GRAPH_API_VERSION_VARIABLE) {
            Some(v) if !v.trim().is_empty() => GraphApiVersion::parse(v.trim()),
            _ => Ok(GraphApiVersion::pinned()),
        };
        ConfigFindings {
            modes: SignatureModes::from_lookup(lookup),
            graph_version,
        }
    }

    /// One channel's findings on `today` (see [`config_findings`]).
    pub fn for_channel(&self, channel: ChannelKind, today: NaiveDate) -> Vec<ChannelFinding> {
        let mut findings = match (&self.modes, &self.graph_version) {
            (Ok(modes), Ok(version)) => return config_findings(channel, modes, version, today),
            (Ok(modes), Err(_)) => {
                config_findings(channel, modes, &GraphApiVersion::pinned(), today)
                    .into_iter()
                    .filter(|f| f.check != GRAPH_VERSION_CHECK)
                    .collect()
            }
            (Err(_), Ok(version)) => {
                config_findings(channel, &SignatureModes::default(), version, today)
                    .into_iter()
                    .filter(|f| f.check != SIGNATURE_MODE_CHECK)
                    .collect()
            }
            (Err(_), Err(_)) => Vec::new(),
        };
        let meta = matches!(channel, ChannelKind::Facebook | ChannelKind::Instagram);
        if let (Err(e), true) = (&self.graph_version, meta) {
            findings.push(ChannelFinding {
                check: GRAPH_VERSION_CHECK.into(),
                status: CheckStatus::Failing,
                reason: format!("{GRAPH_API_VERSION_VARIABLE} is invalid: {e}"),
            });
        }
        if let Err(e) = &self.modes {
            // Only the channel whose variable is wrong.
            let route = match channel {
                ChannelKind::Facebook | ChannelKind::Instagram => "facebook",
                ChannelKind::Twitter => "twitter",
                ChannelKind::Chat => "chat",
                ChannelKind::Email => "",
            };
            let own = SignatureModes::default()
                .routes()
                .into_iter()
                .any(|(r, _, variable)| r == route && variable == e.variable);
            if own {
                findings.push(ChannelFinding {
                    check: SIGNATURE_MODE_CHECK.into(),
                    status: CheckStatus::Failing,
                    reason: e.to_string(),
                });
            }
        }
        findings
    }
}

/// The health check of the configuration: on each run, the [`config_findings`] of the given
/// channels as of the clock's today, each `warning` or `failing` one also logged.
pub struct ConfigCheck {
    /// The channels to report on (the configured ones).
    pub channels: Vec<ChannelKind>,
    /// The signature modes.
    pub modes: SignatureModes,
    /// The Graph API version in use.
    pub graph_version: GraphApiVersion,
    /// Today's source.
    pub clock: Arc<dyn Clock>,
}

/// A finding's check name as the `'static` name an [`Observation`] carries.
fn check_name(finding: &ChannelFinding) -> &'static str {
    if finding.check == GRAPH_VERSION_CHECK {
        GRAPH_VERSION_CHECK
    } else {
        SIGNATURE_MODE_CHECK
    }
}

#[async_trait]
impl HealthCheck for ConfigCheck {
    async fn run(&self) -> Vec<Observation> {
        let today = self.clock.now().date_naive();
        let mut observations = Vec::new();
        for &channel in &self.channels {
            for finding in config_findings(channel, &self.modes, &self.graph_version, today) {
                if finding.status != CheckStatus::Ok {
                    warn!(%channel, check = %finding.check, reason = %finding.reason, "configuration needs attention");
                }
                observations.push(Observation {
                    channel,
                    check: check_name(&finding),
                    status: finding.status,
                    reason: finding.reason,
                    credentials: CredentialVerdict::Unknown,
                });
            }
        }
        observations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::SignatureMode;
    use chrono::{DateTime, Utc};

    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn summary(findings: &[ChannelFinding]) -> Vec<(&str, CheckStatus)> {
        findings
            .iter()
            .map(|f| (f.check.as_str(), f.status))
            .collect()
    }

    #[test]
    fn each_channel_gets_its_signature_mode_and_meta_channels_the_graph_version() {
        let modes = SignatureModes {
            chat: SignatureMode::Report,
            ..SignatureModes::default()
        };
        let v24 = GraphApiVersion::parse("v24.0").unwrap();
        let today = day(2026, 11, 30);
        for channel in [ChannelKind::Facebook, ChannelKind::Instagram] {
            assert_eq!(
                summary(&config_findings(channel, &modes, &v24, today)),
                [
                    ("signature_mode", CheckStatus::Ok),
                    ("graph_api_version", CheckStatus::Ok)
                ]
            );
        }
        assert_eq!(
            summary(&config_findings(ChannelKind::Twitter, &modes, &v24, today)),
            [("signature_mode", CheckStatus::Ok)]
        );
        assert_eq!(
            summary(&config_findings(ChannelKind::Chat, &modes, &v24, today)),
            [("signature_mode", CheckStatus::Warning)]
        );
        assert!(config_findings(ChannelKind::Email, &modes, &v24, today).is_empty());
    }

    #[test]
    fn read_from_the_environment_an_invalid_value_is_a_failing_finding_of_its_channel() {
        let today = day(2026, 11, 30);
        let unset = ConfigFindings::from_lookup(|_| None);
        assert_eq!(
            unset,
            ConfigFindings::new(SignatureModes::default(), GraphApiVersion::pinned())
        );
        let bad = ConfigFindings::from_lookup(|name| match name {
            "CROSSDESK_CHAT_SIGNATURE_MODE" => Some("maybe".into()),
            "CROSSDESK_GRAPH_API_VERSION" => Some("21".into()),
            _ => None,
        });
        let chat = bad.for_channel(ChannelKind::Chat, today);
        assert_eq!(summary(&chat), [("signature_mode", CheckStatus::Failing)]);
        assert!(chat[0].reason.contains("CROSSDESK_CHAT_SIGNATURE_MODE"));
        let facebook = bad.for_channel(ChannelKind::Facebook, today);
        assert_eq!(
            summary(&facebook),
            [("graph_api_version", CheckStatus::Failing)]
        );
        assert!(facebook[0].reason.contains("CROSSDESK_GRAPH_API_VERSION"));
        assert!(bad.for_channel(ChannelKind::Twitter, today).is_empty());

        let only_version_bad = ConfigFindings::from_lookup(|name| {
            (name == "CROSSDESK_GRAPH_API_VERSION").then(|| "v21".into())
        });
        assert_eq!(
            summary(&only_version_bad.for_channel(ChannelKind::Instagram, today)),
            [
                ("signature_mode", CheckStatus::Ok),
                ("graph_api_version", CheckStatus::Failing)
            ]
        );
        let report = ConfigFindings::from_lookup(|name| {
            (name == "CROSSDESK_TWITTER_SIGNATURE_MODE").then(|| "report".into())
        });
        assert_eq!(
            summary(&report.for_channel(ChannelKind::Twitter, today)),
            [("signature_mode", CheckStatus::Warning)]
        );
    }

    #[tokio::test]
    async fn the_health_check_flags_report_mode_and_a_retiring_version_on_each_run() {
        let check = ConfigCheck {
            channels: vec![ChannelKind::Facebook, ChannelKind::Email],
            modes: SignatureModes {
                facebook: SignatureMode::Report,
                ..SignatureModes::default()
            },
            graph_version: GraphApiVersion::parse("v21.0").unwrap(),
            clock: Arc::new(Fixed(
                DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            )),
        };
        let observations = check.run().await;
        let seen: Vec<(ChannelKind, &str, CheckStatus)> = observations
            .iter()
            .map(|o| (o.channel, o.check, o.status))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    ChannelKind::Facebook,
                    "signature_mode",
                    CheckStatus::Warning
                ),
                (
                    ChannelKind::Facebook,
                    "graph_api_version",
                    CheckStatus::Warning
                ),
            ]
        );
        assert!(
            observations[1].reason.contains("2027-01-21 (in 51 days)"),
            "{}",
            observations[1].reason
        );
        assert_eq!(observations[0].credentials, CredentialVerdict::Unknown);
    }
}
