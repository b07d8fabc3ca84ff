//! `ticket-writer`: drains the inbound SQS FIFO queue, threading each message into its ticket
//! exactly once, reporting partial batch failures.

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::sqs::write_batch;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    let (decoder, writer) = deployment.ticket_writer(|name| std::env::var(name).ok())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let (decoder, writer) = (decoder.clone(), writer.clone());
        async move {
            Ok::<_, lambda_runtime::Error>(
                write_batch(event.payload, decoder.as_ref(), &writer).await,
            )
        }
    }))
    .await
}
