//! Downloads platform media (Messenger, Instagram and X attachment URLs) for the ticket writer,
//! guarded against server-side request forgery: a webhook names the URL, so a forged or
//! hostile URL must not make Crossdesk read its own cloud metadata (`169.254.169.254`), a
//! service on localhost or anything else on a private network.
//!
//! The guard holds at every step: the URL's host (an IP literal is checked as written; a name is
//! checked after DNS resolution, by the resolver the HTTP client connects through, so a name
//! cannot resolve to a public address when checked and a private one when used), and every
//! redirect (at most [`MAX_REDIRECTS`], each checked the same way). Only `http` and `https`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crossdesk_core::media::{FetchError, FetchedMedia, MediaFetcher, MediaLimits};
use crossdesk_core::ChannelKind;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

use crate::oauth1;

/// The most redirects followed for one download.
pub const MAX_REDIRECTS: usize = 3;

/// The hosts where X serves direct-message media only to an OAuth 1.0a signed request.
pub const X_SIGNED_MEDIA_HOSTS: &[&str] = &["ton.twitter.com", "ton.x.com"];

/// The X account's user-context credentials, to fetch the media of its direct messages.
#[derive(Clone)]
pub struct XMediaCredentials {
    /// The app's consumer key.
    pub consumer_key: SecretString,
    /// The app's consumer secret.
    pub consumer_secret: SecretString,
    /// The account's access token.
    pub access_token: SecretString,
    /// The account's access token secret.
    pub access_secret: SecretString,
}

impl XMediaCredentials {
    /// The four credentials, when all are set.
    pub fn from_parts(
        consumer_key: Option<&SecretString>,
        consumer_secret: Option<&SecretString>,
        access_token: Option<&SecretString>,
        access_secret: Option<&SecretString>,
    ) -> Option<Self> {
        Some(XMediaCredentials {
            consumer_key: consumer_key?.clone(),
            consumer_secret: consumer_secret?.clone(),
            access_token: access_token?.clone(),
            access_secret: access_secret?.clone(),
        })
    }
}

impl std::fmt::Debug for XMediaCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XMediaCredentials([redacted])")
    }
}

/// Downloads media over HTTP(S) with the SSRF guard.
#[derive(Debug, Clone)]
pub struct HttpMediaFetcher {
    client: reqwest::Client,
    guard: Arc<AddressGuard>,
    x_credentials: Option<XMediaCredentials>,
    x_signed_hosts: Vec<String>,
}

/// Which addresses a download may reach: public ones, plus an explicit list of `host:port`
/// exceptions (for a fake platform on localhost in development and tests, never in production).
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allowed: Vec<SocketAddr>,
}

impl AddressGuard {
    /// A guard that lets these private `ip:port` pairs through as well.
    pub fn allowing(allowed: Vec<SocketAddr>) -> Self {
        AddressGuard { allowed }
    }

    /// Checks a URL before it is requested (the first one and every redirect): scheme, and an
    /// IP-literal host. Names are checked when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Permanent(format!(
                "unsupported URL scheme `{}`",
                url.scheme()
            )));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(FetchError::Permanent("URL without a host".into())),
        };
        if is_public(ip) || self.allowed.contains(&SocketAddr::new(ip, port)) {
            Ok(())
        } else {
            Err(FetchError::Blocked(format!("{ip}:{port}")))
        }
    }
}

/// The attachment settings, the same for the local stack and the ticket-writer Lambda.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaSettings {
    /// Caps and retries (`CROSSDESK_MEDIA_MAX_FILE_BYTES`, default 25 MiB;
    /// `CROSSDESK_MEDIA_MAX_MESSAGE_BYTES`, default 50 MiB).
    pub limits: MediaLimits,
    /// `CROSSDESK_MEDIA_ALLOW_PRIVATE`: comma-separated `ip:port` pairs downloads may reach
    /// although they are not public (a fake platform on localhost; never set it in production).
    pub allow_private: Vec<SocketAddr>,
}

/// A media setting that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} is invalid: {reason}")]
pub struct MediaConfigError {
    /// The variable.
    pub name: &'static str,
    /// Why.
    pub reason: String,
}

impl MediaSettings {
    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MediaConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bytes = |name: &'static str, default: u64| match get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| MediaConfigError {
                    name,
                    reason: format!("`{v}` is not a positive number of bytes"),
                }),
        };
        let defaults = MediaLimits::default();
        let limits = MediaLimits {
            max_file_bytes: bytes("CROSSDESK_MEDIA_MAX_FILE_BYTES", defaults.max_file_bytes)?,
            max_message_bytes: bytes(
                "CROSSDESK_MEDIA_MAX_MESSAGE_BYTES",
                defaults.max_message_bytes,
            )?,
            ..defaults
        };
        let allow_private = get("CROSSDESK_MEDIA_ALLOW_PRIVATE")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        v.parse::<SocketAddr>().map_err(|_| MediaConfigError {
                            name: "CROSSDESK_MEDIA_ALLOW_PRIVATE",
                            reason: format!("`{v}` is not an ip:port pair"),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(MediaSettings {
            limits,
            allow_private,
        })
    }

    /// The fetcher these settings describe.
    pub fn fetcher(&self) -> Result<HttpMediaFetcher, reqwest::Error> {
        HttpMediaFetcher::new(AddressGuard::allowing(self.allow_private.clone()))
    }
}

/// Resolves names and drops every non-public address: a name that only resolves to private
/// addresses fails to connect.
#[derive(Debug)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(BlockedName(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// A name that resolves only to non-public addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to non-public addresses")]
struct BlockedName(String);

impl HttpMediaFetcher {
    /// A fetcher with the given guard, timeouts of 5 s to connect and 30 s per download.
    pub fn new(guard: AddressGuard) -> Result<Self, reqwest::Error> {
        let guard = Arc::new(guard);
        let redirect_guard = guard.clone();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("Crossdesk/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicOnlyResolver))
            .redirect(Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(FetchError::Permanent(format!(
                        "more than {MAX_REDIRECTS} redirects"
                    )));
                }
                match redirect_guard.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }))
            .build()?;
        Ok(HttpMediaFetcher {
            client,
            guard,
            x_credentials: None,
            x_signed_hosts: X_SIGNED_MEDIA_HOSTS.iter().map(|h| h.to_string()).collect(),
        })
    }

    /// The same fetcher, signing requests for X direct-message media (on
    /// [`X_SIGNED_MEDIA_HOSTS`]) with the account's credentials. A redirect to another host
    /// drops the signature (reqwest removes `Authorization` when the host changes).
    pub fn with_x_credentials(mut self, credentials: Option<XMediaCredentials>) -> Self {
        self.x_credentials = credentials;
        self
    }

    /// The `Authorization` header for a download, when it is X direct-message media.
    fn x_authorization(&self, channel: ChannelKind, url: &Url) -> Option<String> {
        let credentials = self.x_credentials.as_ref()?;
        let host = url.host_str()?;
        if channel != ChannelKind::Twitter || !self.x_signed_hosts.iter().any(|h| h == host) {
            return None;
        }
        let credentials = oauth1::Credentials {
            consumer_key: credentials.consumer_key.expose_secret(),
            consumer_secret: credentials.consumer_secret.expose_secret(),
            token: credentials.access_token.expose_secret(),
            token_secret: credentials.access_secret.expose_secret(),
        };
        Some(oauth1::sign_now("GET", url, &[], &credentials))
    }
}

#[async_trait]
impl MediaFetcher for HttpMediaFetcher {
    async fn fetch(
        &self,
        channel: ChannelKind,
        url: &str,
        max_bytes: u64,
    ) -> Result<FetchedMedia, FetchError> {
        let url = Url::parse(url).map_err(|e| FetchError::Permanent(format!("bad URL: {e}")))?;
        self.guard.check_url(&url)?;
        let host = url.host_str().unwrap_or("").to_string();
        let mut request = self.client.get(url.clone());
        if let Some(authorization) = self.x_authorization(channel, &url) {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let mut response = request.send().await.map_err(|e| request_error(&e, &host))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status));
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_bytes) {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty() && v.contains('/'));
        let capacity = declared.unwrap_or(0).min(max_bytes) as usize;
        let mut bytes = Vec::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| request_error(&e, &host))?
        {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(FetchError::TooLarge { limit: max_bytes });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(FetchedMedia {
            bytes,
            content_type,
        })
    }
}

/// Classifies a failed request: the guard's own refusals, then passing network failures.
fn request_error(e: &reqwest::Error, host: &str) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(fetch) = err.downcast_ref::<FetchError>() {
            return fetch.clone();
        }
        if let Some(blocked) = err.downcast_ref::<BlockedName>() {
            return FetchError::Blocked(blocked.0.clone());
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Transient(format!("timed out fetching from {host}"))
    } else if e.is_redirect() {
        FetchError::Permanent(format!("redirect loop at {host}"))
    } else {
        FetchError::Transient(format!("network error fetching from {host}"))
    }
}

/// Classifies an HTTP error status: rate limits and server errors pass, the rest is final.
fn status_error(status: StatusCode) -> FetchError {
    let reason = format!("HTTP {}", status.as_u16());
    if status.is_redirection() {
        // reqwest hands back a redirect it cannot follow (to `file:` or another scheme).
        return FetchError::Permanent(format!("{reason}: redirect to a location not followed"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        FetchError::Transient(reason)
    } else {
        FetchError::Permanent(reason)
    }
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, unique-local),
/// link-local (cloud metadata), carrier-grade NAT, multicast, documentation, benchmarking,
/// reserved or unspecified; IPv4-mapped and -compatible IPv6 addresses are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 (embeds IPv4)
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::{header, HeaderMap, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;

    use super::*;

    /// A media server on 127.0.0.1 that records the paths asked for.
    struct MediaServer {
        addr: SocketAddr,
        paths: Arc<Mutex<Vec<String>>>,
    }

    /// Whether an `Authorization: OAuth …` header signs this GET with the test credentials.
    fn signed_by_the_account(authorization: &str, uri: &Uri, host: &str) -> bool {
        let Some(fields) = authorization.strip_prefix("OAuth ") else {
            return false;
        };
        let fields: Vec<(String, String)> = fields
            .split(", ")
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| {
                let v = v.trim_matches('"');
                let decoded = form_urlencoded::parse(format!("v={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                (k.to_string(), decoded)
            })
            .collect();
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let signed: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| k != "oauth_signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = Url::parse(&format!("http://{host}{uri}")).unwrap();
        let base = oauth1::signature_base_string("GET", &url, &signed);
        field("oauth_consumer_key").as_deref() == Some("ck")
            && field("oauth_token").as_deref() == Some("at")
            && field("oauth_signature") == Some(oauth1::signature(&base, "cs", "as"))
    }

    async fn serve(
        State(state): State<(Arc<Mutex<Vec<String>>>, u16)>,
        uri: Uri,
        headers: HeaderMap,
    ) -> Response {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (paths, other_port) = state;
        paths.lock().unwrap().push(uri.to_string());
        match uri.path() {
            "/photo.jpg" => (
                [(header::CONTENT_TYPE, "image/jpeg; charset=binary")],
                b"\xff\xd8jpeg".to_vec(),
            )
                .into_response(),
            "/big" => vec![7u8; 4096].into_response(),
            "/streamed" => {
                // No Content-Length: the cap must hold while reading.
                let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![1u8; 1024]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response()
            }
            "/gone" => StatusCode::NOT_FOUND.into_response(),
            "/busy" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            "/slow-down" => StatusCode::TOO_MANY_REQUESTS.into_response(),
            "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-other-port" => redirect(&format!("http://127.0.0.1:{other_port}/photo.jpg")),
            "/to-localhost-name" => redirect(&format!("http://localhost:{other_port}/")),
            "/to-file" => redirect("file:///etc/passwd"),
            "/to-self" => redirect("/photo.jpg"),
            "/dm-media.jpg" => match headers.get(header::AUTHORIZATION) {
                Some(auth) if signed_by_the_account(auth.to_str().unwrap(), &uri, &host) => {
                    ([(header::CONTENT_TYPE, "image/jpeg")], b"dm".to_vec()).into_response()
                }
                _ => StatusCode::UNAUTHORIZED.into_response(),
            },
            "/loop" => redirect("/loop"),
            _ => StatusCode::IM_A_TEAPOT.into_response(),
        }
    }

    fn redirect(to: &str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, to.parse().unwrap());
        (StatusCode::FOUND, headers).into_response()
    }

    async fn media_server() -> MediaServer {
        let paths = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A port nothing is allowed to reach: the redirect target of `/to-other-port`.
        let other_port = addr.port().wrapping_add(1);
        let app = Router::new()
            .fallback(get(serve))
            .with_state((paths.clone(), other_port));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MediaServer { addr, paths }
    }

    fn fetcher(server: &MediaServer) -> HttpMediaFetcher {
        HttpMediaFetcher::new(AddressGuard::allowing(vec![server.addr])).unwrap()
    }

    async fn fetch(server: &MediaServer, path: &str, max: u64) -> Result<FetchedMedia, FetchError> {
        let url = format!("http://{}{path}", server.addr);
        fetcher(server)
            .fetch(ChannelKind::Facebook, &url, max)
            .await
    }

    #[tokio::test]
    async fn downloads_the_file_with_its_content_type() {
        let server = media_server().await;
        let got = fetch(&server, "/photo.jpg", 1024).await.unwrap();
        assert_eq!(got.bytes, b"\xff\xd8jpeg");
        assert_eq!(got.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(*server.paths.lock().unwrap(), ["/photo.jpg"]);
    }

    #[tokio::test]
    async fn follows_a_redirect_that_stays_allowed() {
        let server = media_server().await;
        let got = fetch(&server, "/to-self", 1024).await.unwrap();
        assert_eq!(got.bytes, b"\xff\xd8jpeg");
        assert_eq!(*server.paths.lock().unwrap(), ["/to-self", "/photo.jpg"]);
    }

    #[tokio::test]
    async fn refuses_private_addresses_without_asking_them() {
        let server = media_server().await;
        let guarded = HttpMediaFetcher::new(AddressGuard::default()).unwrap();
        for url in [
            format!("http://{}/photo.jpg", server.addr),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://10.0.0.8/x".to_string(),
            "http://[::1]:9/x".to_string(),
            "http://[::ffff:192.168.1.1]/x".to_string(),
        ] {
            let got = guarded.fetch(ChannelKind::Twitter, &url, 1024).await;
            assert!(matches!(got, Err(FetchError::Blocked(_))), "{url}: {got:?}");
        }
        assert!(
            server.paths.lock().unwrap().is_empty(),
            "nothing was requested"
        );
    }

    #[tokio::test]
    async fn refuses_a_name_that_resolves_to_a_private_address() {
        let guarded = HttpMediaFetcher::new(AddressGuard::default()).unwrap();
        let got = guarded
            .fetch(ChannelKind::Facebook, "http://localhost:9/photo.jpg", 1024)
            .await;
        assert_eq!(got, Err(FetchError::Blocked("localhost".into())));
    }

    #[tokio::test]
    async fn refuses_redirects_to_private_addresses_and_other_schemes() {
        let server = media_server().await;
        let other = SocketAddr::new(server.addr.ip(), server.addr.port().wrapping_add(1));
        assert_eq!(
            fetch(&server, "/to-metadata", 1024).await,
            Err(FetchError::Blocked("169.254.169.254:80".into()))
        );
        assert_eq!(
            fetch(&server, "/to-other-port", 1024).await,
            Err(FetchError::Blocked(other.to_string()))
        );
        assert_eq!(
            fetch(&server, "/to-localhost-name", 1024).await,
            Err(FetchError::Blocked("localhost".into()))
        );
        assert_eq!(
            fetch(&server, "/to-file", 1024).await,
            Err(FetchError::Permanent(
                "HTTP 302: redirect to a location not followed".into()
            ))
        );
        assert_eq!(
            fetch(&server, "/loop", 1024).await,
            Err(FetchError::Permanent(format!(
                "more than {MAX_REDIRECTS} redirects"
            )))
        );
    }

    #[tokio::test]
    async fn caps_the_size_by_header_and_while_reading() {
        let server = media_server().await;
        assert_eq!(
            fetch(&server, "/big", 4095).await,
            Err(FetchError::TooLarge { limit: 4095 })
        );
        assert_eq!(
            fetch(&server, "/big", 4096).await.unwrap().bytes.len(),
            4096
        );
        assert_eq!(
            fetch(&server, "/streamed", 5000).await,
            Err(FetchError::TooLarge { limit: 5000 })
        );
        assert_eq!(
            fetch(&server, "/streamed", 8192).await.unwrap().bytes.len(),
            8192
        );
    }

    #[tokio::test]
    async fn classifies_statuses_for_retrying() {
        let server = media_server().await;
        assert_eq!(
            fetch(&server, "/gone", 10).await,
            Err(FetchError::Permanent("HTTP 404".into()))
        );
        assert_eq!(
            fetch(&server, "/busy", 10).await,
            Err(FetchError::Transient("HTTP 503".into()))
        );
        assert_eq!(
            fetch(&server, "/slow-down", 10).await,
            Err(FetchError::Transient("HTTP 429".into()))
        );
    }

    fn x_credentials() -> XMediaCredentials {
        let s = |v: &str| SecretString::from(v.to_string());
        XMediaCredentials {
            consumer_key: s("ck"),
            consumer_secret: s("cs"),
            access_token: s("at"),
            access_secret: s("as"),
        }
    }

    #[tokio::test]
    async fn signs_x_direct_message_media_with_the_accounts_credentials() {
        let server = media_server().await;
        let url = format!("http://{}/dm-media.jpg?size=large", server.addr);
        let mut signing = fetcher(&server).with_x_credentials(Some(x_credentials()));
        signing.x_signed_hosts = vec!["127.0.0.1".into()];
        let got = signing
            .fetch(ChannelKind::Twitter, &url, 1024)
            .await
            .unwrap();
        assert_eq!(got.bytes, b"dm");
        // Only X's media is signed: another channel's download carries no credentials.
        assert_eq!(
            signing.fetch(ChannelKind::Facebook, &url, 1024).await,
            Err(FetchError::Permanent("HTTP 401".into()))
        );
        // Without credentials X answers 401: the download is marked, not retried.
        assert_eq!(
            fetcher(&server)
                .fetch(ChannelKind::Twitter, &url, 1024)
                .await,
            Err(FetchError::Permanent("HTTP 401".into()))
        );
        assert!(!format!("{:?}", x_credentials()).contains("cs"));
    }

    #[test]
    fn settings_default_sanely_and_name_a_bad_variable() {
        let none = MediaSettings::from_lookup(|_| None).unwrap();
        assert_eq!(none.limits, MediaLimits::default());
        assert!(none.allow_private.is_empty());
        let set = MediaSettings::from_lookup(|name| match name {
            "CROSSDESK_MEDIA_MAX_FILE_BYTES" => Some("1000".into()),
            "CROSSDESK_MEDIA_ALLOW_PRIVATE" => Some("127.0.0.1:9000, [::1]:80".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(set.limits.max_file_bytes, 1000);
        assert_eq!(set.allow_private.len(), 2);
        let bad = MediaSettings::from_lookup(|name| {
            (name == "CROSSDESK_MEDIA_ALLOW_PRIVATE").then(|| "localhost".into())
        });
        assert_eq!(bad.unwrap_err().name, "CROSSDESK_MEDIA_ALLOW_PRIVATE");
        let zero = MediaSettings::from_lookup(|name| {
            (name == "CROSSDESK_MEDIA_MAX_MESSAGE_BYTES").then(|| "0".into())
        });
        assert_eq!(zero.unwrap_err().name, "CROSSDESK_MEDIA_MAX_MESSAGE_BYTES");
    }

    #[test]
    fn tells_public_from_private_addresses() {
        let public = [
            "8.8.8.8",
            "157.240.1.35",
            "2a03:2880:f10d:83:face:b00c:0:25de",
        ];
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::a00:1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
        for ip in private {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
    }
}
