//! Signs sample platform events (the files in `events/`) the way each platform would, so they
//! can be posted to a running stack: by `crossdesk-send` and by the end-to-end tests.

use std::path::Path;

use chrono::{DateTime, Utc};
use crossdesk_channels::{chat::ChatChannel, twitter, FacebookChannel};
use thiserror::Error;

/// Why a sample cannot be signed.
#[derive(Debug, Error)]
pub enum SampleError {
    /// The channel has no webhook (or cannot be told from the path).
    #[error("cannot tell the channel of {0}: put it under events/<facebook|twitter|email|chat>/")]
    UnknownChannel(String),
    /// The secret needed to sign for the channel is not set.
    #[error("set {0} to sign {1} events (the same value the stack uses)")]
    MissingSecret(&'static str, &'static str),
}

/// The secrets used to sign, as the stack is configured.
#[derive(Debug, Clone, Default)]
pub struct SigningSecrets {
    /// `CROSSDESK_FACEBOOK_APP_SECRET`.
    pub facebook_app_secret: Option<String>,
    /// `CROSSDESK_TWITTER_CONSUMER_SECRET`.
    pub twitter_consumer_secret: Option<String>,
    /// `CROSSDESK_CHAT_SECRET`.
    pub chat_secret: Option<String>,
    /// `CROSSDESK_AGENT_TOKEN` (raw email is posted with it).
    pub agent_token: Option<String>,
}

impl SigningSecrets {
    /// The secrets from the process environment.
    pub fn from_env() -> Self {
        let get = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        SigningSecrets {
            facebook_app_secret: get("CROSSDESK_FACEBOOK_APP_SECRET"),
            twitter_consumer_secret: get("CROSSDESK_TWITTER_CONSUMER_SECRET"),
            chat_secret: get("CROSSDESK_CHAT_SECRET"),
            agent_token: get("CROSSDESK_AGENT_TOKEN"),
        }
    }
}

/// A webhook request ready to post.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The path to post to (`/webhooks/<channel>`).
    pub path: String,
    /// Headers, including the signature.
    pub headers: Vec<(String, String)>,
    /// The body, unchanged.
    pub body: Vec<u8>,
}

/// The channel of a sample file: the name of the folder it is in.
pub fn channel_of(path: &Path) -> Option<String> {
    path.parent()?.file_name()?.to_str().map(str::to_string)
}

/// Signs `body` for `channel` as the platform would at time `now`.
pub fn sign(
    channel: &str,
    body: Vec<u8>,
    secrets: &SigningSecrets,
    now: DateTime<Utc>,
) -> Result<SignedRequest, SampleError> {
    let need = |s: &Option<String>, var: &'static str, ch: &'static str| {
        s.clone().ok_or(SampleError::MissingSecret(var, ch))
    };
    let json = ("content-type".to_string(), "application/json".to_string());
    let headers = match channel {
        "facebook" => {
            let secret = need(
                &secrets.facebook_app_secret,
                "CROSSDESK_FACEBOOK_APP_SECRET",
                "facebook",
            )?;
            vec![
                json,
                (
                    "x-hub-signature-256".into(),
                    FacebookChannel::sign(&secret, &body),
                ),
            ]
        }
        "twitter" => {
            let secret = need(
                &secrets.twitter_consumer_secret,
                "CROSSDESK_TWITTER_CONSUMER_SECRET",
                "twitter",
            )?;
            vec![
                json,
                (
                    "x-twitter-webhooks-signature".into(),
                    twitter::sign(&secret, &body),
                ),
            ]
        }
        "chat" => {
            let secret = need(&secrets.chat_secret, "CROSSDESK_CHAT_SECRET", "chat")?;
            let (ts, sig) = ChatChannel::sign(&secret, now.timestamp(), &body);
            vec![
                json,
                ("x-crossdesk-timestamp".into(), ts),
                ("x-crossdesk-signature".into(), sig),
            ]
        }
        "email" => {
            let token = need(&secrets.agent_token, "CROSSDESK_AGENT_TOKEN", "email")?;
            vec![
                ("content-type".into(), "message/rfc822".into()),
                ("authorization".into(), format!("Bearer {token}")),
            ]
        }
        other => return Err(SampleError::UnknownChannel(other.to_string())),
    };
    Ok(SignedRequest {
        path: format!("/webhooks/{channel}"),
        headers,
        body,
    })
}

/// Posts a signed request to a stack at `base_url`; returns the status and body.
pub async fn post(
    client: &reqwest::Client,
    base_url: &str,
    request: &SignedRequest,
) -> reqwest::Result<(u16, String)> {
    let mut builder = client.post(format!(
        "{}{}",
        base_url.trim_end_matches('/'),
        request.path
    ));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = builder.body(request.body.clone()).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}
