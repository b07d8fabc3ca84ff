//! `ingest-twitter`: the twitter webhook behind API Gateway (or a function URL): handshake, verify,
//! normalize, archive, queue on SQS, acknowledge.

use crossdesk_lambda::deploy::{Deployment, Webhook};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    lambda_http::run(deployment.webhook_router(Webhook::Twitter)?).await
}
