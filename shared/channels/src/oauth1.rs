//! OAuth 1.0a request signing (RFC 5849, `HMAC-SHA1`), as X requires for user-context calls.
//!
//! The signature covers the method, the base URL (scheme and host lower-cased, default port
//! dropped, no query), and every parameter: the URL's query pairs, the form-encoded body
//! parameters passed in `params`, and the `oauth_*` parameters. Keys and values are
//! percent-encoded with RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~` kept, every other UTF-8
//! byte as `%XX`), sorted by encoded key then encoded value, and joined with `&`. A JSON body is
//! not a parameter and is not signed.
//!
//! The signing key is `<encoded consumer secret>&<encoded token secret>`; the signature is the
//! base64 HMAC-SHA1 of the base string under it.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distr::Alphanumeric;
use rand::Rng;
use sha1::Sha1;
use url::Url;

/// The only signature method Crossdesk uses.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// The protocol version sent in `oauth_version`.
pub const VERSION: &str = "1.0";
/// The length of generated nonces.
pub const NONCE_LEN: usize = 32;

/// The four credentials of a user-context request: the app's consumer key and secret and the
/// user's access token and secret. `Debug` never shows the secrets.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The app's consumer (API) key.
    pub consumer_key: &'a str,
    /// The app's consumer (API) secret.
    pub consumer_secret: &'a str,
    /// The user's access token.
    pub token: &'a str,
    /// The user's access token secret.
    pub token_secret: &'a str,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"[redacted]")
            .field("token", &self.token)
            .field("token_secret", &"[redacted]")
            .finish()
    }
}

/// Percent-encodes per RFC 3986 §2.1 with only the unreserved characters left as they are
/// (RFC 5849 §3.6): space is `%20`, `~` is kept, `*` is `%2A`, UTF-8 bytes are encoded one by one.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The base string URI (RFC 5849 §3.4.1.2): scheme and host lower-case, the port only when it
/// is not the scheme's default, the path, no query or fragment.
pub fn base_string_uri(url: &Url) -> String {
    let mut uri = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    // `Url::port` is `None` for the scheme's default port.
    if let Some(port) = url.port() {
        uri.push_str(&format!(":{port}"));
    }
    uri.push_str(url.path());
    uri
}

/// The signature base string: `METHOD&<encoded base URI>&<encoded normalized parameters>`, the
/// parameters being the URL's query pairs plus `params` (which must include the `oauth_*` ones,
/// without `oauth_signature`).
pub fn signature_base_string(method: &str, url: &Url, params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (percent_encode(&k), percent_encode(&v)))
        .chain(
            params
                .iter()
                .map(|(k, v)| (percent_encode(k), percent_encode(v))),
        )
        .collect();
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(&base_string_uri(url)),
        percent_encode(&normalized)
    )
}

/// The base64 `HMAC-SHA1` signature of a base string under
/// `<encoded consumer secret>&<encoded token secret>`.
pub fn signature(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    );
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(base_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization: OAuth …` header value for a request, with the given nonce and timestamp
/// (seconds since the epoch). `url` may carry a query, whose pairs are signed; `params` are the
/// form-encoded body parameters, if any (a JSON body has none).
pub fn authorization_header(
    method: &str,
    url: &Url,
    params: &[(&str, &str)],
    credentials: &Credentials<'_>,
    nonce: &str,
    timestamp: u64,
) -> String {
    let timestamp = timestamp.to_string();
    let oauth: [(&str, &str); 6] = [
        ("oauth_consumer_key", credentials.consumer_key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", SIGNATURE_METHOD),
        ("oauth_timestamp", &timestamp),
        ("oauth_token", credentials.token),
        ("oauth_version", VERSION),
    ];
    let signed: Vec<(&str, &str)> = params.iter().copied().chain(oauth).collect();
    let base = signature_base_string(method, url, &signed);
    let signature = signature(&base, credentials.consumer_secret, credentials.token_secret);

    let mut fields: Vec<(&str, &str)> = oauth.to_vec();
    fields.push(("oauth_signature", &signature));
    fields.sort();
    let fields = fields
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("OAuth {fields}")
}

/// A fresh nonce: 32 random ASCII letters and digits.
pub fn generate_nonce() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(NONCE_LEN)
        .map(char::from)
        .collect()
}

/// [`authorization_header`] with a fresh nonce and the current time as timestamp.
pub fn sign_now(
    method: &str,
    url: &Url,
    params: &[(&str, &str)],
    credentials: &Credentials<'_>,
) -> String {
    let timestamp = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    authorization_header(
        method,
        url,
        params,
        credentials,
        &generate_nonce(),
        timestamp,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // X's worked example ("Creating a signature" and "Authorizing a request", docs.x.com).
    const CONSUMER_KEY: &str = "xvz1evFS4wEEPTGEFPHBog";
    const CONSUMER_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
    const TOKEN: &str = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb";
    const TOKEN_SECRET: &str = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE";
    const NONCE: &str = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg";
    const TIMESTAMP: u64 = 1318622958;
    const STATUS: &str = "Hello Ladies + Gentlemen, a signed OAuth request!";
    // The page now shows `api.x.com` as the host, but its published signature was computed over
    // `api.twitter.com` (with `api.x.com` the same inputs sign to `Ls93hJiZbQ3akF3HF3x1Bz8/zU4=`).
    const URL: &str = "https://api.twitter.com/1.1/statuses/update.json?include_entities=true";
    const BASE_STRING: &str = "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521";
    const SIGNATURE: &str = "hCtSmYh+iHYCEqBWrE7C7hYmtUk=";

    fn credentials() -> Credentials<'static> {
        Credentials {
            consumer_key: CONSUMER_KEY,
            consumer_secret: CONSUMER_SECRET,
            token: TOKEN,
            token_secret: TOKEN_SECRET,
        }
    }

    #[test]
    fn reproduces_x_worked_example_base_string_and_signature() {
        let url = Url::parse(URL).unwrap();
        let params = [
            ("status", STATUS),
            ("oauth_consumer_key", CONSUMER_KEY),
            ("oauth_nonce", NONCE),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            ("oauth_token", TOKEN),
            ("oauth_version", "1.0"),
        ];
        let base = signature_base_string("POST", &url, &params);
        assert_eq!(base, BASE_STRING);
        assert_eq!(signature(&base, CONSUMER_SECRET, TOKEN_SECRET), SIGNATURE);
    }

    #[test]
    fn reproduces_x_worked_example_header() {
        let url = Url::parse(URL).unwrap();
        let header = authorization_header(
            "POST",
            &url,
            &[("status", STATUS)],
            &credentials(),
            NONCE,
            TIMESTAMP,
        );
        assert_eq!(
            header,
            "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", \
             oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
             oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\", \
             oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"1318622958\", \
             oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", \
             oauth_version=\"1.0\""
        );
    }

    #[test]
    fn query_in_url_and_explicit_params_sign_the_same() {
        let with_query = Url::parse(URL).unwrap();
        let without = Url::parse("https://api.twitter.com/1.1/statuses/update.json").unwrap();
        let a = authorization_header(
            "POST",
            &with_query,
            &[("status", STATUS)],
            &credentials(),
            NONCE,
            TIMESTAMP,
        );
        let b = authorization_header(
            "post",
            &without,
            &[("status", STATUS), ("include_entities", "true")],
            &credentials(),
            NONCE,
            TIMESTAMP,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn percent_encodes_per_rfc_3986_unreserved_set() {
        assert_eq!(
            percent_encode("Ladies + Gentlemen"),
            "Ladies%20%2B%20Gentlemen"
        );
        assert_eq!(
            percent_encode("An encoded string!"),
            "An%20encoded%20string%21"
        );
        assert_eq!(
            percent_encode("Dogs, Cats & Mice"),
            "Dogs%2C%20Cats%20%26%20Mice"
        );
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("/?=:"), "%2F%3F%3D%3A");
        assert_eq!(percent_encode("%"), "%25");
        assert_eq!(percent_encode("☃"), "%E2%98%83");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn base_uri_lowercases_and_drops_default_port_and_query() {
        let url = Url::parse("HTTPS://API.X.com:443/2/tweets?x=1#frag").unwrap();
        assert_eq!(base_string_uri(&url), "https://api.x.com/2/tweets");
        let url = Url::parse("http://127.0.0.1:8080/2/tweets").unwrap();
        assert_eq!(base_string_uri(&url), "http://127.0.0.1:8080/2/tweets");
        let url = Url::parse("http://example.com:80/r%20v/X?id=123").unwrap();
        assert_eq!(base_string_uri(&url), "http://example.com/r%20v/X");
    }

    #[test]
    fn sorts_parameters_by_encoded_key_then_value() {
        // RFC 5849 §3.4.1.3.2's example, including a repeated name and an empty value.
        let url = Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        let params = [
            ("c2", ""),
            ("a3", "2 q"),
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ];
        let base = signature_base_string("POST", &url, &params);
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D\
             %253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce\
             %3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_\
             token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn signs_utf8_parameters_byte_by_byte() {
        let url = Url::parse("https://api.x.com/2/users/by").unwrap();
        let base = signature_base_string("GET", &url, &[("q", "café ☕")]);
        assert!(
            base.ends_with("&q%3Dcaf%25C3%25A9%2520%25E2%2598%2595"),
            "{base}"
        );
    }

    #[test]
    fn generated_nonces_are_32_alphanumerics_and_differ() {
        let a = generate_nonce();
        let b = generate_nonce();
        assert_eq!(a.len(), NONCE_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn sign_now_carries_a_fresh_nonce_and_current_timestamp() {
        let url = Url::parse("https://api.x.com/2/tweets").unwrap();
        let header = sign_now("POST", &url, &[], &credentials());
        let now = chrono::Utc::now().timestamp();
        let ts: i64 = header
            .split("oauth_timestamp=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|t| t.parse().ok())
            .unwrap();
        assert!((now - ts).abs() <= 5);
        assert_ne!(header, sign_now("POST", &url, &[], &credentials()));
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", credentials());
        assert!(!shown.contains(CONSUMER_SECRET));
        assert!(!shown.contains(TOKEN_SECRET));
    }
}
