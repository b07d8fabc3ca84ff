//! S3: the client every S3 user shares, and [`S3Archive`], the raw payload archive.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use crossdesk_core::media::{download_disposition, MediaStore, MediaStoreError};
use crossdesk_core::{ArchiveError, ChannelKind, RawArchive, RawRef};

use crate::error::{describe, error_code};

/// An S3 client for `sdk`. Path-style addressing when an endpoint is configured (emulators
/// serve buckets under the path, not under a subdomain).
pub fn client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Reads a whole object; `None` when it does not exist.
pub async fn get_from(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => {
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| format!("s3://{bucket}/{key}: {e}"))?;
            Ok(Some(bytes.into_bytes().to_vec()))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) if error_code(&e) == Some("NoSuchKey") => Ok(None),
        Err(e) => Err(format!("s3://{bucket}/{key}: {}", describe(&e))),
    }
}

/// Writes a whole object.
pub async fn put_to(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), String> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("s3://{bucket}/{key}: {}", describe(&e)))
}

/// Raw webhook payloads in S3, one object per distinct payload under
/// `raw/<channel>/<sha256 hex>`.
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Archive {
    /// An archive in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        S3Archive {
            client,
            bucket: bucket.to_string(),
        }
    }

    /// The object key of a payload: its channel is not part of the address, so reading back
    /// needs only the reference.
    fn key(raw: &RawRef) -> String {
        format!("raw/{}", raw.0.replace(':', "/"))
    }
}

#[async_trait]
impl RawArchive for S3Archive {
    async fn put(&self, channel: ChannelKind, body: &[u8]) -> Result<RawRef, ArchiveError> {
        let raw = RawRef::of(body);
        // Same bytes, same key: writing twice stores the same object.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key(&raw))
            .content_type("application/octet-stream")
            .metadata("channel", channel.as_str())
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|e| ArchiveError(format!("s3://{}: {}", self.bucket, describe(&e))))?;
        Ok(raw)
    }

    async fn get(&self, raw: &RawRef) -> Result<Option<Vec<u8>>, ArchiveError> {
        get_from(&self.client, &self.bucket, &Self::key(raw))
            .await
            .map_err(ArchiveError)
    }
}

/// Crossdesk's copies of attachments in S3, one object per distinct content under
/// `media/sha256/<hex>`, linked with pre-signed `GET` URLs that set the answer's
/// `Content-Type` and `Content-Disposition`.
#[derive(Debug, Clone)]
pub struct S3MediaStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3MediaStore {
    /// A media store in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        S3MediaStore {
            client,
            bucket: bucket.to_string(),
        }
    }

    /// The object key of a copy.
    pub fn key(sha256_hex: &str) -> String {
        format!("media/sha256/{sha256_hex}")
    }
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn put(
        &self,
        sha256_hex: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), MediaStoreError> {
        put_to(
            &self.client,
            &self.bucket,
            &Self::key(sha256_hex),
            bytes,
            content_type,
        )
        .await
        .map_err(MediaStoreError)
    }

    async fn link(
        &self,
        sha256_hex: &str,
        content_type: &str,
        file_name: Option<&str>,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, MediaStoreError> {
        let ttl = (expires_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        let presigning = PresigningConfig::expires_in(ttl)
            .map_err(|e| MediaStoreError(format!("link lifetime: {e}")))?;
        let disposition = if inline {
            "inline".to_string()
        } else {
            download_disposition(file_name.unwrap_or(""))
        };
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(Self::key(sha256_hex))
            .response_content_type(content_type)
            .response_content_disposition(disposition)
            .presigned(presigning)
            .await
            .map_err(|e| MediaStoreError(format!("s3://{}: {}", self.bucket, describe(&e))))?;
        Ok(request.uri().to_string())
    }
}
