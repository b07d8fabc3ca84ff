//! The whole-body check a parser runs before reading a webhook into typed structs.
//!
//! Reading a body straight into typed structs skips the fields Crossdesk does not use, and
//! serde_json skips those without the checks it applies to a `serde_json::Value`: it does not
//! look at their UTF-8 and does not count their nesting. [`checked_object`] applies those checks
//! to the whole body first, in one pass that builds nothing (a `Value` of a 3 KB X webhook costs
//! several times as much), so a typed read afterwards is held to the same rules.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ParseError;

/// The body as text, after checking that it is UTF-8 and one JSON object, nested no deeper than
/// serde_json's limit (128), as parsing it into a `serde_json::Value` would require.
pub(crate) fn checked_object(body: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ParseError::Json(format!("the body is not UTF-8: {e}")))?;
    match serde_json::from_str::<Shape>(text)? {
        Shape::Object => Ok(text),
        Shape::Other => Err(ParseError::Invalid("the body is not a JSON object".into())),
    }
}

/// What kind of JSON value the body is, once every part of it has been checked.
enum Shape {
    /// `{…}`.
    Object,
    /// An array, a string, a number, a boolean or `null`.
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `deserialize_any` is where serde_json counts the nesting depth.
        d.deserialize_any(ShapeVisitor)
    }
}

/// Visits a value and everything in it, keeping only whether it is an object.
struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Shape, A::Error> {
        while items.next_element::<Shape>()?.is_some() {}
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Shape, A::Error> {
        while entries.next_entry::<IgnoredAny, Shape>()?.is_some() {}
        Ok(Shape::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn accepts_an_object_as_text() {
        let body = br#"{"a":[1,-2,3.5,true,null,"\u00e9"],"b":{"c":{}}}"#;
        assert_eq!(checked_object(body).unwrap().len(), body.len());
    }

    #[test]
    fn refuses_what_a_value_parse_refuses_even_where_typed_reads_skip() {
        let too_deep = format!(r#"{{"skipped":{}}}"#, nested(200));
        let bad_utf8 = b"{\"skipped\":\"\xff\xfe\"}".to_vec();
        for body in [
            too_deep.as_bytes(),
            &bad_utf8,
            b"",
            b"{",
            b"{\"a\":1}x",
            b"{\"a\":\"\x01\"}",
        ] {
            assert!(
                serde_json::from_slice::<serde_json::Value>(body).is_err(),
                "a Value parse refuses {body:?} too"
            );
            assert!(checked_object(body).is_err(), "{body:?}");
        }
        // The same nesting within the limit is accepted, as a Value parse accepts it.
        let deep_enough = format!(r#"{{"skipped":{}}}"#, nested(120));
        assert!(checked_object(deep_enough.as_bytes()).is_ok());
    }

    #[test]
    fn a_json_value_that_is_not_an_object_is_invalid() {
        for body in ["[]", "[{}]", "\"x\"", "1", "null", "true"] {
            assert!(
                matches!(checked_object(body.as_bytes()), Err(ParseError::Invalid(_))),
                "{body}"
            );
        }
    }
}
