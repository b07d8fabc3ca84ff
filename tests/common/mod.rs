//! Starts the real `crossdesk-local` binary on a free port with a fresh data dir, and talks to it
//! over HTTP, as a newcomer's curl would.

#![allow(dead_code)]

pub mod moto_ses;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossdesk::samples::{self, SignedRequest, SigningSecrets};
use serde_json::Value;

pub const FACEBOOK_APP_SECRET: &str = "test-facebook-app-secret";
pub const FACEBOOK_VERIFY_TOKEN: &str = "test-verify-token";
pub const TWITTER_CONSUMER_SECRET: &str = "test-twitter-consumer-secret";
pub const CHAT_SECRET: &str = "test-chat-secret";
pub const AGENT_TOKEN: &str = "test-agent-token";
pub const EMAIL_THREAD_KEY: &str = "test-email-thread-key-0123456789";

/// The secrets the test stack is started with.
pub fn secrets() -> SigningSecrets {
    SigningSecrets {
        facebook_app_secret: Some(FACEBOOK_APP_SECRET.into()),
        twitter_consumer_secret: Some(TWITTER_CONSUMER_SECRET.into()),
        chat_secret: Some(CHAT_SECRET.into()),
        agent_token: Some(AGENT_TOKEN.into()),
    }
}

/// The adapters a test stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite database (`crossdesk-local`).
    Embedded,
    /// The AWS adapters on moto (`crossdesk-local --aws --create-resources`), with resources
    /// named after the data dir, so a restart on the same dir finds the same table and queues.
    Aws,
}

/// Expands each named `async fn(Backend)` test into one test per backend:
/// `embedded::<name>` and `aws::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Embedded).await
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Aws).await
                }
            )*
        }
    };
}

/// The AWS variables a stack on moto needs, from the test's environment.
fn aws_env() -> Vec<(&'static str, String)> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts moto) or start `scripts/moto` and export it",
    );
    let get = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", get("AWS_ACCESS_KEY_ID", "testing")),
        (
            "AWS_SECRET_ACCESS_KEY",
            get("AWS_SECRET_ACCESS_KEY", "testing"),
        ),
        ("AWS_REGION", get("AWS_REGION", "us-east-1")),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// Verifies a sending domain in the emulator's SES (moto refuses unverified senders, like SES).
pub async fn ses_verify_domain(domain: &str) {
    let _ = aws_env();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    match ses
        .create_email_identity()
        .email_identity(domain)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if format!("{e:?}").contains("AlreadyExists") => {}
        Err(e) => panic!("verifying {domain} in moto: {e:?}"),
    }
}

/// The raw MIME of a mail SES sent, from moto's record of sent mail ([`moto_ses::ses_sent`]).
pub async fn ses_sent_mail(ses_message_id: &str) -> Vec<u8> {
    let sent = moto_ses::ses_sent(Some(ses_message_id)).await;
    let [mail] = sent.as_slice() else {
        panic!("moto recorded not exactly one mail {ses_message_id}: {sent:#?}")
    };
    mail["raw_data"]
        .as_str()
        .expect("raw_data is text")
        .as_bytes()
        .to_vec()
}

/// A resource prefix derived from the data dir: lowercase, short, stable across restarts.
pub fn resource_prefix(data_dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    format!("e2e-{:016x}", hasher.finish())
}

/// A running `crossdesk-local` process.
pub struct Stack {
    child: Child,
    pub backend: Backend,
    pub base: String,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
}

impl Stack {
    /// Starts the stack on a free port with every channel configured.
    pub fn start(backend: Backend, data_dir: &Path) -> Stack {
        Self::start_with(backend, data_dir, &[])
    }

    /// Starts the stack; `unset` names variables to leave out.
    pub fn start_with(backend: Backend, data_dir: &Path, unset: &[&str]) -> Stack {
        Self::start_env(backend, data_dir, unset, &[])
    }

    /// Starts the stack with extra variables (sending settings, …).
    pub fn start_env(
        backend: Backend,
        data_dir: &Path,
        unset: &[&str],
        extra: &[(&str, String)],
    ) -> Stack {
        Self::launch(backend, data_dir, unset, extra, &[], None)
    }

    /// Starts the stack with extra variables and command-line arguments; its log (stdout and
    /// stderr) goes to `log` when given (appended), else stderr to the test's.
    pub fn launch(
        backend: Backend,
        data_dir: &Path,
        unset: &[&str],
        extra: &[(&str, String)],
        args: &[&str],
        log: Option<&Path>,
    ) -> Stack {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossdesk-local"));
        cmd.env_clear();
        cmd.args(args);
        if backend == Backend::Aws {
            cmd.args(["--aws", "--create-resources"]);
            for (k, v) in aws_env() {
                cmd.env(k, v);
            }
            cmd.env("CROSSDESK_RESOURCE_PREFIX", resource_prefix(data_dir));
        }
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CROSSDESK_PORT", "0")
            .env("CROSSDESK_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn");
        for (k, v) in [
            ("CROSSDESK_FACEBOOK_APP_SECRET", FACEBOOK_APP_SECRET),
            ("CROSSDESK_FACEBOOK_VERIFY_TOKEN", FACEBOOK_VERIFY_TOKEN),
            ("CROSSDESK_TWITTER_CONSUMER_SECRET", TWITTER_CONSUMER_SECRET),
            ("CROSSDESK_CHAT_SECRET", CHAT_SECRET),
            ("CROSSDESK_AGENT_TOKEN", AGENT_TOKEN),
            ("CROSSDESK_EMAIL_THREAD_KEY", EMAIL_THREAD_KEY),
        ] {
            if !unset.contains(&k) {
                cmd.env(k, v);
            }
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the log file opens"),
            ),
            None => Stdio::inherit(),
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("crossdesk-local starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("crossdesk-local printed its address before exiting")
                .expect("stdout is readable");
            if let Some(url) = line.strip_prefix("crossdesk-local listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout (where the log lines go) so the child never blocks on a full
        // pipe; into the log file when there is one.
        let mut log = log.map(|path| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .expect("the log file opens")
        });
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(log, "{line}");
                }
            }
        });
        Stack {
            child,
            backend,
            base,
            data_dir: data_dir.to_path_buf(),
            client: reqwest::Client::new(),
        }
    }

    /// Kills the process at once (SIGKILL): no graceful shutdown, like a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Signs a payload for a channel and posts it; returns status and body.
    pub async fn post_signed(&self, channel: &str, body: &[u8]) -> (u16, String) {
        let request = samples::sign(channel, body.to_vec(), &secrets(), chrono::Utc::now())
            .expect("test secrets are set");
        self.post(&request).await
    }

    /// Posts an already-built request.
    pub async fn post(&self, request: &SignedRequest) -> (u16, String) {
        samples::post(&self.client, &self.base, request)
            .await
            .expect("stack answers")
    }

    /// Posts a sample file from `events/<channel>/<name>`.
    pub async fn post_event(&self, channel: &str, name: &str) -> (u16, String) {
        self.post_signed(channel, &event(channel, name)).await
    }

    /// An authenticated agent API GET; returns status and JSON.
    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(AGENT_TOKEN)
            .send()
            .await
            .expect("stack answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// An authenticated agent API call with a JSON body.
    pub async fn api_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(AGENT_TOKEN)
            .json(body)
            .send()
            .await
            .expect("stack answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// All tickets (any status).
    pub async fn tickets(&self) -> Vec<Value> {
        let (status, body) = self.api_get("/api/tickets?limit=200").await;
        assert_eq!(status, 200, "{body}");
        body["tickets"].as_array().cloned().unwrap_or_default()
    }

    /// Total messages over all tickets.
    pub async fn message_count(&self) -> u64 {
        self.tickets()
            .await
            .iter()
            .map(|t| t["message_count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Waits until the writer has stored `n` messages in all (10 s at most; 30 s on AWS, where
    /// messages a killed stack had taken come back after their visibility timeout).
    pub async fn wait_for_messages(&self, n: u64) -> u64 {
        // A ceiling, not a pause. On SQS a batch taken by a killed stack stays invisible for
        // the visibility timeout (20 s) before the restarted stack can take it.
        let wait = match self.backend {
            Backend::Embedded => 10,
            Backend::Aws => 60,
        };
        let deadline = Instant::now() + Duration::from_secs(wait);
        loop {
            let count = self.message_count().await;
            if count >= n || Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One ticket with its messages.
    pub async fn ticket(&self, id: &str) -> Value {
        let (status, body) = self.api_get(&format!("/api/tickets/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The email thread key the test stack signs and checks email references with.
pub fn thread_key() -> crossdesk_core::mail_signature::EmailThreadKey {
    crossdesk_core::mail_signature::EmailThreadKey::new(EMAIL_THREAD_KEY.as_bytes())
        .expect("a key long enough")
}

/// The bytes of `events/<channel>/<name>`.
pub fn event(channel: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(channel)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
