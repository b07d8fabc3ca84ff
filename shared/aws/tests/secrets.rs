//! `ChannelSecrets::load` against Secrets Manager on moto server.

use crossdesk_aws::{sdk_config, ChannelSecrets, SecretsError};
use secrecy::ExposeSecret;

#[tokio::test]
async fn secrets_load_from_secrets_manager_and_variables_override_them() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts moto)"
    );
    let sdk = sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = format!("crossdesk-test-{}", uuid::Uuid::now_v7().simple());
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string(r#"{"facebook_app_secret":"fb-stored","chat_secret":"chat-stored"}"#)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    let loaded = ChannelSecrets::load(&client, Some(&arn), |_| None)
        .await
        .unwrap();
    assert_eq!(
        loaded.facebook_app_secret.unwrap().expose_secret(),
        "fb-stored"
    );
    assert_eq!(loaded.chat_secret.unwrap().expose_secret(), "chat-stored");
    assert!(loaded.twitter_consumer_secret.is_none());

    let overridden = ChannelSecrets::load(&client, Some(&name), |var| {
        (var == "CROSSDESK_CHAT_SECRET").then(|| "chat-local".to_string())
    })
    .await
    .unwrap();
    assert_eq!(
        overridden.chat_secret.unwrap().expose_secret(),
        "chat-local"
    );

    let missing = ChannelSecrets::load(&client, Some("no-such-secret"), |_| None).await;
    assert!(
        matches!(missing, Err(SecretsError::Unavailable { .. })),
        "{missing:?}"
    );

    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("hunter2 is not json")
        .send()
        .await
        .unwrap();
    let malformed = ChannelSecrets::load(&client, Some(&name), |_| None)
        .await
        .unwrap_err();
    assert!(matches!(malformed, SecretsError::Malformed { .. }));
    assert!(!malformed.to_string().contains("hunter2"), "{malformed}");
}
