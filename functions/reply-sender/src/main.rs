//! `reply-sender`: drains the outbound SQS FIFO queue (grouped by ticket), delivering each
//! agent reply through its channel's API exactly once, and recording sent/failed/unknown.

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::sqs::deliver_batch;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    let (decoder, delivery) = deployment.reply_sender(|name| std::env::var(name).ok())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let (decoder, delivery) = (decoder.clone(), delivery.clone());
        async move {
            Ok::<_, lambda_runtime::Error>(
                deliver_batch(event.payload, decoder.as_ref(), &delivery).await,
            )
        }
    }))
    .await
}
