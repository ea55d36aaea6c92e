use std::net::IpAddr;

use quarry_config::{LeafFieldType, Mode, DOC_ID_FIELD_NAME};
use serde_json::{Map, Value};
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, TantivyDocument};

use super::binary_format::{binary_format_name, decode_binary};
use super::date_time::{parse_date_time_integer, parse_date_time_number, parse_date_time_str};
use super::{DocMapper, MappedField};

/// Why one document was rejected. Each message names the field and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocParsingError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("document is not a JSON object")]
    NotAnObject,
    #[error("field `{0}` is not in the doc mapping and the mapping mode is strict")]
    UnknownField(String),
    #[error("field `{path}`: expected {expected}, got {got}")]
    WrongType {
        path: String,
        expected: String,
        got: String,
    },
    #[error("timestamp field `{0}` is missing")]
    MissingTimestamp(String),
    #[error("timestamp field `{0}` must hold a single value")]
    MultipleTimestamps(String),
}

/// A mapped document and what the split needs to know about it.
#[derive(Debug)]
pub struct ParsedDoc {
    pub doc: TantivyDocument,
    pub timestamp: Option<DateTime>,
    /// `field:value` for each tag field value of this document.
    pub tags: Vec<String>,
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 64 {
        let mut cut = 61;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &text[..cut])
    } else {
        text
    }
}

impl DocMapper {
    /// Maps one NDJSON line.
    pub fn doc_from_json_bytes(&self, line: &[u8]) -> Result<ParsedDoc, DocParsingError> {
        if let Some(parsed) = self.try_map_direct(line) {
            return Ok(parsed);
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|error| DocParsingError::InvalidJson(error.to_string()))?;
        match value {
            Value::Object(object) => self.doc_from_json_object(object),
            _ => Err(DocParsingError::NotAnObject),
        }
    }

    pub fn doc_from_json_object(
        &self,
        mut object: Map<String, Value>,
    ) -> Result<ParsedDoc, DocParsingError> {
        // `_id` is metadata, as in Elasticsearch: kept beside the document, not in it.
        // `shift_remove`: the other keys keep their order, which hits show back.
        let doc_id = match object.shift_remove(DOC_ID_FIELD_NAME) {
            None | Some(Value::Null) => None,
            Some(Value::String(doc_id)) => Some(doc_id),
            Some(other) => {
                return Err(DocParsingError::WrongType {
                    path: DOC_ID_FIELD_NAME.to_string(),
                    expected: "a string".to_string(),
                    got: describe(&other),
                })
            }
        };
        let source = self
            .source_field
            .map(|_| serde_json::to_vec(&object).unwrap_or_default());
        let mut parsed = ParsedDoc {
            doc: TantivyDocument::new(),
            timestamp: None,
            tags: Vec::new(),
        };
        let mut dynamic = Map::new();
        self.map_object("", object, &mut parsed, &mut dynamic)?;
        if let Some(timestamp_field) = self.timestamp_field() {
            if parsed.timestamp.is_none() {
                return Err(DocParsingError::MissingTimestamp(
                    timestamp_field.path.clone(),
                ));
            }
        }
        if let (Some(field), false) = (self.dynamic_field, dynamic.is_empty()) {
            parsed
                .doc
                .add_field_value(field, &OwnedValue::from(dynamic));
        }
        if let (Some(field), Some(source)) = (self.source_field, source) {
            parsed.doc.add_bytes(field, &source);
        }
        if let Some(doc_id) = doc_id {
            parsed.doc.add_text(self.doc_id_field, doc_id);
        }
        Ok(parsed)
    }

    fn map_object(
        &self,
        prefix: &str,
        object: Map<String, Value>,
        parsed: &mut ParsedDoc,
        dynamic: &mut Map<String, Value>,
    ) -> Result<(), DocParsingError> {
        for (key, value) in object {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if let Some(position) = self.by_path.get(&path) {
                self.add_mapped_value(&self.fields[*position], value, parsed)?;
                continue;
            }
            if self.object_paths.contains(&path) {
                match value {
                    Value::Object(inner) => {
                        let mut inner_dynamic = Map::new();
                        self.map_object(&path, inner, parsed, &mut inner_dynamic)?;
                        if !inner_dynamic.is_empty() {
                            dynamic.insert(key, Value::Object(inner_dynamic));
                        }
                    }
                    Value::Null => {}
                    other => {
                        return Err(DocParsingError::WrongType {
                            path,
                            expected: "an object".to_string(),
                            got: describe(&other),
                        })
                    }
                }
                continue;
            }
            match self.mode {
                Mode::Dynamic => {
                    if !value.is_null() {
                        dynamic.insert(key, value);
                    }
                }
                Mode::Strict => return Err(DocParsingError::UnknownField(path)),
                Mode::Lenient => {}
            }
        }
        Ok(())
    }

    fn add_mapped_value(
        &self,
        mapped: &MappedField,
        value: Value,
        parsed: &mut ParsedDoc,
    ) -> Result<(), DocParsingError> {
        let is_timestamp = self
            .timestamp_field
            .is_some_and(|position| std::ptr::eq(&self.fields[position], mapped));
        match value {
            Value::Null => Ok(()),
            Value::Array(values) if mapped.leaf_type != LeafFieldType::Json => {
                if is_timestamp && values.len() > 1 {
                    return Err(DocParsingError::MultipleTimestamps(mapped.path.clone()));
                }
                for value in values {
                    if value.is_array() {
                        return Err(DocParsingError::WrongType {
                            path: mapped.path.clone(),
                            expected: format!(
                                "a {} or a flat array of them",
                                mapped.leaf_type.name()
                            ),
                            got: describe(&value),
                        });
                    }
                    self.add_mapped_value(mapped, value, parsed)?;
                }
                Ok(())
            }
            value => {
                let converted = convert_leaf(mapped, value)?;
                if is_timestamp {
                    if parsed.timestamp.is_some() {
                        return Err(DocParsingError::MultipleTimestamps(mapped.path.clone()));
                    }
                    if let OwnedValue::Date(date_time) = &converted {
                        parsed.timestamp = Some(*date_time);
                    }
                }
                if self
                    .tag_fields
                    .iter()
                    .any(|position| std::ptr::eq(&self.fields[*position], mapped))
                {
                    if let Some(text) = tag_text(&converted) {
                        parsed.tags.push(format!("{}:{text}", mapped.path));
                    }
                }
                parsed.doc.add_field_value(mapped.field, &converted);
                Ok(())
            }
        }
    }
}

pub(super) fn tag_text(value: &OwnedValue) -> Option<String> {
    match value {
        OwnedValue::Str(text) => Some(text.clone()),
        OwnedValue::U64(number) => Some(number.to_string()),
        OwnedValue::I64(number) => Some(number.to_string()),
        OwnedValue::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn convert_leaf(mapped: &MappedField, value: Value) -> Result<OwnedValue, DocParsingError> {
    let wrong_type = |expected: &str, value: &Value| DocParsingError::WrongType {
        path: mapped.path.clone(),
        expected: expected.to_string(),
        got: describe(value),
    };
    // Lossless coercions (numbers in strings, numbers into text) follow Elasticsearch and
    // Quickwit: shippers often stringify numbers.
    match mapped.leaf_type {
        LeafFieldType::Text => match value {
            Value::String(text) => Ok(OwnedValue::Str(text)),
            Value::Number(number) => Ok(OwnedValue::Str(number.to_string())),
            Value::Bool(flag) => Ok(OwnedValue::Str(flag.to_string())),
            other => Err(wrong_type("a string", &other)),
        },
        LeafFieldType::U64 => {
            let parsed = match &value {
                Value::Number(number) => number.as_u64().or_else(|| {
                    number
                        .as_f64()
                        .filter(|float| {
                            float.fract() == 0.0 && *float >= 0.0 && *float < u64::MAX as f64
                        })
                        .map(|float| float as u64)
                }),
                Value::String(text) => text.trim().parse().ok(),
                _ => None,
            };
            parsed
                .map(OwnedValue::U64)
                .ok_or_else(|| wrong_type("an unsigned integer (u64)", &value))
        }
        LeafFieldType::I64 => {
            let parsed = match &value {
                Value::Number(number) => number.as_i64().or_else(|| {
                    number
                        .as_f64()
                        .filter(|float| float.fract() == 0.0 && float.abs() < i64::MAX as f64)
                        .map(|float| float as i64)
                }),
                Value::String(text) => text.trim().parse().ok(),
                _ => None,
            };
            parsed
                .map(OwnedValue::I64)
                .ok_or_else(|| wrong_type("an integer (i64)", &value))
        }
        LeafFieldType::F64 => {
            let parsed = match &value {
                Value::Number(number) => number.as_f64(),
                Value::String(text) => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|float| float.is_finite()),
                _ => None,
            };
            parsed
                .map(OwnedValue::F64)
                .ok_or_else(|| wrong_type("a number (f64)", &value))
        }
        LeafFieldType::Bool => match &value {
            Value::Bool(flag) => Ok(OwnedValue::Bool(*flag)),
            Value::String(text) if text == "true" || text == "false" => {
                Ok(OwnedValue::Bool(text == "true"))
            }
            _ => Err(wrong_type("a boolean", &value)),
        },
        LeafFieldType::Datetime => {
            let formats = &mapped.input_formats;
            let parsed = match &value {
                Value::String(text) => parse_date_time_str(text, formats),
                Value::Number(number) => match number.as_i64() {
                    Some(whole) => parse_date_time_integer(whole, formats),
                    None => number
                        .as_f64()
                        .and_then(|number| parse_date_time_number(number, formats)),
                },
                _ => None,
            };
            parsed.map(OwnedValue::Date).ok_or_else(|| {
                let names: Vec<String> = formats.iter().map(|format| format.to_string()).collect();
                wrong_type(
                    &format!("a datetime in one of the formats [{}]", names.join(", ")),
                    &value,
                )
            })
        }
        LeafFieldType::Ip => match &value {
            Value::String(text) => text
                .trim()
                .parse::<IpAddr>()
                .map(|ip| {
                    OwnedValue::IpAddr(match ip {
                        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                        IpAddr::V6(v6) => v6,
                    })
                })
                .map_err(|_| wrong_type("an IPv4 or IPv6 address", &value)),
            _ => Err(wrong_type("an IPv4 or IPv6 address", &value)),
        },
        LeafFieldType::Bytes => {
            let format = mapped.mapping.input_format.unwrap_or_default();
            match &value {
                Value::String(text) => decode_binary(format, text).map(OwnedValue::Bytes),
                _ => None,
            }
            .ok_or_else(|| wrong_type(binary_format_name(format), &value))
        }
        LeafFieldType::Json => match value {
            Value::Object(object) => Ok(OwnedValue::from(object)),
            other => Err(wrong_type("a JSON object", &other)),
        },
    }
}
