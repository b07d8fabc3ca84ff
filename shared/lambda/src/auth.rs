//! The calling agent, from the claims API Gateway's JWT authorizer verified.

use crossdesk_core::agent::AgentRef;
use crossdesk_http::{AgentAuth, ApiError};
use lambda_http::http::request::Parts;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;

/// Reads the agent from the JWT claims of an API Gateway HTTP API request. The authorizer has
/// already checked signature, issuer, audience and expiry; a request without claims (a route
/// deployed without the authorizer) is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct JwtClaimsAuth;

impl AgentAuth for JwtClaimsAuth {
    fn authenticate(&self, request: &Parts) -> Result<AgentRef, ApiError> {
        let claims = match request.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no verified identity on the request (the route needs the JWT authorizer)",
            )
        };
        let claims = claims.ok_or_else(unauthorized)?;
        let id = claims
            .get("sub")
            .filter(|s| !s.is_empty())
            .ok_or_else(unauthorized)?;
        let name = ["name", "email", "cognito:username", "username"]
            .iter()
            .find_map(|k| claims.get(*k).filter(|v| !v.is_empty()))
            .cloned();
        Ok(AgentRef {
            id: id.clone(),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use std::collections::HashMap;

    fn parts_with(claims: Option<HashMap<String, String>>) -> Parts {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        if let Some(claims) = claims {
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = claims;
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            ctx.authorizer = Some(authorizer);
        }
        let mut request = lambda_http::http::Request::new(());
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV2(ctx));
        request.into_parts().0
    }

    #[test]
    fn reads_the_agent_from_verified_claims() {
        let claims = HashMap::from([
            ("sub".to_string(), "agent-7".to_string()),
            ("email".to_string(), "kim@acme.example".to_string()),
        ]);
        let agent = JwtClaimsAuth
            .authenticate(&parts_with(Some(claims)))
            .unwrap();
        assert_eq!(agent.id, "agent-7");
        assert_eq!(agent.name.as_deref(), Some("kim@acme.example"));
    }

    #[test]
    fn refuses_requests_without_claims() {
        let err = JwtClaimsAuth.authenticate(&parts_with(None)).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        let no_sub = HashMap::from([("email".to_string(), "x@y.z".to_string())]);
        assert!(JwtClaimsAuth
            .authenticate(&parts_with(Some(no_sub)))
            .is_err());
        let bare = lambda_http::http::Request::new(()).into_parts().0;
        assert!(JwtClaimsAuth.authenticate(&bare).is_err());
    }
}
