//! The load generator behind `crossdesk-load` (and `bench/load`): signed chat webhooks at a fixed
//! rate to a running local stack, open loop (a request's latency counts from when it was due,
//! so a stack that falls behind cannot hide it), then the time until every accepted message is
//! stored. It stops by itself and only ever sends to a loopback address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::samples::{self, SigningSecrets};

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The stack's base URL (`http://127.0.0.1:<port>`).
    pub base: String,
    /// Webhooks per second.
    pub rate: u32,
    /// How long to send.
    pub duration: Duration,
    /// The most requests in flight at once.
    pub concurrency: usize,
    /// Distinct chat sessions the messages are spread over (one ticket each).
    pub sessions: u32,
}

/// Why a load run cannot start or finish.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The target is not a loopback address.
    #[error("refusing to send load to {0}: only 127.0.0.1 / ::1 / localhost are allowed")]
    NotLoopback(String),
    /// The plan is unusable.
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// The stack could not be asked how much it stored.
    #[error("cannot read the stack's tickets: {0}")]
    Api(String),
}

/// One request's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was due, from the start of the run.
    pub due: Duration,
    /// From when it was due to its answer (queueing for a free connection included).
    pub latency: Duration,
    /// The HTTP status (0 for a transport error).
    pub status: u16,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Requests sent.
    pub sent: usize,
    /// Answered 200.
    pub accepted: usize,
    /// Requests sent per second of sending.
    pub offered_rate: f64,
    /// Acknowledgement latency percentiles.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
    /// From the first request to the last accepted message stored, if all were stored.
    pub stored_after: Option<Duration>,
}

impl Summary {
    /// Accepted messages stored per second, end to end (request to stored ticket message).
    pub fn stored_rate(&self) -> Option<f64> {
        self.stored_after
            .map(|t| self.accepted as f64 / t.as_secs_f64().max(f64::EPSILON))
    }
}

/// Refuses any target but a loopback address.
pub fn check_loopback(base: &str) -> Result<(), LoadError> {
    let url = url::Url::parse(base).map_err(|e| LoadError::NotLoopback(format!("{base} ({e})")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if loopback && url.scheme() == "http" {
        Ok(())
    } else {
        Err(LoadError::NotLoopback(base.to_string()))
    }
}

/// The `n`th chat webhook of a run: a distinct message in one of `sessions` sessions.
pub fn chat_webhook(run: &str, n: u64, sessions: u32) -> Vec<u8> {
    let session = n % u64::from(sessions.max(1));
    serde_json::to_vec(&json!({
        "session_id": format!("load_{run}_{session}"),
        "visitor": {"id": format!("visitor_{run}_{session}")},
        "message": {
            "id": format!("load_{run}_{n}"),
            "text": format!("Load test message {n}: where is my order?"),
            "sent_at": Utc::now().to_rfc3339(),
        }
    }))
    .expect("JSON")
}

/// Sends the plan's webhooks and returns each request's outcome, in the order they were due.
pub async fn send(
    plan: &LoadPlan,
    secrets: &SigningSecrets,
    run: &str,
) -> Result<Vec<Sample>, LoadError> {
    check_loopback(&plan.base)?;
    if plan.rate == 0 || plan.concurrency == 0 || plan.duration.is_zero() {
        return Err(LoadError::InvalidPlan(
            "rate, concurrency and duration must be above zero".into(),
        ));
    }
    if secrets.chat_secret.is_none() {
        return Err(LoadError::InvalidPlan(
            "CROSSDESK_CHAT_SECRET is not set".into(),
        ));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| LoadError::InvalidPlan(e.to_string()))?;
    let total = (f64::from(plan.rate) * plan.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(plan.rate));
    let slots = Arc::new(Semaphore::new(plan.concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = interval.mul_f64(n as f64);
        tokio::time::sleep_until((start + due).into()).await;
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let request = samples::sign(
            "chat",
            chat_webhook(run, n, plan.sessions),
            secrets,
            Utc::now(),
        )
        .map_err(|e| LoadError::InvalidPlan(e.to_string()))?;
        let client = client.clone();
        let base = plan.base.clone();
        tasks.push(tokio::spawn(async move {
            let status = match samples::post(&client, &base, &request).await {
                Ok((status, _)) => status,
                Err(_) => 0,
            };
            drop(permit);
            Sample {
                due,
                latency: start.elapsed().saturating_sub(due),
                status,
            }
        }));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        samples.push(task.await.expect("request task"));
    }
    Ok(samples)
}

/// How many messages the stack holds in all (the sum over its tickets).
pub async fn stored_messages(base: &str, agent_token: &str) -> Result<u64, LoadError> {
    let body: Value = reqwest::Client::new()
        .get(format!("{base}/api/tickets?limit=200"))
        .bearer_auth(agent_token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| LoadError::Api(e.to_string()))?
        .json()
        .await
        .map_err(|e| LoadError::Api(e.to_string()))?;
    Ok(body["tickets"]
        .as_array()
        .map(|tickets| {
            tickets
                .iter()
                .filter_map(|t| t["message_count"].as_u64())
                .sum()
        })
        .unwrap_or(0))
}

/// Summarizes a run; `stored_after` is measured by the caller.
pub fn summarize(
    samples: &[Sample],
    duration: Duration,
    stored_after: Option<Duration>,
) -> Summary {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    Summary {
        sent: samples.len(),
        accepted: samples.iter().filter(|s| s.status == 200).count(),
        offered_rate: samples.len() as f64 / duration.as_secs_f64().max(f64::EPSILON),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        stored_after,
    }
}

/// The `q` quantile (nearest rank) of sorted values.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An SVG plot of acknowledgement latency over the run: p50, p99 and max per `bucket`.
pub fn latency_svg(samples: &[Sample], bucket: Duration, title: &str) -> String {
    let buckets = samples
        .iter()
        .map(|s| (s.due.as_secs_f64() / bucket.as_secs_f64()) as usize)
        .max()
        .map_or(0, |b| b + 1);
    let mut per: Vec<Vec<Duration>> = vec![Vec::new(); buckets];
    for s in samples {
        per[(s.due.as_secs_f64() / bucket.as_secs_f64()) as usize].push(s.latency);
    }
    let series: Vec<[f64; 3]> = per
        .iter_mut()
        .map(|l| {
            l.sort();
            [0.5, 0.99, 1.0].map(|q| percentile(l, q).as_secs_f64() * 1000.0)
        })
        .collect();
    let (w, h, left, bottom, top, right) = (800.0, 360.0, 60.0, 40.0, 40.0, 20.0);
    let y_max = series
        .iter()
        .map(|v| v[2])
        .fold(1.0_f64, f64::max)
        .max(10.0);
    let x = |i: usize| left + (w - left - right) * (i as f64 + 0.5) / buckets.max(1) as f64;
    let y = |ms: f64| h - bottom - (h - bottom - top) * ms / y_max;
    let line = |k: usize, color: &str, label: &str, row: usize| {
        let points: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(v[k])))
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\" font-size=\"12\">{label}</text>",
            points.join(" "),
            w - right - 110.0,
            top + 14.0 * row as f64
        )
    };
    let seconds = buckets as f64 * bucket.as_secs_f64();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{left}\" y=\"20\" font-size=\"14\">{}</text>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        escape(title),
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for tick in 0..=4 {
        let ms = y_max * f64::from(tick) / 4.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{ms:.1} ms</text>",
            left - 4.0,
            y(ms) + 4.0
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{left}\" y=\"{}\" font-size=\"11\">0 s</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{seconds:.0} s</text>",
        h - bottom + 16.0,
        w - right,
        h - bottom + 16.0
    ));
    svg.push_str(&line(2, "#bbbbbb", "max", 0));
    svg.push_str(&line(1, "#d62728", "p99", 1));
    svg.push_str(&line(0, "#1f77b4", "p50", 2));
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
            "http://127.0.0.1.nip.io",
            "not a url",
        ] {
            assert!(check_loopback(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&ms, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn summarizes_and_plots_a_run() {
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                due: Duration::from_millis(i * 10),
                latency: Duration::from_micros(500 + i * 10),
                status: if i == 7 { 0 } else { 200 },
            })
            .collect();
        let summary = summarize(
            &samples,
            Duration::from_secs(2),
            Some(Duration::from_secs(4)),
        );
        assert_eq!(summary.sent, 200);
        assert_eq!(summary.accepted, 199);
        assert_eq!(summary.offered_rate, 100.0);
        assert_eq!(summary.max, Duration::from_micros(2490));
        assert_eq!(summary.stored_rate(), Some(49.75));
        let svg = latency_svg(&samples, Duration::from_millis(500), "a <run>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("a &lt;run&gt;"));
    }

    #[test]
    fn each_webhook_is_a_distinct_message_in_a_few_sessions() {
        let a: Value = serde_json::from_slice(&chat_webhook("r", 1, 10)).unwrap();
        let b: Value = serde_json::from_slice(&chat_webhook("r", 11, 10)).unwrap();
        assert_eq!(a["session_id"], b["session_id"]);
        assert_ne!(a["message"]["id"], b["message"]["id"]);
    }
}
