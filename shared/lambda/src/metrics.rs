//! Metrics as CloudWatch embedded metric format (EMF) log lines: a Lambda function prints one
//! JSON object on stdout, and CloudWatch Logs turns it into a metric without an API call.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::io::Write;

use chrono::{DateTime, Utc};
use crossdesk_channels::SignatureFailure;
use crossdesk_http::SignatureFailureMetric;
use serde_json::json;

/// The CloudWatch namespace of Crossdesk's own metrics.
pub const NAMESPACE: &str = "Crossdesk";
/// Requests accepted in signature report mode although their signature failed.
pub const SIGNATURE_FAILURES: &str = "CrossdeskSignatureFailures";

/// The EMF line counting one failed signature on `channel`: the metric per channel (dimension
/// `channel`) and in total (no dimension, what the alarm watches). `reason` is a plain
/// property (searchable in Logs Insights), never a dimension.
pub fn signature_failure_line(
    channel: &str,
    failure: SignatureFailure,
    at: DateTime<Utc>,
) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["channel"], []],
                "Metrics": [{"Name": SIGNATURE_FAILURES, "Unit": "Count"}],
            }],
        },
        "channel": channel,
        "reason": failure.code(),
        SIGNATURE_FAILURES: 1,
    })
    .to_string()
}

/// Counts failed signatures as the `CrossdeskSignatureFailures` metric, one EMF line on stdout
/// per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmfSignatureFailures;

impl SignatureFailureMetric for EmfSignatureFailures {
    fn record(&self, channel: &str, failure: SignatureFailure) {
        let line = signature_failure_line(channel, failure, Utc::now());
        // One write of the whole line, so it never interleaves with a log line.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(format!("{line}\n").as_bytes());
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_line_is_an_emf_document_with_the_metric_per_channel_and_in_total() {
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let line = signature_failure_line("chat", SignatureFailure::Mismatch, at);
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_000_000_000_i64);
        assert_eq!(directive["Namespace"], "Crossdesk");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["channel"], []])
        );
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "CrossdeskSignatureFailures", "Unit": "Count"}])
        );
        // Every dimension and metric named in the directive is a member of the root.
        assert_eq!(doc["channel"], "chat");
        assert_eq!(doc["CrossdeskSignatureFailures"], 1);
        assert_eq!(doc["reason"], "mismatch");
    }
}
