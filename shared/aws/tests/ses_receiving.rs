//! The email channel's receipt rule check against SES (moto server at `AWS_ENDPOINT_URL`).
//! SES has one active rule set per region, so the steps run in one test, in order.

use aws_sdk_ses::types::{AddHeaderAction, ReceiptAction, ReceiptRule};
use crossdesk_aws::sdk_config;
use crossdesk_aws::ses_receiving::ReceiptRuleCheck;
use crossdesk_channels::health::HealthCheck;
use crossdesk_core::health::CheckStatus;
use crossdesk_core::ChannelKind;

async fn status(check: &ReceiptRuleCheck) -> (CheckStatus, String) {
    let observations = check.run().await;
    assert_eq!(observations.len(), 1);
    let o = &observations[0];
    assert_eq!((o.channel, o.check), (ChannelKind::Email, "receipt_rule"));
    (o.status, o.reason.clone())
}

fn rule(name: &str, enabled: bool) -> ReceiptRule {
    ReceiptRule::builder()
        .name(name)
        .enabled(enabled)
        .recipients("help.example.com")
        .actions(
            ReceiptAction::builder()
                .add_header_action(
                    AddHeaderAction::builder()
                        .header_name("X-Crossdesk-Test")
                        .header_value("1")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_receipt_rule_check_follows_the_active_rule_set() {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run with moto (make test)");
    let sdk = sdk_config().await;
    let ses = aws_sdk_ses::Client::new(&sdk);
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let ours = format!("crossdesk-{suffix}");
    let other = format!("other-{suffix}");
    let check = ReceiptRuleCheck::new(ses.clone(), Some(ours.clone()));

    // Nothing active: SES receives nothing.
    ses.set_active_receipt_rule_set().send().await.unwrap();
    let (s, reason) = status(&check).await;
    assert_eq!(s, CheckStatus::Failing);
    assert!(
        reason.contains("no SES receipt rule set is active"),
        "{reason}"
    );

    for (set, enabled) in [(&ours, false), (&other, true)] {
        ses.create_receipt_rule_set()
            .rule_set_name(set)
            .send()
            .await
            .unwrap();
        ses.create_receipt_rule()
            .rule_set_name(set)
            .rule(rule("crossdesk-inbound", enabled))
            .send()
            .await
            .unwrap();
    }

    // Another stack's set is active: ours does not run.
    ses.set_active_receipt_rule_set()
        .rule_set_name(&other)
        .send()
        .await
        .unwrap();
    let (s, reason) = status(&check).await;
    assert_eq!(s, CheckStatus::Failing);
    assert!(reason.contains(&format!("is `{other}`")), "{reason}");
    let (s, _) = status(&ReceiptRuleCheck::new(ses.clone(), None)).await;
    assert_eq!(
        s,
        CheckStatus::Ok,
        "any active set with an enabled rule passes"
    );

    // Ours is active but its only rule is disabled.
    ses.set_active_receipt_rule_set()
        .rule_set_name(&ours)
        .send()
        .await
        .unwrap();
    let (s, reason) = status(&check).await;
    assert_eq!(s, CheckStatus::Failing);
    assert!(reason.contains("no enabled rule"), "{reason}");

    // Enabled: mail flows.
    ses.update_receipt_rule()
        .rule_set_name(&ours)
        .rule(rule("crossdesk-inbound", true))
        .send()
        .await
        .unwrap();
    let (s, reason) = status(&check).await;
    assert_eq!(s, CheckStatus::Ok, "{reason}");
    assert!(reason.contains("crossdesk-inbound"), "{reason}");

    ses.set_active_receipt_rule_set().send().await.unwrap();
}
