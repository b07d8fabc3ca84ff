//! The agent console and the website chat widget: static files from `web/`, embedded at
//! compile time, served by the local stack and (in AWS) by the agent-api function.
//!
//! - `GET /console` and `/console/` (and any extension-less path below it: the console's own
//!   routes) → `web/console/index.html`, which refers to its files by absolute path:
//!   `/console/app.js`, `/console/app.css`
//! - `GET /console/config.json` → how the console signs in ([`ConsoleAuth`])
//! - `GET /widget.js` → `web/widget.js` (CORS-open, cached 5 minutes)
//! - `GET /demo` and `/demo/` → `web/demo/index.html`, a page with the widget

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// The console's Content-Security-Policy: its own files only, never framed.
pub const CONSOLE_CSP: &str =
    "default-src 'self'; connect-src 'self'; img-src 'self' data: https:; \
     style-src 'self'; script-src 'self'; frame-ancestors 'none'";
/// The demo page's: the same strict policy a careful company page has, so the widget is shown
/// working under it.
pub const DEMO_CSP: &str = CONSOLE_CSP;

/// One embedded file.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $path)),
            content_type: $type,
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The console's files, by their path under `/console/`.
fn console_asset(name: &str) -> Option<Asset> {
    Some(match name {
        "" | "index.html" => asset!("console/index.html", HTML),
        "app.js" => asset!("console/app.js", JS),
        "app.css" => asset!("console/app.css", CSS),
        _ => return None,
    })
}

/// How the console signs agents in (`GET /console/config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "auth", rename_all = "lowercase")]
pub enum ConsoleAuth {
    /// The agent types the agent token (local stack).
    Token,
    /// OpenID Connect, authorization code with PKCE (Cognito's hosted UI in AWS).
    Oidc {
        /// The issuer (`https://cognito-idp.<region>.amazonaws.com/<pool id>`).
        issuer: String,
        /// The console's public app client.
        client_id: String,
        /// The authorization endpoint.
        authorize_url: String,
        /// The token endpoint.
        token_url: String,
        /// Where the provider sends the agent back (the console's URL).
        redirect_uri: String,
    },
}

impl ConsoleAuth {
    /// OIDC for the console, read through `lookup`, when configured: a Cognito user pool's
    /// hosted UI (`CROSSDESK_CONSOLE_COGNITO_POOL_ID`, `_CLIENT_ID`, `_DOMAIN` (the domain
    /// prefix), `AWS_REGION`, and `CROSSDESK_CONSOLE_URL` as the redirect URI, which the
    /// template sets), else `None`.
    pub fn oidc_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let pool = get("CROSSDESK_CONSOLE_COGNITO_POOL_ID")?;
        let client_id = get("CROSSDESK_CONSOLE_COGNITO_CLIENT_ID")?;
        let domain = get("CROSSDESK_CONSOLE_COGNITO_DOMAIN")?;
        let region = get("AWS_REGION")?;
        let redirect_uri = get("CROSSDESK_CONSOLE_URL")?;
        let hosted = format!("https://{domain}.auth.{region}.amazoncognito.com/oauth2");
        Some(ConsoleAuth::Oidc {
            issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool}"),
            client_id,
            authorize_url: format!("{hosted}/authorize"),
            token_url: format!("{hosted}/token"),
            redirect_uri,
        })
    }
}

/// The console, widget and demo page routes.
pub fn web_router(auth: ConsoleAuth) -> Router {
    Router::new()
        // Both forms serve the page (API Gateway routes `/console`; the page refers to its
        // files by absolute paths): no redirect, so the sign-in's `?code=…` stays put.
        .route("/console", get(console_page))
        .route("/console/", get(console_page))
        .route("/console/config.json", get(config))
        .route("/console/{*path}", get(console_path))
        .route("/widget.js", get(widget))
        .route("/demo", get(demo))
        .route("/demo/", get(demo))
        .route("/demo/demo.css", get(demo_css))
        .with_state(Arc::new(WebState {
            console_csp: console_csp(&auth),
            auth,
        }))
}

struct WebState {
    auth: ConsoleAuth,
    console_csp: HeaderValue,
}

/// The console's CSP: [`CONSOLE_CSP`], plus the token endpoint's origin in `connect-src` when
/// the console signs in with OIDC (the browser posts the code there).
fn console_csp(auth: &ConsoleAuth) -> HeaderValue {
    let origin = match auth {
        ConsoleAuth::Token => None,
        ConsoleAuth::Oidc { token_url, .. } => origin_of(token_url),
    };
    let csp = match origin {
        Some(origin) => CONSOLE_CSP.replacen(
            "connect-src 'self'",
            &format!("connect-src 'self' {origin}"),
            1,
        ),
        None => CONSOLE_CSP.to_string(),
    };
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static(CONSOLE_CSP))
}

/// `scheme://host[:port]` of an http(s) URL; `None` for anything else (nothing unsafe is ever
/// put into the policy).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "https" | "http") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let valid = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    valid.then(|| format!("{scheme}://{authority}"))
}

fn serve(asset: &Asset, csp: Option<HeaderValue>, cache: &'static str) -> Response {
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        asset.bytes,
    )
        .into_response();
    if let Some(csp) = csp {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
        response
            .headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

fn not_found() -> Response {
    crate::error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file").into_response()
}

fn console(state: &WebState, name: &str) -> Response {
    match console_asset(name) {
        Some(asset) => {
            let html = asset.content_type == HTML;
            // The page is revalidated every time (new releases show at once); its files briefly.
            let cache = if html {
                "no-cache"
            } else {
                "public, max-age=300"
            };
            serve(&asset, html.then(|| state.console_csp.clone()), cache)
        }
        None => not_found(),
    }
}

async fn console_page(State(state): State<Arc<WebState>>) -> Response {
    console(&state, "")
}

async fn console_path(State(state): State<Arc<WebState>>, Path(path): Path<String>) -> Response {
    if console_asset(&path).is_some() {
        return console(&state, &path);
    }
    // The console's own routes (`/console/tickets/K3F9Q2XA`) load the page; unknown files 404.
    let last = path.rsplit('/').next().unwrap_or("");
    if last.contains('.') {
        not_found()
    } else {
        console(&state, "")
    }
}

async fn config(State(state): State<Arc<WebState>>) -> Response {
    let mut response = Json(&state.auth).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn widget() -> Response {
    let asset = asset!("widget.js", JS);
    let mut response = serve(&asset, None, "public, max-age=300");
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    response
}

async fn demo() -> Response {
    serve(
        &asset!("demo/index.html", HTML),
        Some(HeaderValue::from_static(DEMO_CSP)),
        "no-cache",
    )
}

async fn demo_css() -> Response {
    serve(&asset!("demo/demo.css", CSS), None, "public, max-age=300")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        web_router(ConsoleAuth::Token)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn serves_the_console_with_its_csp_and_types() {
        let page = get("/console/").await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_TYPE], HTML);
        assert_eq!(page.headers()[header::CONTENT_SECURITY_POLICY], CONSOLE_CSP);
        assert_eq!(page.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            get("/console/app.js").await.headers()[header::CONTENT_TYPE],
            JS
        );
        assert_eq!(
            get("/console/app.css").await.headers()[header::CONTENT_TYPE],
            CSS
        );
        let route = get("/console/tickets/K3F9Q2XA").await;
        assert_eq!(route.headers()[header::CONTENT_TYPE], HTML);
        assert_eq!(
            get("/console/missing.js").await.status(),
            StatusCode::NOT_FOUND
        );
        let back = get("/console?code=abc&state=xyz").await;
        assert_eq!(back.status(), StatusCode::OK);
        assert_eq!(back.headers()[header::CONTENT_TYPE], HTML);
    }

    #[tokio::test]
    async fn the_widget_is_cacheable_and_cors_open() {
        let widget = get("/widget.js").await;
        assert_eq!(widget.status(), StatusCode::OK);
        assert_eq!(widget.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(widget.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            widget.headers()[header::CACHE_CONTROL],
            "public, max-age=300"
        );
        let demo = get("/demo/").await;
        assert_eq!(demo.headers()[header::CONTENT_SECURITY_POLICY], DEMO_CSP);
        let css = get("/demo/demo.css").await;
        assert_eq!(css.status(), StatusCode::OK);
        assert_eq!(css.headers()[header::CONTENT_TYPE], CSS);
    }

    #[tokio::test]
    async fn config_names_the_sign_in() {
        let body = get("/console/config.json").await.into_body();
        let bytes = axum::body::to_bytes(body, 1024).await.unwrap();
        assert_eq!(&bytes[..], br#"{"auth":"token"}"#);
        let env = |name: &str| {
            let value = match name {
                "CROSSDESK_CONSOLE_COGNITO_POOL_ID" => "eu-west-1_AbC",
                "CROSSDESK_CONSOLE_COGNITO_CLIENT_ID" => "client123",
                "CROSSDESK_CONSOLE_COGNITO_DOMAIN" => "crossdesk-abc",
                "AWS_REGION" => "eu-west-1",
                "CROSSDESK_CONSOLE_URL" => "https://api.example.com/console",
                _ => return None,
            };
            Some(value.to_string())
        };
        let json = serde_json::to_value(ConsoleAuth::oidc_from_lookup(env).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "auth": "oidc",
                "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
                "client_id": "client123",
                "authorize_url": "https://crossdesk-abc.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
                "token_url": "https://crossdesk-abc.auth.eu-west-1.amazoncognito.com/oauth2/token",
                "redirect_uri": "https://api.example.com/console"
            })
        );
        assert_eq!(ConsoleAuth::oidc_from_lookup(|_| None), None);

        // With OIDC the console may post the code to the token endpoint's origin, and only that.
        let oidc = ConsoleAuth::oidc_from_lookup(env).unwrap();
        let page = web_router(oidc)
            .oneshot(Request::get("/console/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains(
                "connect-src 'self' https://crossdesk-abc.auth.eu-west-1.amazoncognito.com;"
            ),
            "{csp}"
        );
        assert_eq!(
            origin_of("https://idp.example.com:8443/oauth2/token?x"),
            Some("https://idp.example.com:8443".into())
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://a.example.com;script-src *"), None);
    }
}
