//! HMAC-SHA256 signing and constant-time verification, shared by every channel.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac_over(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac_over(key, parts).finalize().into_bytes().into()
}

/// Lower-case hex HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key, parts))
}

/// Standard base64 HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256_base64(key: &[u8], parts: &[&[u8]]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key, parts))
}

/// Whether `expected` is the HMAC-SHA256 of the parts, compared in constant time.
pub fn matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    mac_over(key, parts).verify_slice(expected).is_ok()
}

/// Decodes hex (either case); `None` when it is not hex of 32 bytes.
pub fn decode_hex_digest(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim()).ok().filter(|d| d.len() == 32)
}

/// Decodes standard base64; `None` when it is not base64 of 32 bytes.
pub fn decode_base64_digest(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
        .filter(|d| d.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published vector: GitHub's X-Hub-Signature-256 documentation (same scheme as Meta's).
    #[test]
    fn matches_published_hub_signature_vector() {
        let hex = hmac_sha256_hex(b"It's a Secret to Everybody", &[b"Hello, World!"]);
        assert_eq!(
            hex,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let digest = decode_hex_digest(&hex).unwrap();
        assert!(matches(
            b"It's a Secret to Everybody",
            &[b"Hello, ", b"World!"],
            &digest
        ));
        assert!(!matches(
            b"It's a Secret to Everybody",
            &[b"Hello, World?"],
            &digest
        ));
    }

    #[test]
    fn rejects_digests_of_the_wrong_length_or_alphabet() {
        assert!(decode_hex_digest("abcd").is_none());
        assert!(decode_hex_digest(&"zz".repeat(32)).is_none());
        assert!(decode_base64_digest("not base64!").is_none());
        assert!(decode_base64_digest("AAAA").is_none());
    }
}
