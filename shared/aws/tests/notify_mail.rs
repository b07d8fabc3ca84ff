//! Notification mail through SES v2 (moto server at `AWS_ENDPOINT_URL`): sent from a verified
//! identity with a subject and a text body; an unverified sender is refused for good.

use crossdesk_aws::notify_mail::SesNotificationMailer;
use crossdesk_aws::sdk_config;
use crossdesk_core::notify::{NotificationMail, NotificationMailer, NotifySendError};
use crossdesk_core::EmailAddress;

#[path = "../../../tests/common/moto_ses.rs"]
mod moto_ses;

fn mail(to: &str) -> NotificationMail {
    NotificationMail {
        to: EmailAddress::parse(to).unwrap(),
        subject: "[Crossdesk] New ticket: Broken léger [#K3F9Q2XA]".into(),
        text: "New on ticket #K3F9Q2XA:\n\n- 12:00:00 New ticket: Alex: Broken\n".into(),
    }
}

#[tokio::test]
async fn sends_simple_mail_from_a_verified_identity() {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run with moto (make test)");
    let sdk = sdk_config().await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let from = format!("desk-{suffix}@notify.example");
    ses.create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .unwrap();
    let quota = || async {
        aws_sdk_ses::Client::new(&sdk)
            .get_send_quota()
            .send()
            .await
            .unwrap()
            .sent_last24_hours()
    };
    let before = quota().await;
    let mailer = SesNotificationMailer::new(ses.clone(), EmailAddress::parse(&from).unwrap());
    let to = format!("agent-{suffix}@acme.example");
    mailer.send(&mail(&to)).await.unwrap();
    assert_eq!(quota().await, before + 1.0, "SES counted one mail");
    let kept = moto_ses::ses_sent(None).await;
    let ours: Vec<_> = kept
        .iter()
        .filter(|m| m["kind"] == "Message" && m["destinations"]["ToAddresses"][0] == to.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{kept:?}");
    assert_eq!(ours[0]["source"], from.as_str());
    assert_eq!(ours[0]["subject"], mail(&to).subject.as_str());
    assert_eq!(ours[0]["body"], mail(&to).text.as_str());

    let stranger = SesNotificationMailer::new(
        ses,
        EmailAddress::parse(&format!("nobody-{suffix}@unverified.example")).unwrap(),
    );
    assert!(matches!(
        stranger.send(&mail(&to)).await,
        Err(NotifySendError::Permanent(_))
    ));
}
