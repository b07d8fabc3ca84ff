//! Which reply senders a deployment has, from its settings: the same rules for the local stack
//! and the `reply-sender` function. A channel without its sending credentials has no sender;
//! its replies fail with `channel_not_configured` rather than waiting forever.

use std::sync::Arc;
use std::time::Duration;

use crossdesk_core::ChannelKind;
use secrecy::SecretString;
use thiserror::Error;
use url::Url;

use crate::chat_send::{ChatSender, ChatSenderConfig};
use crate::facebook_send::{FacebookSender, FacebookSenderConfig, GRAPH_HOST};
use crate::graph_version::{GraphApiVersion, GRAPH_API_VERSION_VARIABLE};
use crate::send::ReplySender;
use crate::twitter_send::{TwitterSender, TwitterSenderConfig};

/// A sending setting that cannot be used.
#[derive(Debug, Error)]
pub enum SenderConfigError {
    /// A URL setting is not a URL.
    #[error("{name} is not a valid URL: {reason}")]
    Url {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A plain setting has a value that cannot be used.
    #[error("{name} is invalid: {reason}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A sender refused its configuration.
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The sender of each configured channel.
pub type ChannelSenders = Vec<(ChannelKind, Arc<dyn ReplySender>)>;

/// Every sending setting (plain configuration and credentials) a deployment may have.
#[derive(Debug, Clone, Default)]
pub struct SenderSettings {
    /// `CROSSDESK_FACEBOOK_GRAPH_URL`: Graph's host, without the version (default
    /// `https://graph.facebook.com`; a path prefix is kept, for a proxy).
    pub facebook_graph_host: Option<Url>,
    /// `CROSSDESK_GRAPH_API_VERSION`: the Graph API version of every Graph call (default
    /// [`crate::graph_version::GRAPH_API_VERSION`]).
    pub facebook_graph_version: Option<GraphApiVersion>,
    /// The page access token.
    pub facebook_page_token: Option<SecretString>,
    /// `CROSSDESK_FACEBOOK_HUMAN_AGENT=true` when the page has the Human Agent permission.
    pub facebook_human_agent: bool,
    /// `CROSSDESK_TWITTER_API_URL` (default `https://api.x.com`).
    pub twitter_api_url: Option<Url>,
    /// The X app's consumer key.
    pub twitter_consumer_key: Option<SecretString>,
    /// The X app's consumer secret.
    pub twitter_consumer_secret: Option<SecretString>,
    /// The account's access token.
    pub twitter_access_token: Option<SecretString>,
    /// The account's access token secret.
    pub twitter_access_secret: Option<SecretString>,
    /// `CROSSDESK_CHAT_CALLBACK_URL`: where chat replies are posted.
    pub chat_callback_url: Option<Url>,
    /// The chat signing secret.
    pub chat_secret: Option<SecretString>,
    /// The website widget's chat API is served: chat replies to widget sessions are delivered
    /// through the store even without a callback URL.
    pub chat_widget: bool,
}

/// `CROSSDESK_FACEBOOK_HUMAN_AGENT`, read through `lookup`: whether the page has Meta's Human
/// Agent permission (`true`, `1` or `yes`). The Facebook sender and the agent API's reply
/// windows both follow it.
pub fn human_agent_permission(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup("CROSSDESK_FACEBOOK_HUMAN_AGENT")
        .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

impl SenderSettings {
    /// Reads the plain (non-secret) settings through `lookup`; credentials are set by the caller.
    pub fn with_urls_from(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SenderConfigError> {
        let url = |name: &'static str| -> Result<Option<Url>, SenderConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => Url::parse(v.trim())
                    .map(Some)
                    .map_err(|e| SenderConfigError::Url {
                        name,
                        reason: e.to_string(),
                    }),
            }
        };
        self.facebook_graph_host = url("CROSSDESK_FACEBOOK_GRAPH_URL")?;
        if let Some(host) = &self.facebook_graph_host {
            // One place holds the version: a versioned URL would be silently overridden.
            if let Some(last) = host.path_segments().and_then(|mut s| s.next_back()) {
                if GraphApiVersion::parse(last).is_ok() {
                    return Err(SenderConfigError::Setting {
                        name: "CROSSDESK_FACEBOOK_GRAPH_URL",
                        reason: format!(
                            "`{host}` ends with the API version `{last}`: give the host only \
                             and set {GRAPH_API_VERSION_VARIABLE}={last}"
                        ),
                    });
                }
            }
        }
        self.facebook_graph_version = lookup(GRAPH_API_VERSION_VARIABLE)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| {
                GraphApiVersion::parse(&v).map_err(|e| SenderConfigError::Setting {
                    name: GRAPH_API_VERSION_VARIABLE,
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        self.twitter_api_url = url("CROSSDESK_TWITTER_API_URL")?;
        self.chat_callback_url = url("CROSSDESK_CHAT_CALLBACK_URL")?;
        self.facebook_human_agent = human_agent_permission(&lookup);
        Ok(self)
    }

    /// The Graph API version every Graph call uses: the configured one, else the pinned one.
    pub fn graph_api_version(&self) -> GraphApiVersion {
        self.facebook_graph_version.clone().unwrap_or_default()
    }

    /// Graph's base URL for API calls: the host, then the version
    /// (`https://graph.facebook.com/v24.0`). Every Graph call is built on it.
    pub fn graph_base_url(&self) -> Url {
        let mut url = self
            .facebook_graph_host
            .clone()
            .unwrap_or_else(|| Url::parse(GRAPH_HOST).expect("the Graph host is a URL"));
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(self.graph_api_version().as_str());
        }
        url
    }

    /// The senders these settings allow, sharing one HTTP client (3 s to connect, 10 s in all,
    /// no redirects: a platform API never redirects a send, and a callback must not be steered).
    pub fn senders(&self) -> Result<ChannelSenders, SenderConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SenderConfigError::Client(e.to_string()))?;
        let mut senders: ChannelSenders = Vec::new();
        if let Some(token) = &self.facebook_page_token {
            let config = FacebookSenderConfig {
                graph_url: self.graph_base_url(),
                human_agent_enabled: self.facebook_human_agent,
                ..FacebookSenderConfig::new(token.clone())
            };
            let sender: Arc<dyn ReplySender> = Arc::new(
                FacebookSender::new(config, client.clone())
                    .map_err(|e| SenderConfigError::Invalid(e.to_string()))?,
            );
            senders.push((ChannelKind::Facebook, sender.clone()));
            senders.push((ChannelKind::Instagram, sender));
        }
        if let (Some(key), Some(secret), Some(token), Some(token_secret)) = (
            &self.twitter_consumer_key,
            &self.twitter_consumer_secret,
            &self.twitter_access_token,
            &self.twitter_access_secret,
        ) {
            let mut config = TwitterSenderConfig::new(
                key.clone(),
                secret.clone(),
                token.clone(),
                token_secret.clone(),
            );
            if let Some(url) = &self.twitter_api_url {
                config.api_url = url.clone();
            }
            senders.push((
                ChannelKind::Twitter,
                Arc::new(TwitterSender::new(config, client.clone())),
            ));
        }
        if let (Some(url), Some(secret)) = (&self.chat_callback_url, &self.chat_secret) {
            let config = ChatSenderConfig {
                callback_url: url.clone(),
                secret: secret.clone(),
            };
            senders.push((
                ChannelKind::Chat,
                Arc::new(
                    ChatSender::new(config, client)
                        .map_err(|e| SenderConfigError::Invalid(e.to_string()))?,
                ),
            ));
        } else if self.chat_widget {
            senders.push((ChannelKind::Chat, Arc::new(ChatSender::widget_only(client))));
        }
        Ok(senders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<SecretString> {
        Some(SecretString::from(v.to_string()))
    }

    #[test]
    fn only_channels_with_all_their_credentials_get_a_sender() {
        let none = SenderSettings::default().senders().unwrap();
        assert!(none.is_empty());
        let settings = SenderSettings {
            facebook_page_token: s("page"),
            twitter_consumer_key: s("ck"),
            twitter_consumer_secret: s("cs"),
            twitter_access_token: s("at"),
            // No access secret: no X sender.
            chat_secret: s("chat"),
            ..SenderSettings::default()
        }
        .with_urls_from(|name| {
            (name == "CROSSDESK_CHAT_CALLBACK_URL").then(|| "http://127.0.0.1:9/replies".into())
        })
        .unwrap();
        let channels: Vec<ChannelKind> = settings
            .senders()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(
            channels,
            [
                ChannelKind::Facebook,
                ChannelKind::Instagram,
                ChannelKind::Chat
            ]
        );
    }

    #[test]
    fn the_widget_alone_gives_chat_a_sender() {
        let settings = SenderSettings {
            chat_widget: true,
            ..SenderSettings::default()
        };
        let channels: Vec<ChannelKind> = settings
            .senders()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(channels, [ChannelKind::Chat]);
    }

    fn settings(vars: &[(&str, &str)]) -> Result<SenderSettings, SenderConfigError> {
        SenderSettings::default().with_urls_from(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn graph_calls_default_to_the_pinned_version_on_graph_facebook_com() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.graph_api_version().as_str(), "v24.0");
        assert_eq!(
            s.graph_base_url().as_str(),
            "https://graph.facebook.com/v24.0"
        );
        assert_eq!(
            s.graph_base_url(),
            crate::facebook_send::default_graph_url(),
            "the sender's own default agrees"
        );
    }

    #[test]
    fn the_graph_version_is_its_own_setting_beside_the_host() {
        let s = settings(&[
            ("CROSSDESK_GRAPH_API_VERSION", " v24.0 "),
            ("CROSSDESK_FACEBOOK_GRAPH_URL", "http://127.0.0.1:9/graph/"),
        ])
        .unwrap();
        assert_eq!(s.graph_api_version().as_str(), "v24.0");
        assert_eq!(
            s.graph_base_url().as_str(),
            "http://127.0.0.1:9/graph/v24.0"
        );
        let s = settings(&[("CROSSDESK_FACEBOOK_GRAPH_URL", "http://127.0.0.1:9")]).unwrap();
        assert_eq!(s.graph_base_url().as_str(), "http://127.0.0.1:9/v24.0");
    }

    #[test]
    fn refuses_an_invalid_version_or_a_versioned_host_naming_the_variable() {
        for bad in ["21.0", "v21", "latest", "v21.0/"] {
            let err = settings(&[("CROSSDESK_GRAPH_API_VERSION", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("CROSSDESK_GRAPH_API_VERSION"),
                "{bad}: {err}"
            );
        }
        let err = settings(&[(
            "CROSSDESK_FACEBOOK_GRAPH_URL",
            "https://graph.facebook.com/v19.0",
        )])
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CROSSDESK_FACEBOOK_GRAPH_URL")
                && text.contains("CROSSDESK_GRAPH_API_VERSION=v19.0"),
            "{text}"
        );
    }

    #[test]
    fn the_x_api_defaults_to_api_x_com_and_is_configurable() {
        let default = TwitterSenderConfig::new(
            SecretString::from("ck"),
            SecretString::from("cs"),
            SecretString::from("at"),
            SecretString::from("as"),
        );
        assert_eq!(default.api_url.as_str(), "https://api.x.com/");
        let s = settings(&[("CROSSDESK_TWITTER_API_URL", "http://127.0.0.1:9/x")]).unwrap();
        assert_eq!(
            s.twitter_api_url.map(|u| u.to_string()).as_deref(),
            Some("http://127.0.0.1:9/x")
        );
    }

    #[test]
    fn rejects_a_malformed_url_naming_the_variable() {
        let err = SenderSettings::default()
            .with_urls_from(|name| {
                (name == "CROSSDESK_TWITTER_API_URL").then(|| "not a url".into())
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("CROSSDESK_TWITTER_API_URL"),
            "{err}"
        );
    }
}
