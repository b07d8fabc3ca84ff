//! `S3MediaStore` against S3 on moto server: a stored copy comes back through its pre-signed
//! link, with the type and disposition the link asks for.

use chrono::{TimeDelta, Utc};
use crossdesk_aws::{s3, sdk_config, S3MediaStore};
use crossdesk_core::media::MediaStore;

const SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

async fn store() -> (S3MediaStore, aws_sdk_s3::Client, String) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts moto)"
    );
    let sdk = sdk_config().await;
    let client = s3::client(&sdk);
    let bucket = format!("crossdesk-media-{}", uuid::Uuid::now_v7().simple());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    (S3MediaStore::new(client.clone(), &bucket), client, bucket)
}

#[tokio::test]
async fn a_copy_is_stored_by_content_and_served_through_a_presigned_link() {
    let (media, client, bucket) = store().await;
    media
        .put(SHA, b"hello".to_vec(), "image/png")
        .await
        .unwrap();
    media
        .put(SHA, b"hello".to_vec(), "image/png")
        .await
        .unwrap();
    let object = client
        .get_object()
        .bucket(&bucket)
        .key(format!("media/sha256/{SHA}"))
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_type(), Some("image/png"));

    let expires = Utc::now() + TimeDelta::minutes(15);
    let inline = media
        .link(SHA, "image/png", Some("photo.png"), true, expires)
        .await
        .unwrap();
    assert!(inline.contains("X-Amz-Signature="), "{inline}");
    let lifetime: u64 = inline
        .split("X-Amz-Expires=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap();
    assert!(
        (880..=900).contains(&lifetime),
        "about 15 minutes: {inline}"
    );
    let answer = reqwest::get(&inline).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "image/png");
    assert_eq!(answer.headers()["content-disposition"], "inline");
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"hello");

    let download = media
        .link(
            SHA,
            "application/octet-stream",
            Some("a\"b.svg"),
            false,
            expires,
        )
        .await
        .unwrap();
    let answer = reqwest::get(&download).await.unwrap();
    assert_eq!(answer.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        answer.headers()["content-disposition"],
        "attachment; filename=\"ab.svg\""
    );
}
