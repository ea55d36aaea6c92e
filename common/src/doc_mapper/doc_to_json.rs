use std::net::Ipv6Addr;

use base64::Engine;
use quarry_config::{BinaryFormat, FieldType, LeafFieldType, OutputFormat, SOURCE_FIELD_NAME};
use serde_json::{Map, Value};
use tantivy::schema::document::{CompactDocValue, ReferenceValue, ReferenceValueLeaf, Value as _};
use tantivy::TantivyDocument;

use super::binary_format::encode_binary;
use super::date_time::{format_date_time, format_rfc3339};
use super::DocMapper;

impl DocMapper {
    /// The bytes the document was indexed from, when the index keeps its source.
    pub fn stored_source<'a>(&self, doc: &'a TantivyDocument) -> Option<&'a [u8]> {
        doc.get_first(self.source_field?)?.as_bytes()
    }

    /// Rebuilds a hit's JSON document from its stored fields: the original source when it
    /// is stored, otherwise mapped fields re-nested by path with the dynamic fields merged in.
    pub fn doc_to_json(&self, doc: &TantivyDocument) -> Map<String, Value> {
        let source = self
            .stored_source(doc)
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(bytes).ok());
        if let Some(source) = source {
            return source;
        }
        let mut out = Map::new();
        for mapped in &self.fields {
            let values: Vec<Value> = if mapped.leaf_type == LeafFieldType::Bytes {
                let format = match &mapped.mapping.output_format {
                    Some(OutputFormat::Binary(format)) => *format,
                    _ => BinaryFormat::default(),
                };
                doc.get_all(mapped.field)
                    .filter_map(|value| value.as_bytes())
                    .map(|bytes| Value::String(encode_binary(format, bytes)))
                    .collect()
            } else if let (LeafFieldType::Datetime, Some(OutputFormat::DateTime(format))) =
                (mapped.leaf_type, &mapped.mapping.output_format)
            {
                doc.get_all(mapped.field)
                    .filter_map(|value| value.as_datetime())
                    .map(|date_time| format_date_time(date_time, format))
                    .collect()
            } else {
                doc.get_all(mapped.field).map(compact_to_json).collect()
            };
            if values.is_empty() {
                continue;
            }
            let value =
                if values.len() == 1 && !matches!(mapped.mapping.field_type, FieldType::Array(_)) {
                    values.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(values)
                };
            insert_path(&mut out, &mapped.path, value);
        }
        if let Some(dynamic_field) = self.dynamic_field {
            for value in doc.get_all(dynamic_field) {
                if let Value::Object(object) = compact_to_json(value) {
                    merge_objects(&mut out, object);
                }
            }
        }
        out.remove(SOURCE_FIELD_NAME);
        out
    }

    /// The `_id` the client gave the document, if any.
    pub fn doc_id(&self, doc: &TantivyDocument) -> Option<String> {
        doc.get_first(self.doc_id_field)
            .and_then(|value| value.as_str())
            .map(str::to_string)
    }
}

fn insert_path(out: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            out.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn merge_objects(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_objects(existing, incoming)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn ip_to_string(ip: Ipv6Addr) -> String {
    match ip.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => ip.to_string(),
    }
}

fn compact_to_json(value: CompactDocValue<'_>) -> Value {
    match value.as_value() {
        ReferenceValue::Leaf(leaf) => leaf_to_json(leaf),
        ReferenceValue::Array(items) => Value::Array(items.map(compact_to_json).collect()),
        ReferenceValue::Object(entries) => Value::Object(
            entries
                .map(|(key, value)| (key.to_string(), compact_to_json(value)))
                .collect(),
        ),
    }
}

fn leaf_to_json(leaf: ReferenceValueLeaf<'_>) -> Value {
    match leaf {
        ReferenceValueLeaf::Null => Value::Null,
        ReferenceValueLeaf::Str(text) => Value::String(text.to_string()),
        ReferenceValueLeaf::U64(number) => Value::from(number),
        ReferenceValueLeaf::I64(number) => Value::from(number),
        ReferenceValueLeaf::F64(number) => serde_json::Number::from_f64(number)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ReferenceValueLeaf::Bool(flag) => Value::Bool(flag),
        ReferenceValueLeaf::Date(date_time) => Value::String(format_rfc3339(date_time)),
        ReferenceValueLeaf::IpAddr(ip) => Value::String(ip_to_string(ip)),
        ReferenceValueLeaf::Bytes(bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        ReferenceValueLeaf::Facet(facet) => Value::String(facet.to_string()),
        ReferenceValueLeaf::PreTokStr(pre_tokenized) => Value::String(pre_tokenized.text.clone()),
        ReferenceValueLeaf::Custom(_) => Value::Null,
    }
}
