//! A fake platform API for the end-to-end tests: an HTTP server on 127.0.0.1 that records
//! every request exactly as the local stack sent it and answers from a script.
//!
//! Included by the test files that need it (`#[path = "common/fake_platform.rs"] mod …`); not
//! every file reads every part of a request.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// One request the fake platform received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, `GET`, …
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A fake platform API: records every request and answers from a script (the last answer
/// repeats).
#[derive(Clone)]
pub struct FakePlatform {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    answers: Arc<Mutex<Vec<(u16, Value)>>>,
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub base: String,
}

impl FakePlatform {
    /// Starts the fake, answering with `answers` in turn (the last one repeats).
    pub async fn start(answers: Vec<(u16, Value)>) -> FakePlatform {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakePlatform {
            recorded: Arc::default(),
            answers: Arc::new(Mutex::new(answers)),
            base: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = Router::new().fallback(record).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

async fn record(State(fake): State<FakePlatform>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    fake.recorded.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    });
    let (status, body) = {
        let mut answers = fake.answers.lock().unwrap();
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        }
    };
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}
