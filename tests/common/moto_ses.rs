//! The mail moto's SES sent, read through the `/crossdesk/ses/sent` route of
//! `scripts/moto-server.py` (moto's own `/moto-api/data.json` serializes all of moto's state,
//! which takes minutes once the tests have filled it). One helper for every test crate that
//! sends mail through SES: `shared/aws` and `shared/lambda` tests include this file by `#[path]`.

use serde_json::Value;

/// The mail moto's SES sent, in sending order, or only the mail with SES message id `id`; each as
/// moto keeps it: `kind` `"RawMessage"` (`id`, `source`, `destinations`, `raw_data`) or
/// `"Message"` (`id`, `source`, `destinations.ToAddresses`, `subject`, `body`).
pub async fn ses_sent(id: Option<&str>) -> Vec<Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run with moto");
    let mut url = reqwest::Url::parse(&format!("{endpoint}/crossdesk/ses/sent"))
        .unwrap_or_else(|e| panic!("AWS_ENDPOINT_URL {endpoint}: {e}"));
    if let Some(id) = id {
        url.query_pairs_mut().append_pair("id", id);
    }
    let answer = reqwest::get(url.clone())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(
        answer.status().is_success(),
        "{url}: {} (is moto started by scripts/moto-server.py?)",
        answer.status()
    );
    answer.json().await.expect("a JSON array of sent mail")
}
