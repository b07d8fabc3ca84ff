//! `agent-api`: the agent API behind API Gateway's JWT authorizer (list, read, reply, status).

use crossdesk_lambda::deploy::Deployment;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    lambda_http::run(deployment.agent_router()?).await
}
