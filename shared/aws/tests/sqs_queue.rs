//! `SqsQueue` and `S3Archive` against moto server over HTTP: FIFO groups and deduplication as
//! SQS applies them, bodies over 256 KiB through S3, the consumer calls, the archive.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (`make test` starts it).

use std::time::Duration;

use crossdesk_aws::sqs::{inbound_dedup_id, MAX_BODY_BYTES};
use crossdesk_aws::{create_resources, sdk_config, AwsConfig, ResourceNames, S3Archive, SqsQueue};
use crossdesk_core::{
    ChannelKind, InboundQueue, MessageId, OutboundJob, OutboundQueue, RawArchive, TicketId,
};
use crossdesk_store_contract::MessageBuilder as M;

async fn resources() -> (aws_config::SdkConfig, AwsConfig) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts moto) or `scripts/moto` and export it"
    );
    let sdk = sdk_config().await;
    let prefix = format!("q-{}", uuid::Uuid::now_v7().simple());
    let config = create_resources(&sdk, &ResourceNames::with_prefix(&prefix))
        .await
        .expect("resources created in moto");
    (sdk, config)
}

fn queue(sdk: &aws_config::SdkConfig, url: &str, bucket: &str) -> SqsQueue {
    SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        url,
        crossdesk_aws::s3::client(sdk),
        bucket,
    )
}

#[tokio::test]
async fn redelivered_messages_are_dropped_by_fifo_deduplication_and_groups_follow_conversations() {
    let (sdk, config) = resources().await;
    let q = queue(&sdk, &config.inbound_queue_url, &config.bucket);
    let first = M::facebook_dm("user-1", "m_1").text("hello").at(10).build();
    let second = M::facebook_dm("user-1", "m_2").text("again").at(11).build();
    let other = M::chat("session-9", "visitor-9", "c_1")
        .text("hi")
        .at(12)
        .build();
    let mut redelivery = first.clone();
    redelivery.id = MessageId::generate();
    InboundQueue::enqueue(&q, &[first.clone(), second.clone(), other.clone()])
        .await
        .unwrap();
    InboundQueue::enqueue(&q, &[redelivery]).await.unwrap();

    let mut received = Vec::new();
    for _ in 0..5 {
        let batch = q
            .receive(10, Duration::from_secs(0), Duration::from_secs(30))
            .await
            .unwrap();
        for r in &batch {
            received.push(q.decode_inbound(&r.body).await.unwrap());
            q.delete(&r.receipt_handle).await.unwrap();
        }
    }
    let mut ids: Vec<_> = received
        .iter()
        .map(|m| m.platform_message_id.clone().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["c_1", "m_1", "m_2"],
        "the redelivery was deduplicated"
    );
    assert_eq!(inbound_dedup_id(&first), "facebook:m_1");
    let edit = M::facebook_dm("user-1", "m_1").edited("hello!").build();
    assert_ne!(
        inbound_dedup_id(&edit),
        inbound_dedup_id(&first),
        "an edit is not a duplicate of the message"
    );
}

#[tokio::test]
async fn a_body_over_the_sqs_limit_travels_through_s3() {
    let (sdk, config) = resources().await;
    let q = queue(&sdk, &config.inbound_queue_url, &config.bucket);
    let big = M::email("alex@example.com", "<big@mail.example.com>")
        .text(&"long mail line\n".repeat(MAX_BODY_BYTES / 10))
        .build();
    assert!(serde_json::to_vec(&big).unwrap().len() > MAX_BODY_BYTES);
    let small = M::chat("s", "v", "c_small").text("small").build();
    InboundQueue::enqueue(&q, &[big.clone(), small.clone()])
        .await
        .unwrap();

    let batch = q
        .receive(10, Duration::from_secs(0), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    let pointer = batch
        .iter()
        .find(|r| r.body.contains("s3_pointer"))
        .expect("the big body is a pointer");
    assert!(pointer.body.len() < 1024, "{}", pointer.body);
    assert_eq!(q.decode_inbound(&pointer.body).await.unwrap(), big);
    let s3 = crossdesk_aws::s3::client(&sdk);
    let objects = s3
        .list_objects_v2()
        .bucket(&config.bucket)
        .prefix("queue/")
        .send()
        .await
        .unwrap();
    assert_eq!(objects.contents().len(), 1);
}

#[tokio::test]
async fn consumers_delete_and_hand_back_messages() {
    let (sdk, config) = resources().await;
    let q = queue(&sdk, &config.outbound_queue_url, &config.bucket);
    let job = OutboundJob {
        ticket_id: TicketId::generate(),
        message_id: MessageId::generate(),
    };
    OutboundQueue::enqueue(&q, &job).await.unwrap();
    let taken = q
        .receive(10, Duration::from_secs(0), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].receive_count, 1);
    assert_eq!(q.decode_outbound(&taken[0].body).await.unwrap(), job);
    // Invisible while taken; back at once when handed back, counted again.
    assert!(q
        .receive(10, Duration::from_secs(0), Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    q.retry_later(&taken[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let again = q
        .receive(10, Duration::from_secs(0), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    q.delete(&again[0].receipt_handle).await.unwrap();
    q.retry_later(&again[0].receipt_handle, Duration::ZERO)
        .await
        .ok();
    assert!(q
        .receive(10, Duration::from_secs(0), Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_archive_keeps_payloads_by_content() {
    let (sdk, config) = resources().await;
    let archive = S3Archive::new(crossdesk_aws::s3::client(&sdk), &config.bucket);
    let body = br#"{"object":"page","entry":[]}"#;
    let raw = archive.put(ChannelKind::Facebook, body).await.unwrap();
    assert_eq!(raw, archive.put(ChannelKind::Facebook, body).await.unwrap());
    assert_eq!(archive.get(&raw).await.unwrap().as_deref(), Some(&body[..]));
    let unknown = crossdesk_core::RawRef::of(b"never stored");
    assert_eq!(archive.get(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn the_events_queue_is_a_standard_queue_with_a_dead_letter_queue() {
    use crossdesk_aws::resources::EVENTS_MAX_RECEIVE_COUNT;
    use crossdesk_core::events::{EventId, EventQueue, EventType, OutgoingEvent};

    let (sdk, config) = resources().await;
    let url = config.events_queue_url.clone().expect("an events queue");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(attributes.get(&A::FifoQueue), None, "a standard queue");
    let redrive: serde_json::Value =
        serde_json::from_str(attributes.get(&A::RedrivePolicy).expect("a redrive policy")).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        EVENTS_MAX_RECEIVE_COUNT.to_string()
    );
    assert!(redrive["deadLetterTargetArn"]
        .as_str()
        .unwrap()
        .ends_with("-events-dlq"));

    let q = queue(&sdk, &url, &config.bucket);
    let event = OutgoingEvent {
        id: EventId::derive(EventType::TicketCreated, &["K3F9Q2XA"]),
        kind: EventType::TicketCreated,
        created_at: chrono::Utc::now(),
        data: serde_json::json!({"ticket": {"id": "K3F9Q2XA"}}),
    };
    // Published twice (a producer retried): both arrive; the sender's ledger deduplicates.
    q.publish(&event).await.unwrap();
    q.publish(&event).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        for r in q
            .receive(10, Duration::from_secs(0), Duration::from_secs(30))
            .await
            .unwrap()
        {
            got.push(q.decode_event(&r.body).await.unwrap());
            q.delete(&r.receipt_handle).await.unwrap();
        }
    }
    assert_eq!(got, vec![event.clone(), event]);
}
