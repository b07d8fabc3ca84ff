//! One page of X's recent search as social monitoring reads it (`monitoring::read_search_page`):
//! posts become monitoring messages, the account's own posts, replies to it and mentions of it
//! are skipped. Besides the shared checks (`crossdesk_fuzz`): reading is deterministic, every
//! message is marked `monitoring` and none is the account's own.
#![no_main]

use crossdesk_channels::monitoring::{read_search_page, MonitoredAccount};
use crossdesk_fuzz::{check_deterministic, check_message, now};
use libfuzzer_sys::fuzz_target;

/// The support account of the samples in `events/x-api/`.
const ACCOUNT_ID: &str = "3000000001";

fuzz_target!(|body: &[u8]| {
    let account = MonitoredAccount::new(ACCOUNT_ID, "sample_support").expect("a valid account");
    let Some(first) = read_search_page(&account, body, now()) else {
        return;
    };
    let second = read_search_page(&account, body, now()).expect("the second read parses too");
    check_deterministic(&Ok(first.messages.clone()), &Ok(second.messages));
    assert_eq!(first.newest_id, second.newest_id);
    assert_eq!(first.skipped, second.skipped);
    for message in &first.messages {
        check_message(message);
        assert!(message.monitoring, "a monitoring message is not marked");
        assert_ne!(
            message.author.platform_id, ACCOUNT_ID,
            "the account's own post"
        );
    }
});
