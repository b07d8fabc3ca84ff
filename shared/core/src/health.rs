//! Channel health: what Crossdesk knows about each channel's connection to its platform.
//!
//! Three things are kept per channel ([`ChannelState`], in a [`ChannelHealthStore`]):
//! - the time of the **last inbound event** (written by the ticket writer through
//!   [`InboundActivity`], at most once per channel per minute and process),
//! - the latest result of each **health check** ([`CheckResult`]: token valid, webhook
//!   subscribed, receipt rule active, no silence),
//! - whether the channel **needs re-authorization** ([`Reauthorization`]): set the moment a
//!   platform rejects the channel's credentials (Graph error 190, X 401) while sending or
//!   checking, cleared by the next successful send or check.
//!
//! [`ChannelReport`] combines a channel's state with what its configuration says
//! ([`ChannelSetup`]: secrets present, config-derived [`ChannelFinding`]s) into what
//! `GET /api/channels` shows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::model::ChannelKind;
use crate::ports::StoreError;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Working.
    Ok,
    /// Working, but something needs attention soon (or the check could not be made).
    Warning,
    /// Broken: messages or replies are being lost.
    Failing,
}

impl CheckStatus {
    /// The name on the wire (`ok`, `warning`, `failing`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "warning",
            CheckStatus::Failing => "failing",
        }
    }

    /// Parses [`CheckStatus::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(CheckStatus::Ok),
            "warning" => Some(CheckStatus::Warning),
            "failing" => Some(CheckStatus::Failing),
            _ => None,
        }
    }
}

/// A channel's overall status in `GET /api/channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    /// Every check passes.
    Ok,
    /// Something needs attention.
    Warning,
    /// Broken: see the reasons.
    Failing,
    /// The channel's secrets are not set: it receives nothing.
    NotConfigured,
}

/// The latest result of one named check on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name (`page_token`, `webhook_subscription`, `credentials`, `receipt_rule`,
    /// `silence`, …).
    pub check: String,
    /// What it found.
    pub status: CheckStatus,
    /// What it found, in words an administrator can act on.
    pub reason: String,
    /// When it ran.
    pub checked_at: DateTime<Utc>,
}

/// A platform rejected the channel's credentials: someone must re-authorize the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reauthorization {
    /// The platform's error code (`graph_190_463`, `x_401`, …).
    pub code: String,
    /// What the platform said and what to do.
    pub reason: String,
    /// When the credentials were rejected.
    pub at: DateTime<Utc>,
}

/// What the store holds about one channel. A channel never seen has the default (all empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelState {
    /// The latest inbound event recorded (at most a minute behind the real latest).
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// The latest result of each check, by check name.
    pub checks: Vec<CheckResult>,
    /// Set while the channel's credentials are known to be rejected.
    pub reauthorization: Option<Reauthorization>,
}

/// Durable per-channel health state. Implemented by the embedded and the DynamoDB store.
#[async_trait]
pub trait ChannelHealthStore: Send + Sync {
    /// What is known about a channel (the default for a channel never recorded); checks sorted
    /// by name.
    async fn channel_state(&self, channel: ChannelKind) -> Result<ChannelState, StoreError>;

    /// Records an inbound event at `at`; an earlier time than the one stored changes nothing.
    async fn record_inbound(
        &self,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Stores a check's result in place of the earlier result of the same check; a result older
    /// than the one stored changes nothing.
    async fn record_check(
        &self,
        channel: ChannelKind,
        result: &CheckResult,
    ) -> Result<(), StoreError>;

    /// Marks the channel as needing re-authorization; an earlier mark than the one stored
    /// changes nothing.
    async fn mark_reauthorization(
        &self,
        channel: ChannelKind,
        mark: &Reauthorization,
    ) -> Result<(), StoreError>;

    /// Clears a mark made at or before `succeeded_at` (credentials that worked then); a later
    /// mark stays. Returns whether a mark was cleared.
    async fn clear_reauthorization(
        &self,
        channel: ChannelKind,
        succeeded_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// The channels that share one set of credentials with `channel` (itself included): Facebook
/// and Instagram answer with the same page token.
pub fn credential_group(channel: ChannelKind) -> &'static [ChannelKind] {
    match channel {
        ChannelKind::Facebook | ChannelKind::Instagram => {
            &[ChannelKind::Facebook, ChannelKind::Instagram]
        }
        ChannelKind::Twitter => &[ChannelKind::Twitter],
        ChannelKind::Email => &[ChannelKind::Email],
        ChannelKind::Chat => &[ChannelKind::Chat],
    }
}

/// How often [`InboundActivity`] writes a channel's last inbound time at most.
pub const INBOUND_WRITE_INTERVAL: TimeDelta = TimeDelta::minutes(1);

/// Records inbound activity cheaply: at most one store write per channel per
/// [`INBOUND_WRITE_INTERVAL`] in this process, never failing the caller.
pub struct InboundActivity {
    store: Arc<dyn ChannelHealthStore>,
    written: Mutex<HashMap<ChannelKind, DateTime<Utc>>>,
}

impl InboundActivity {
    /// Activity recorded in `store`.
    pub fn new(store: Arc<dyn ChannelHealthStore>) -> Self {
        InboundActivity {
            store,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Notes an inbound event at `at`; writes it when this process has not written the channel
    /// within the last interval. A store failure is logged, not returned: activity tracking
    /// must never hold up a message.
    pub async fn saw(&self, channel: ChannelKind, at: DateTime<Utc>) {
        {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            match written.get(&channel) {
                Some(last) if at < *last + INBOUND_WRITE_INTERVAL => return,
                _ => {
                    written.insert(channel, at);
                }
            }
        }
        if let Err(e) = self.store.record_inbound(channel, at).await {
            warn!(%channel, error = %e, "cannot record the channel's inbound activity");
            // Try again with the next message.
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&channel);
        }
    }
}

/// Something the configuration says about a channel, without asking the platform (a setting
/// missing for replies, a signature mode, a pinned API version near retirement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelFinding {
    /// A short name (`replies_not_configured`, `signature_mode`, `graph_api_version`, …).
    pub check: String,
    /// How bad it is.
    pub status: CheckStatus,
    /// What it means and what to do.
    pub reason: String,
}

/// What a deployment's configuration says about a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelSetup {
    /// The channel.
    pub channel: ChannelKind,
    /// Whether its receiving secrets are present (its webhook accepts events).
    pub configured: bool,
    /// Settings missing for receiving or replying (variable or secret names).
    pub missing: Vec<String>,
    /// Config-derived findings, merged into the channel's status.
    pub findings: Vec<ChannelFinding>,
}

impl ChannelSetup {
    /// A channel whose receiving secrets are present, with nothing missing.
    pub fn configured(channel: ChannelKind) -> Self {
        ChannelSetup {
            channel,
            configured: true,
            missing: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// A channel lacking the named receiving settings.
    pub fn not_configured(channel: ChannelKind, missing: Vec<String>) -> Self {
        ChannelSetup {
            channel,
            configured: false,
            missing,
            findings: Vec::new(),
        }
    }

    /// The same setup with one more finding.
    pub fn with_finding(mut self, finding: ChannelFinding) -> Self {
        self.findings.push(finding);
        self
    }
}

/// One channel as `GET /api/channels` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelReport {
    /// The channel.
    pub channel: ChannelKind,
    /// Whether its receiving secrets are present.
    pub configured: bool,
    /// The worst of its checks, findings and re-authorization mark.
    pub status: ChannelStatus,
    /// Why the status is not `ok`, worst first, in clear words.
    pub reasons: Vec<String>,
    /// Whether the platform rejected the channel's credentials (see `reauthorization`).
    pub needs_reauthorization: bool,
    /// The rejection: platform code, what it said, when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reauthorization: Option<Reauthorization>,
    /// The latest inbound event recorded (up to a minute behind).
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// When a check last ran on the channel.
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Settings missing for receiving or replying.
    pub missing: Vec<String>,
    /// The latest result of each check.
    pub checks: Vec<CheckResult>,
    /// What the configuration says.
    pub findings: Vec<ChannelFinding>,
}

impl ChannelReport {
    /// Combines a channel's configuration and stored state.
    pub fn new(setup: &ChannelSetup, state: &ChannelState) -> Self {
        let mut problems: Vec<(CheckStatus, String)> = Vec::new();
        if let Some(mark) = &state.reauthorization {
            problems.push((
                CheckStatus::Failing,
                format!(
                    "the platform rejected the channel's credentials ({}) at {}: re-authorize \
                     the channel. {}",
                    mark.code,
                    mark.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    mark.reason
                ),
            ));
        }
        for check in &state.checks {
            // A finding of the same name (signature_mode, graph_api_version) is the current
            // configuration's word; the stored result may predate a change of it.
            let superseded = setup.findings.iter().any(|f| f.check == check.check);
            if check.status != CheckStatus::Ok && !superseded {
                problems.push((check.status, format!("{}: {}", check.check, check.reason)));
            }
        }
        for finding in &setup.findings {
            if finding.status != CheckStatus::Ok {
                problems.push((
                    finding.status,
                    format!("{}: {}", finding.check, finding.reason),
                ));
            }
        }
        // Worst first; the order within a status is the order above.
        problems.sort_by_key(|p| std::cmp::Reverse(p.0));
        let status = if !setup.configured {
            ChannelStatus::NotConfigured
        } else {
            match problems.first().map(|p| p.0) {
                None | Some(CheckStatus::Ok) => ChannelStatus::Ok,
                Some(CheckStatus::Warning) => ChannelStatus::Warning,
                Some(CheckStatus::Failing) => ChannelStatus::Failing,
            }
        };
        let mut reasons: Vec<String> = Vec::new();
        if !setup.configured {
            reasons.push(format!(
                "not configured: set {}",
                if setup.missing.is_empty() {
                    "its secrets".to_string()
                } else {
                    setup.missing.join(", ")
                }
            ));
        }
        reasons.extend(problems.into_iter().map(|(_, reason)| reason));
        ChannelReport {
            channel: setup.channel,
            configured: setup.configured,
            status,
            reasons,
            needs_reauthorization: state.reauthorization.is_some(),
            reauthorization: state.reauthorization.clone(),
            last_inbound_at: state.last_inbound_at,
            last_checked_at: state.checks.iter().map(|c| c.checked_at).max(),
            missing: setup.missing.clone(),
            checks: state.checks.clone(),
            findings: setup.findings.clone(),
        }
    }
}

/// The reports of the given channels, read from the store.
pub async fn channel_reports(
    store: &dyn ChannelHealthStore,
    setups: &[ChannelSetup],
) -> Result<Vec<ChannelReport>, StoreError> {
    let mut reports = Vec::with_capacity(setups.len());
    for setup in setups {
        let state = store.channel_state(setup.channel).await?;
        reports.push(ChannelReport::new(setup, &state));
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap()
    }

    fn check(name: &str, status: CheckStatus) -> CheckResult {
        CheckResult {
            check: name.into(),
            status,
            reason: format!("{name} says so"),
            checked_at: at(10),
        }
    }

    #[test]
    fn an_unconfigured_channel_names_what_is_missing() {
        let setup =
            ChannelSetup::not_configured(ChannelKind::Chat, vec!["CROSSDESK_CHAT_SECRET".into()]);
        let report = ChannelReport::new(&setup, &ChannelState::default());
        assert_eq!(report.status, ChannelStatus::NotConfigured);
        assert_eq!(
            report.reasons,
            ["not configured: set CROSSDESK_CHAT_SECRET"]
        );
        assert!(!report.needs_reauthorization);
    }

    #[test]
    fn the_worst_check_finding_or_mark_decides_the_status() {
        let setup = ChannelSetup::configured(ChannelKind::Facebook).with_finding(ChannelFinding {
            check: "signature_mode".into(),
            status: CheckStatus::Warning,
            reason: "report mode".into(),
        });
        let mut state = ChannelState {
            checks: vec![check("page_token", CheckStatus::Ok)],
            ..ChannelState::default()
        };
        let report = ChannelReport::new(&setup, &state);
        assert_eq!(report.status, ChannelStatus::Warning);
        assert_eq!(report.reasons, ["signature_mode: report mode"]);
        assert_eq!(report.last_checked_at, Some(at(10)));

        state.reauthorization = Some(Reauthorization {
            code: "graph_190".into(),
            reason: "Meta: token expired".into(),
            at: at(20),
        });
        let report = ChannelReport::new(&setup, &state);
        assert_eq!(report.status, ChannelStatus::Failing);
        assert!(report.needs_reauthorization);
        assert!(
            report.reasons[0].contains("graph_190") && report.reasons[0].contains("re-authorize"),
            "{:?}",
            report.reasons
        );
        assert_eq!(report.reasons.len(), 2, "the warning stays listed");
    }

    #[test]
    fn facebook_and_instagram_share_credentials() {
        assert_eq!(
            credential_group(ChannelKind::Instagram),
            [ChannelKind::Facebook, ChannelKind::Instagram]
        );
        assert_eq!(
            credential_group(ChannelKind::Twitter),
            [ChannelKind::Twitter]
        );
    }

    /// Counts writes.
    #[derive(Default)]
    struct Counting {
        writes: Mutex<Vec<(ChannelKind, DateTime<Utc>)>>,
    }

    #[async_trait]
    impl ChannelHealthStore for Counting {
        async fn channel_state(&self, _: ChannelKind) -> Result<ChannelState, StoreError> {
            Ok(ChannelState::default())
        }
        async fn record_inbound(
            &self,
            channel: ChannelKind,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            self.writes.lock().unwrap().push((channel, at));
            Ok(())
        }
        async fn record_check(&self, _: ChannelKind, _: &CheckResult) -> Result<(), StoreError> {
            Ok(())
        }
        async fn mark_reauthorization(
            &self,
            _: ChannelKind,
            _: &Reauthorization,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn clear_reauthorization(
            &self,
            _: ChannelKind,
            _: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    #[tokio::test]
    async fn inbound_activity_writes_once_per_channel_per_minute() {
        let store = Arc::new(Counting::default());
        let activity = InboundActivity::new(store.clone());
        for secs in [0, 1, 30, 59] {
            activity.saw(ChannelKind::Facebook, at(secs)).await;
        }
        activity.saw(ChannelKind::Chat, at(5)).await;
        activity.saw(ChannelKind::Facebook, at(60)).await;
        activity.saw(ChannelKind::Facebook, at(61)).await;
        assert_eq!(
            *store.writes.lock().unwrap(),
            [
                (ChannelKind::Facebook, at(0)),
                (ChannelKind::Chat, at(5)),
                (ChannelKind::Facebook, at(60)),
            ]
        );
    }
}
