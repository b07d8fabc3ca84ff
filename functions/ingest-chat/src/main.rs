//! `ingest-chat`: the chat webhook behind API Gateway (handshake, verify, normalize, archive,
//! queue on SQS, acknowledge) and the website widget's public chat API (`/chat/api/…`).

use crossdesk_lambda::deploy::Deployment;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    lambda_http::run(deployment.chat_router()?).await
}
