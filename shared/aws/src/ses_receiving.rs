//! The email channel's health check: SES only receives mail through the region's one
//! **active** receipt rule set (`DescribeActiveReceiptRuleSet`, SES v1: receiving has no v2
//! API). Deploying the stack creates the rule set but cannot activate it; a set deactivated by
//! another stack, or a rule disabled, silently stops every mail.

use async_trait::async_trait;
use crossdesk_channels::health::{HealthCheck, Observation};
use crossdesk_core::health::CheckStatus;
use crossdesk_core::ChannelKind;

use crate::error::describe;

/// `receipt_rule`: the active receipt rule set has an enabled rule (the stack's, when its
/// rule set name is given).
pub struct ReceiptRuleCheck {
    client: aws_sdk_ses::Client,
    expected_rule_set: Option<String>,
}

impl ReceiptRuleCheck {
    /// A check through `client`; `expected_rule_set` names the rule set that must be the active
    /// one (`CROSSDESK_RECEIPT_RULE_SET`; any active set with an enabled rule passes without it).
    pub fn new(client: aws_sdk_ses::Client, expected_rule_set: Option<String>) -> Self {
        ReceiptRuleCheck {
            client,
            expected_rule_set,
        }
    }

    async fn observe(&self) -> (CheckStatus, String) {
        let output = match self.client.describe_active_receipt_rule_set().send().await {
            Ok(output) => output,
            Err(e) => {
                return (
                    CheckStatus::Warning,
                    format!("could not check the SES receipt rule set: {}", describe(&e)),
                )
            }
        };
        let Some(metadata) = output.metadata else {
            return (
                CheckStatus::Failing,
                "no SES receipt rule set is active in this region: SES receives no mail; \
                 activate the stack's rule set (`make email-activate`)"
                    .into(),
            );
        };
        let active = metadata.name.unwrap_or_default();
        if let Some(expected) = &self.expected_rule_set {
            if &active != expected {
                return (
                    CheckStatus::Failing,
                    format!(
                        "the active SES receipt rule set is `{active}`, not `{expected}`: \
                         Crossdesk's rule does not run; activate `{expected}` or deploy with \
                         ExistingReceiptRuleSetName={active}"
                    ),
                );
            }
        }
        let rules = output.rules.unwrap_or_default();
        let enabled: Vec<&str> = rules
            .iter()
            .filter(|rule| rule.enabled)
            .map(|rule| rule.name.as_str())
            .collect();
        if enabled.is_empty() {
            return (
                CheckStatus::Failing,
                format!(
                    "the active SES receipt rule set `{active}` has no enabled rule: SES receives \
                     mail but hands it to nothing; enable Crossdesk's rule"
                ),
            );
        }
        (
            CheckStatus::Ok,
            format!(
                "SES receipt rule set `{active}` is active (enabled: {})",
                enabled.join(", ")
            ),
        )
    }
}

#[async_trait]
impl HealthCheck for ReceiptRuleCheck {
    async fn run(&self) -> Vec<Observation> {
        let (status, reason) = self.observe().await;
        vec![Observation::new(
            ChannelKind::Email,
            "receipt_rule",
            status,
            reason,
        )]
    }
}
