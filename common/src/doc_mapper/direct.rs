//! The ingest hot loop: one JSON line straight into a tantivy document, without the
//! `serde_json::Value` tree (an `IndexMap` per object, a `String` per key and value, then a
//! second conversion into tantivy values).
//!
//! It covers the shapes logs have: mapped leaves, json fields and dynamic fields at the
//! top level, and a stored source. On anything else (a mapped `object`, a duplicated key,
//! an `_id` beside a stored source) and on every error it gives up, and
//! `doc_from_json_object` decides the document: that path stays the reference, and the one
//! place where rejections are worded. The tests check that both paths build the same
//! documents.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use quarry_config::{LeafFieldType, Mode, DOC_ID_FIELD_NAME};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, TantivyDocument};

use super::binary_format::decode_binary;
use super::date_time::{parse_date_time_integer, parse_date_time_number, parse_date_time_str};
use super::json_to_doc::tag_text;
use super::{DocMapper, MappedField, ParsedDoc};

/// Documents whose mapping has more leaf fields than this take the reference path: the
/// duplicate-key check is a bit set.
const MAX_DIRECT_FIELDS: usize = 128;

/// Any reason to hand the line to the reference path; the message is never shown.
fn give_up<E: de::Error>() -> E {
    E::custom("")
}

impl DocMapper {
    /// `None` when the reference path must decide: see the module comment.
    pub(super) fn try_map_direct(&self, line: &[u8]) -> Option<ParsedDoc> {
        if self.fields.len() > MAX_DIRECT_FIELDS {
            return None;
        }
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        let parsed = DocumentSeed { mapper: self, line }
            .deserialize(&mut deserializer)
            .ok()?;
        deserializer.end().ok()?;
        if self.timestamp_field.is_some() && parsed.timestamp.is_none() {
            return None;
        }
        Some(parsed)
    }
}

struct DocumentSeed<'m> {
    mapper: &'m DocMapper,
    line: &'m [u8],
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = ParsedDoc;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ParsedDoc, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = ParsedDoc;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedDoc, A::Error> {
        let mapper = self.mapper;
        let mut parsed = ParsedDoc {
            // The serialized document is about as long as the line; tantivy's default of
            // 1 KiB would triple the memory of queued batches.
            doc: TantivyDocument::with_capacity(self.line.len() + 64),
            timestamp: None,
            tags: Vec::new(),
        };
        let mut seen: u128 = 0;
        let mut dynamic: Vec<(String, OwnedValue)> = Vec::new();
        let mut doc_id: Option<String> = None;
        let mut has_doc_id_key = false;
        while let Some(key) = map.next_key_seed(CowStrSeed)? {
            if key == DOC_ID_FIELD_NAME {
                if doc_id.is_some() {
                    return Err(give_up());
                }
                has_doc_id_key = true;
                doc_id = map.next_value::<Option<String>>()?;
                continue;
            }
            if let Some(&position) = mapper.by_path.get(key.as_ref()) {
                let bit = 1u128 << position;
                if seen & bit != 0 {
                    return Err(give_up());
                }
                seen |= bit;
                map.next_value_seed(FieldSeed {
                    mapper,
                    mapped: &mapper.fields[position],
                    parsed: &mut parsed,
                })?;
                continue;
            }
            if mapper.object_paths.contains(key.as_ref()) {
                return Err(give_up());
            }
            match mapper.mode {
                Mode::Dynamic => {
                    let value = map.next_value_seed(OwnedValueSeed)?;
                    // Nulls are kept until the end so that a repeated key is seen.
                    if dynamic.iter().any(|(existing, _)| existing == key.as_ref()) {
                        return Err(give_up());
                    }
                    dynamic.push((key.into_owned(), value));
                }
                Mode::Strict => return Err(give_up()),
                Mode::Lenient => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        dynamic.retain(|(_, value)| !matches!(value, OwnedValue::Null));
        if let (Some(field), false) = (mapper.dynamic_field, dynamic.is_empty()) {
            parsed
                .doc
                .add_field_value(field, &OwnedValue::Object(dynamic));
        }
        if let Some(field) = mapper.source_field {
            // The line is the source. The reference stores the parsed object serialized
            // again, which reads back as the same JSON, and leaves `_id` out: here only
            // the `"_id":"…",` that `_bulk` writes first can be cut out exactly.
            if !has_doc_id_key {
                parsed.doc.add_bytes(field, self.line.trim_ascii());
            } else {
                let doc_id = doc_id.as_deref().ok_or_else(give_up)?;
                let source = without_leading_doc_id(self.line, doc_id).ok_or_else(give_up)?;
                parsed.doc.add_bytes(field, &source);
            }
        }
        if let Some(doc_id) = doc_id {
            parsed.doc.add_text(mapper.doc_id_field, doc_id);
        }
        Ok(parsed)
    }
}

/// The line without the `"_id":"…",` that `_bulk` puts first in the object, when that is
/// exactly how it starts; `None` otherwise.
fn without_leading_doc_id(line: &[u8], doc_id: &str) -> Option<Vec<u8>> {
    let rest = line.trim_ascii().strip_prefix(b"{\"_id\":")?;
    let doc_id_json = serde_json::to_vec(doc_id).ok()?;
    let rest = rest.strip_prefix(doc_id_json.as_slice())?;
    let rest = match rest.strip_prefix(b",") {
        Some(after_comma) => after_comma,
        None if rest.trim_ascii_start().starts_with(b"}") => rest,
        None => return None,
    };
    let mut source = Vec::with_capacity(rest.len() + 1);
    source.push(b'{');
    source.extend_from_slice(rest);
    Some(source)
}

/// A key or string, borrowed from the line unless it holds escapes.
struct CowStrSeed;

impl<'de> DeserializeSeed<'de> for CowStrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CowStrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text))
    }
}

/// The value of a mapped field: a scalar, null, or a flat array of scalars.
struct FieldSeed<'m, 'p> {
    mapper: &'m DocMapper,
    mapped: &'m MappedField,
    parsed: &'p mut ParsedDoc,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.mapped.leaf_type == LeafFieldType::Json {
            return match deserializer.deserialize_any(OwnedValueSeed)? {
                OwnedValue::Null => Ok(()),
                object @ OwnedValue::Object(_) => {
                    self.parsed.doc.add_field_value(self.mapped.field, &object);
                    Ok(())
                }
                _ => Err(give_up()),
            };
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a value or a flat array of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let FieldSeed {
            mapper,
            mapped,
            parsed,
        } = self;
        let mut num_values = 0usize;
        while let Some(scalar) = seq.next_element_seed(ScalarSeed)? {
            num_values += 1;
            if let Some(scalar) = scalar {
                mapper.add_scalar(mapped, scalar, parsed)?;
            }
        }
        if num_values > 1 && mapper.is_timestamp(mapped) {
            return Err(give_up());
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.mapper
            .add_scalar(self.mapped, Scalar::Bool(value), self.parsed)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.mapper
            .add_scalar(self.mapped, Scalar::U64(value), self.parsed)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.mapper
            .add_scalar(self.mapped, Scalar::I64(value), self.parsed)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.mapper
            .add_scalar(self.mapped, Scalar::F64(value), self.parsed)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<(), E> {
        self.mapper
            .add_scalar(self.mapped, Scalar::Str(Cow::Borrowed(text)), self.parsed)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.mapper.add_scalar(
            self.mapped,
            Scalar::Str(Cow::Owned(text.to_string())),
            self.parsed,
        )
    }
}

/// A JSON scalar as the line holds it.
enum Scalar<'de> {
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'de, str>),
}

/// One element of an array for a mapped field: a scalar, `None` for null, and a give-up
/// for nested arrays and objects (the reference path rejects those).
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Option<Scalar<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Option<Scalar<'de>>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a scalar")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Bool(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(Scalar::U64(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(Scalar::I64(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Some(Scalar::F64(value)))
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Str(Cow::Borrowed(text))))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Str(Cow::Owned(text.to_string()))))
    }
}

/// A number as serde_json's `Number` holds it, for the conversions that go through it.
fn json_number(scalar: &Scalar) -> Option<serde_json::Number> {
    match scalar {
        Scalar::U64(value) => Some((*value).into()),
        Scalar::I64(value) => Some((*value).into()),
        Scalar::F64(value) => serde_json::Number::from_f64(*value),
        _ => None,
    }
}

impl DocMapper {
    fn is_timestamp(&self, mapped: &MappedField) -> bool {
        self.timestamp_field
            .is_some_and(|position| std::ptr::eq(&self.fields[position], mapped))
    }

    /// Converts like `convert_leaf`, then records the timestamp and tags like
    /// `add_mapped_value`; anything it would reject is a give-up.
    fn add_scalar<E: de::Error>(
        &self,
        mapped: &MappedField,
        scalar: Scalar,
        parsed: &mut ParsedDoc,
    ) -> Result<(), E> {
        let field = mapped.field;
        let doc = &mut parsed.doc;
        let is_tag = self
            .tag_fields
            .iter()
            .any(|position| std::ptr::eq(&self.fields[*position], mapped));
        let tag =
            |value: &OwnedValue| tag_text(value).map(|text| format!("{}:{text}", mapped.path));
        match mapped.leaf_type {
            LeafFieldType::Text => {
                let text: Cow<str> = match &scalar {
                    Scalar::Str(text) => Cow::Borrowed(text.as_ref()),
                    Scalar::Bool(flag) => Cow::Owned(flag.to_string()),
                    number => Cow::Owned(json_number(number).ok_or_else(give_up)?.to_string()),
                };
                if is_tag {
                    parsed.tags.push(format!("{}:{text}", mapped.path));
                }
                doc.add_text(field, text.as_ref());
            }
            LeafFieldType::U64 => {
                let value = match &scalar {
                    Scalar::U64(value) => Some(*value),
                    Scalar::F64(float)
                        if float.fract() == 0.0 && *float >= 0.0 && *float < u64::MAX as f64 =>
                    {
                        Some(*float as u64)
                    }
                    Scalar::Str(text) => text.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(give_up)?;
                if is_tag {
                    parsed.tags.extend(tag(&OwnedValue::U64(value)));
                }
                doc.add_u64(field, value);
            }
            LeafFieldType::I64 => {
                let value = match &scalar {
                    Scalar::U64(value) => i64::try_from(*value).ok(),
                    Scalar::I64(value) => Some(*value),
                    Scalar::F64(float) if float.fract() == 0.0 && float.abs() < i64::MAX as f64 => {
                        Some(*float as i64)
                    }
                    Scalar::Str(text) => text.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(give_up)?;
                if is_tag {
                    parsed.tags.extend(tag(&OwnedValue::I64(value)));
                }
                doc.add_i64(field, value);
            }
            LeafFieldType::F64 => {
                let value = match &scalar {
                    Scalar::Str(text) => text
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|float| float.is_finite()),
                    Scalar::Bool(_) => None,
                    number => json_number(number).and_then(|number| number.as_f64()),
                }
                .ok_or_else(give_up)?;
                doc.add_f64(field, value);
            }
            LeafFieldType::Bool => {
                let value = match &scalar {
                    Scalar::Bool(flag) => *flag,
                    Scalar::Str(text) if text == "true" || text == "false" => text == "true",
                    _ => return Err(give_up()),
                };
                if is_tag {
                    parsed.tags.extend(tag(&OwnedValue::Bool(value)));
                }
                doc.add_bool(field, value);
            }
            LeafFieldType::Datetime => {
                let formats = &mapped.input_formats;
                let value: DateTime = match &scalar {
                    Scalar::Str(text) => parse_date_time_str(text, formats),
                    Scalar::Bool(_) => None,
                    number => {
                        let number = json_number(number).ok_or_else(give_up)?;
                        match number.as_i64() {
                            Some(whole) => parse_date_time_integer(whole, formats),
                            None => number
                                .as_f64()
                                .and_then(|float| parse_date_time_number(float, formats)),
                        }
                    }
                }
                .ok_or_else(give_up)?;
                if self.is_timestamp(mapped) {
                    if parsed.timestamp.is_some() {
                        return Err(give_up());
                    }
                    parsed.timestamp = Some(value);
                }
                doc.add_date(field, value);
            }
            LeafFieldType::Ip => {
                let Scalar::Str(text) = &scalar else {
                    return Err(give_up());
                };
                let ip = match text.trim().parse::<IpAddr>().map_err(|_| give_up::<E>())? {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                doc.add_ip_addr(field, ip);
            }
            LeafFieldType::Bytes => {
                let Scalar::Str(text) = &scalar else {
                    return Err(give_up());
                };
                let format = mapped.mapping.input_format.unwrap_or_default();
                let bytes = decode_binary(format, text).ok_or_else(give_up::<E>)?;
                doc.add_bytes(field, &bytes);
            }
            // Json values never come here: `FieldSeed` maps them whole.
            LeafFieldType::Json => return Err(give_up()),
        }
        Ok(())
    }
}

/// A JSON value as tantivy's `From<serde_json::Value>` would convert it: integers as i64
/// when they fit, strings through the same RFC 3339 date detection, and objects keeping
/// their first key's position with their last key's value, as `serde_json::Map` does.
struct OwnedValueSeed;

impl<'de> DeserializeSeed<'de> for OwnedValueSeed {
    type Value = OwnedValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<OwnedValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OwnedValueSeed {
    type Value = OwnedValue;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Bool(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<OwnedValue, E> {
        Ok(match i64::try_from(value) {
            Ok(value) => OwnedValue::I64(value),
            Err(_) => OwnedValue::U64(value),
        })
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<OwnedValue, E> {
        Ok(OwnedValue::I64(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<OwnedValue, E> {
        Ok(OwnedValue::F64(value))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<OwnedValue, E> {
        self.visit_string(text.to_string())
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<OwnedValue, E> {
        Ok(OwnedValue::from(serde_json::Value::String(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OwnedValue, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element_seed(OwnedValueSeed)? {
            elements.push(element);
        }
        Ok(OwnedValue::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OwnedValue, A::Error> {
        let mut entries: Vec<(String, OwnedValue)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(OwnedValueSeed)?;
            match entries.iter_mut().find(|(existing, _)| *existing == key) {
                Some((_, existing)) => *existing = value,
                None => entries.push((key, value)),
            }
        }
        Ok(OwnedValue::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use quarry_config::{ConfigFormat, IndexConfig};
    use tantivy::schema::document::{Document, Value};

    use super::*;
    use crate::doc_mapper::tests::ALL_TYPES;
    use crate::doc_mapper::DocParsingError;

    /// The shared every-type mapping, with tags of every kind `tag_text` formats.
    fn mapping(mode: &str) -> String {
        ALL_TYPES.replace("MODE", mode).replace(
            "tag_fields: [level]",
            "tag_fields: [level, count, ok, delta]",
        )
    }

    fn mapper(mode: &str) -> DocMapper {
        let yaml = mapping(mode);
        DocMapper::new(&IndexConfig::parse(yaml.as_bytes(), ConfigFormat::Yaml).unwrap())
    }

    /// The reference path alone, as `doc_from_json_bytes` ran before the direct one.
    fn reference(mapper: &DocMapper, line: &str) -> Result<ParsedDoc, DocParsingError> {
        match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(object)) => mapper.doc_from_json_object(object),
            Ok(_) => Err(DocParsingError::NotAnObject),
            Err(error) => Err(DocParsingError::InvalidJson(error.to_string())),
        }
    }

    type Contents = (Vec<(u32, OwnedValue)>, Option<DateTime>, Vec<String>);

    /// What a mapped document holds. A stored source is compared as the JSON it reads back
    /// as: the direct path keeps the line, the reference serializes the parsed object again.
    fn contents(mapper: &DocMapper, parsed: &ParsedDoc) -> Contents {
        let values = parsed
            .doc
            .iter_fields_and_values()
            .map(|(field, value)| {
                let value = OwnedValue::from(value.as_value());
                let value = match (&value, mapper.source_field == Some(field)) {
                    (OwnedValue::Bytes(bytes), true) => {
                        let json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                        OwnedValue::Str(json.to_string())
                    }
                    _ => value,
                };
                (field.field_id(), value)
            })
            .collect();
        (values, parsed.timestamp, parsed.tags.clone())
    }

    const TS: &str = r#""ts": "2026-01-01T00:00:00.5Z""#;

    /// Lines the direct path must map, each exactly as the reference does.
    fn direct_lines() -> Vec<String> {
        let lines = [
            r#"{TS, "message": "Connection reset by peer", "level": "ERROR", "count": 42, "delta": -7, "ratio": 0.25, "ok": true, "client_ip": "10.0.0.1", "blob": "aGVsbG8=", "attributes": {"http.status_code": 500, "region": "eu", "at": "2026-01-01T00:00:00Z"}, "labels": ["a", "b"]}"#,
            r#"{"count": "42", "delta": "-7", "ratio": "0.5", "ok": "false", TS, "message": 123, "level": 7}"#,
            r#"{TS, "message": 1.5, "level": true, "count": 3.0, "delta": -2.0, "ratio": 4}"#,
            r#"{TS, "count": 18446744073709551615, "delta": 9223372036854775807, "ratio": -1e300}"#,
            r#"{TS, "labels": ["a", null, "b"], "message": ["x", "y"], "count": [1, 2]}"#,
            r#"{TS, "message": null, "attributes": null, "labels": []}"#,
            r#"{"level": "INFO", "_id": "doc-1", TS, "message": "the id is metadata"}"#,
            r#"{"_id": null, TS}"#,
            r#"{"mess\u0061ge": "quote \" and \\ and \u00e9", TS, "l\u0065vel": "WARN"}"#,
            r#"{TS, "attributes": {"a": 1, "b": 2, "a": 3, "deep": [1, "x", {"k": null}]}}"#,
            r#"{"ts": 1767225600, "message": "seconds"}"#,
            r#"{"ts": 1767225600.5, "message": "fractional seconds"}"#,
            r#"{"ts": "2026-01-01 00:00:00", "message": "strptime"}"#,
            r#"{"ts": ["2026-01-01T00:00:00Z"], "message": "one timestamp in an array"}"#,
            r#"{TS, "client_ip": " ::1 ", "blob": ""}"#,
            r#"{TS, "message": "ünïcödé 日本語 🎉"}"#,
        ];
        lines.iter().map(|line| line.replace("TS", TS)).collect()
    }

    /// Lines with what only the dynamic mode keeps.
    const DYNAMIC_LINES: &[&str] = &[
        r#"{"extra": {"nested": [1, "2026-01-01T00:00:00Z", {"k": null}]}, "z": null, "ts": 0, "big": 18446744073709551615, "neg": -1, "f": 1.5}"#,
        r#"{"ts": 0, "a": 1, "nothing": null, "b": "text", "c": [true, false]}"#,
    ];

    fn assert_same(mapper: &DocMapper, line: &str) {
        let direct = mapper
            .try_map_direct(line.as_bytes())
            .unwrap_or_else(|| panic!("the direct path gave up on {line}"));
        let reference = reference(mapper, line).unwrap_or_else(|error| panic!("{line}: {error}"));
        assert_eq!(
            contents(mapper, &direct),
            contents(mapper, &reference),
            "{line}"
        );
        let through_api = mapper.doc_from_json_bytes(line.as_bytes()).unwrap();
        assert_eq!(
            contents(mapper, &through_api),
            contents(mapper, &reference),
            "{line}"
        );
    }

    #[test]
    fn maps_like_the_reference_in_every_mode() {
        for mode in ["strict", "lenient", "dynamic"] {
            let mapper = mapper(mode);
            for line in direct_lines() {
                assert_same(&mapper, &line);
            }
        }
        let dynamic = mapper("dynamic");
        for line in DYNAMIC_LINES {
            assert_same(&dynamic, line);
        }
        // Lenient drops what dynamic keeps, and still maps the rest directly.
        let lenient = mapper("lenient");
        for line in DYNAMIC_LINES {
            assert_same(&lenient, line);
        }
    }

    #[test]
    fn gives_up_where_the_reference_decides() {
        let cases: &[(&str, &str)] = &[
            ("strict", r#"{"ts": 0, "unknown": 1}"#),
            ("dynamic", r#"{"ts": 0, "message": "a", "message": "b"}"#),
            ("dynamic", r#"{"ts": 0, "extra": null, "extra": 1}"#),
            (
                "dynamic",
                r#"{"ts": 0, "resource": {"service": "payments"}}"#,
            ),
            ("dynamic", r#"{"ts": 0, "count": -1}"#),
            ("dynamic", r#"{"ts": 0, "count": "many"}"#),
            ("dynamic", r#"{"ts": 0, "labels": [["nested"]]}"#),
            ("dynamic", r#"{"ts": 0, "attributes": [1]}"#),
            ("dynamic", r#"{"ts": [0, 1]}"#),
            ("dynamic", r#"{"ts": [null, 1]}"#),
            ("dynamic", r#"{"message": "no timestamp"}"#),
            ("dynamic", r#"{"ts": 0, "_id": 7}"#),
            ("dynamic", r#"{"ts": 0} trailing"#),
            ("dynamic", r#"[{"ts": 0}]"#),
            ("dynamic", r#"{"ts": 0, "client_ip": "not an ip"}"#),
            ("dynamic", r#"{"ts": 0, "blob": "***"}"#),
        ];
        for &(mode, line) in cases {
            let mapper = mapper(mode);
            assert!(mapper.try_map_direct(line.as_bytes()).is_none(), "{line}");
            // The public entry point still answers, as the reference does.
            let expected = reference(&mapper, line).map(|parsed| contents(&mapper, &parsed));
            let actual = mapper
                .doc_from_json_bytes(line.as_bytes())
                .map(|parsed| contents(&mapper, &parsed));
            assert_eq!(actual, expected, "{line}");
        }
    }

    fn with_source(mode: &str) -> DocMapper {
        let yaml = mapping(mode).replace("store_source: false", "store_source: true");
        DocMapper::new(&IndexConfig::parse(yaml.as_bytes(), ConfigFormat::Yaml).unwrap())
    }

    #[test]
    fn a_stored_source_is_the_line_itself() {
        let mapper = with_source("dynamic");
        for line in direct_lines().iter().filter(|line| !line.contains("_id")) {
            assert_same(&mapper, line);
        }
        let line = "  {\"ts\": 0, \"message\": \"kept as sent\", \"n\": 1e3}\r";
        let parsed = mapper.try_map_direct(line.as_bytes()).unwrap();
        let source = parsed.doc.get_first(mapper.source_field.unwrap()).unwrap();
        assert_eq!(Value::as_bytes(&source), Some(line.trim().as_bytes()));
        // `_bulk` writes the `_id` first: it is cut out of the source, as the reference
        // leaves it out.
        for line in [
            r#"{"_id":"doc-1","ts": 0, "message": "from _bulk"}"#,
            r#"{"_id":"quote \" and é","ts": 0}"#,
            r#"{"_id":"doc-2","ts":0}"#,
        ] {
            assert_same(&mapper, line);
            let parsed = mapper.try_map_direct(line.as_bytes()).unwrap();
            let source = parsed.doc.get_first(mapper.source_field.unwrap()).unwrap();
            let source: serde_json::Value =
                serde_json::from_slice(Value::as_bytes(&source).unwrap()).unwrap();
            assert!(source.get("_id").is_none(), "{source}");
        }
        // Anywhere else, or written another way, it is left to the reference.
        for line in [
            r#"{"ts": 0, "_id": "a", "message": "x"}"#,
            r#"{"_id": "a", "ts": 0}"#,
            r#"{"_id":"\u00e9","ts": 0}"#,
            r#"{"_id":null,"ts": 0}"#,
        ] {
            assert!(mapper.try_map_direct(line.as_bytes()).is_none(), "{line}");
            assert!(
                mapper.doc_from_json_bytes(line.as_bytes()).is_ok(),
                "{line}"
            );
        }
    }

    #[test]
    fn the_leading_doc_id_of_bulk_lines_is_cut_exactly() {
        let cut = |line: &str, doc_id: &str| {
            without_leading_doc_id(line.as_bytes(), doc_id)
                .map(|source| String::from_utf8(source).unwrap())
        };
        assert_eq!(
            cut(r#"{"_id":"x","a":1}"#, "x").as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(cut(r#" {"_id":"x"} "#, "x").as_deref(), Some("{}"));
        assert_eq!(cut(r#"{"_id":"x" }"#, "x").as_deref(), Some("{ }"));
        assert_eq!(cut(r#"{"_id":"x" ,"a":1}"#, "x"), None);
        assert_eq!(cut(r#"{"_id":"y","a":1}"#, "x"), None);
        assert_eq!(cut(r#"{"a":1,"_id":"x"}"#, "x"), None);
    }

    /// SplitMix64: random documents without a dependency, the same ones on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const KEYS: &[&str] = &[
        "ts",
        "message",
        "level",
        "count",
        "delta",
        "ratio",
        "ok",
        "client_ip",
        "blob",
        "attributes",
        "labels",
        "resource",
        "_id",
        "extra",
        "user",
        "n",
        "mess\\u0061ge",
    ];
    const SCALARS: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "7",
        "-3",
        "42",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "-9223372036854775808",
        "1.5",
        "-0.0",
        "3.0",
        "1e3",
        "2.5e-3",
        "1767225600",
        "1767225600.25",
        r#""word""#,
        r#""42""#,
        r#"" 7 ""#,
        r#""-3""#,
        r#""0.5""#,
        r#""true""#,
        r#""2026-01-01T00:00:00Z""#,
        r#""2026-01-01 00:00:00""#,
        r#""10.0.0.1""#,
        r#""::1""#,
        r#""aGVsbG8=""#,
        r#""a\"b\\c""#,
        r#""\u00e9t\u00e9""#,
        r#""line\nbreak""#,
        r#""""#,
    ];

    fn random_value(rng: &mut Rng, depth: usize) -> String {
        match rng.below(10) {
            0 if depth > 0 => {
                let items: Vec<String> = (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect();
                format!("[{}]", items.join(","))
            }
            1 if depth > 0 => random_object(rng, depth - 1, 4),
            _ => rng.pick(SCALARS).to_string(),
        }
    }

    fn random_object(rng: &mut Rng, depth: usize, max_keys: usize) -> String {
        let entries: Vec<String> = (0..rng.below(max_keys + 1))
            .map(|_| {
                let space = if rng.below(2) == 0 { " " } else { "" };
                let key = rng.pick(KEYS);
                format!("\"{key}\":{space}{}", random_value(rng, depth))
            })
            .collect();
        format!("{{{}}}", entries.join(", "))
    }

    /// Random documents, many of them odd: whatever the direct path maps must be what the
    /// reference maps, and it must not give up on everything.
    #[test]
    fn random_documents_map_like_the_reference() {
        let mut rng = Rng(42);
        let mappers = [
            ("strict", mapper("strict")),
            ("lenient", mapper("lenient")),
            ("dynamic", mapper("dynamic")),
            ("dynamic with source", with_source("dynamic")),
        ];
        for (mode, mapper) in mappers {
            let mut mapped_directly = 0;
            for _ in 0..10_000 {
                // Usually a valid timestamp first, so that many documents can succeed.
                let body = random_object(&mut rng, 2, 7);
                let line = match rng.below(5) {
                    0 => body,
                    _ => format!(
                        "{{\"ts\": {}, {}",
                        rng.pick(&["1767225600", r#""2026-01-01T00:00:00Z""#]),
                        &body[1..]
                    )
                    .replace(", }", "}"),
                };
                let Some(direct) = mapper.try_map_direct(line.as_bytes()) else {
                    continue;
                };
                mapped_directly += 1;
                let reference = reference(&mapper, &line).unwrap_or_else(|error| {
                    panic!("direct accepted what the reference rejects ({error}): {line}")
                });
                assert_eq!(
                    contents(&mapper, &direct),
                    contents(&mapper, &reference),
                    "{line}"
                );
            }
            assert!(
                mapped_directly > 1_000,
                "{mode}: only {mapped_directly} mapped directly"
            );
        }
    }
}
