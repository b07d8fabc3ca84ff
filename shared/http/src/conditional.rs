//! Conditional GETs for polling clients (the agent console): a strong `ETag` over the JSON
//! body and `304 Not Modified` when `If-None-Match` names it; and `Cache-Control: no-store` on
//! API answers.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The strong entity tag of a body: a quoted SHA-256 prefix.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether an `If-None-Match` header names `etag` (or is `*`). Weak tags compare by their
/// opaque part, as RFC 9110 asks for `If-None-Match`.
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// `value` as a JSON answer with its `ETag`, or `304` with an empty body when the request's
/// `If-None-Match` already names it.
pub fn json_with_etag<T: Serialize>(request: &HeaderMap, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::unavailable(format!("cannot encode the answer: {e}")))?;
    let etag = etag_of(&body);
    let tag = HeaderValue::from_str(&etag).expect("an etag is plain ASCII");
    if matches(request, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, tag),
        ],
        Body::from(body),
    )
        .into_response())
}

/// Adds `Cache-Control: no-store` to an answer that has no cache policy of its own.
pub async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_if_none_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn answers_the_body_with_a_strong_etag_of_its_bytes() {
        let value = json!({"tickets": []});
        let response = json_with_etag(&HeaderMap::new(), &value).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let etag = response.headers()[header::ETAG].to_str().unwrap();
        assert_eq!(etag, etag_of(br#"{"tickets":[]}"#));
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34);
    }

    #[test]
    fn answers_304_when_if_none_match_names_the_etag() {
        let value = json!({"tickets": [1]});
        let etag = etag_of(&serde_json::to_vec(&value).unwrap());
        for header in [
            etag.clone(),
            format!("\"other\", {etag}"),
            format!("W/{etag}"),
            "*".into(),
        ] {
            let response = json_with_etag(&with_if_none_match(&header), &value).unwrap();
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{header}");
            assert_eq!(response.headers()[header::ETAG], etag.as_str());
        }
        let changed = json_with_etag(&with_if_none_match("\"stale\""), &value).unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn no_store_keeps_an_answer_s_own_cache_policy() {
        let plain = no_store(StatusCode::OK.into_response()).await;
        assert_eq!(plain.headers()[header::CACHE_CONTROL], "no-store");
        let own =
            no_store(([(header::CACHE_CONTROL, "private, max-age=60")], "x").into_response()).await;
        assert_eq!(own.headers()[header::CACHE_CONTROL], "private, max-age=60");
    }
}
