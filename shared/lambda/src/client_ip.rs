//! The caller's address behind API Gateway: `requestContext.http.sourceIp`, handed to the chat
//! API (its per-address rate limit) as [`ClientIp`].

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use crossdesk_http::ClientIp;
use lambda_http::request::RequestContext;

/// Sets [`ClientIp`] from the API Gateway (HTTP API) request context, when it has one.
pub async fn from_request_context(mut request: Request, next: Next) -> Response {
    let ip = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.trim().parse().ok()),
        _ => None,
    };
    if let Some(ip) = ip {
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use axum::routing::get;
    use axum::Router;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use tower::ServiceExt;

    #[tokio::test]
    async fn reads_the_source_ip_of_the_http_api_context() {
        let router = Router::new()
            .route(
                "/",
                get(|request: Request| async move {
                    format!("{:?}", request.extensions().get::<ClientIp>())
                }),
            )
            .layer(axum::middleware::from_fn(from_request_context));
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some("203.0.113.7".into());
        let mut request = HttpRequest::get("/").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV2(ctx));
        let answer = router.clone().oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"Some(ClientIp(203.0.113.7))");
        let plain = router
            .oneshot(HttpRequest::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(plain.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"None");
    }
}
