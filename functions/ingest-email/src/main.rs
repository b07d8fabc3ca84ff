//! `ingest-email`: invoked by the SES receipt rule after its S3 action; reads the raw mail from
//! S3, drops spam and viruses, normalizes and queues the rest.

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::ses::ingest_mail;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    let mail = deployment.mail_ingest();
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let mail = mail.clone();
        async move {
            let report = ingest_mail(event.payload, mail.source.as_ref(), mail.archive.as_ref(), mail.queue.as_ref(), mail.clock.now()).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({"queued": report.queued, "dropped": report.dropped, "unparseable": report.unparseable}))
        }
    }))
    .await
}
