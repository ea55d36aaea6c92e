//! The doc mapper: an index's `doc_mapping` turned into a tantivy schema, JSON documents
//! turned into tantivy documents (and back), and field lookup for queries. Indexers and
//! searchers build the same `DocMapper` from the same config, so they agree on every field.

mod binary_format;
mod date_time;
mod direct;
mod doc_to_json;
mod json_to_doc;
pub mod log_ids;
mod schema;

use std::collections::{HashMap, HashSet};

use quarry_config::{
    DateTimeInputFormat, DocMapping, DynamicMapping, FieldMapping, IndexConfig, LeafFieldType, Mode,
};
use tantivy::schema::{Field, Schema};

pub use binary_format::{binary_format_name, decode_binary, encode_binary};
pub use date_time::{
    format_rfc3339, parse_date_time_integer, parse_date_time_number, parse_date_time_str,
};
pub use json_to_doc::{DocParsingError, ParsedDoc};
pub use log_ids::{shard_hash, LogDocId};
pub use schema::LogIdFields;

/// Tag values listed per split and field before the field is recorded as "too many".
pub const MAX_TAG_VALUES_PER_FIELD: usize = 1_000;

/// A leaf field of the mapping, by its dotted path.
#[derive(Clone, Debug)]
pub struct MappedField {
    pub path: String,
    pub field: Field,
    pub leaf_type: LeafFieldType,
    pub mapping: FieldMapping,
    /// `mapping.effective_input_formats()`, worked out once rather than per value.
    pub input_formats: Vec<DateTimeInputFormat>,
}

/// Where a query's field name points.
#[derive(Clone, Debug)]
pub enum ResolvedField<'a> {
    /// A field of the mapping.
    Mapped(&'a MappedField),
    /// A path inside a json field (a mapped one, or the dynamic catch-all).
    JsonPath {
        field: Field,
        field_name: String,
        json_path: String,
        expand_dots: bool,
        tokenizer: quarry_config::TokenizerName,
        fast: bool,
        has_positions: bool,
    },
}

#[derive(Clone, Debug)]
pub struct DocMapper {
    schema: Schema,
    mode: Mode,
    dynamic_mapping: DynamicMapping,
    fields: Vec<MappedField>,
    by_path: HashMap<String, usize>,
    /// Paths of mapped `object` fields, where documents may nest further keys.
    object_paths: HashSet<String>,
    dynamic_field: Option<Field>,
    source_field: Option<Field>,
    doc_id_field: Field,
    log_id_fields: LogIdFields,
    timestamp_field: Option<usize>,
    tag_fields: Vec<usize>,
    default_search_fields: Vec<String>,
}

impl DocMapper {
    pub fn new(index_config: &IndexConfig) -> DocMapper {
        let doc_mapping: &DocMapping = &index_config.doc_mapping;
        let built = schema::build_schema(doc_mapping);
        let by_path: HashMap<String, usize> = built
            .fields
            .iter()
            .enumerate()
            .map(|(position, field)| (field.path.clone(), position))
            .collect();
        let timestamp_field = doc_mapping
            .timestamp_field
            .as_ref()
            .and_then(|path| by_path.get(path).copied());
        let tag_fields = doc_mapping
            .tag_fields
            .iter()
            .filter_map(|path| by_path.get(path).copied())
            .collect();
        DocMapper {
            schema: built.schema,
            mode: doc_mapping.mode,
            dynamic_mapping: doc_mapping.dynamic_mapping.clone(),
            fields: built.fields,
            by_path,
            object_paths: built.object_paths,
            dynamic_field: built.dynamic_field,
            source_field: built.source_field,
            doc_id_field: built.doc_id_field,
            log_id_fields: built.log_id_fields,
            timestamp_field,
            tag_fields,
            default_search_fields: index_config.search_settings.default_search_fields.clone(),
        }
    }

    /// The column of documents' stable ids (`_id`): the client's, or the one `_bulk` gave.
    pub fn doc_id_field(&self) -> Field {
        self.doc_id_field
    }

    /// Gives a document the stable id of where it was logged (`log_ids`), unless the client
    /// gave it one.
    pub fn add_log_id(&self, doc: &mut tantivy::TantivyDocument, id: LogDocId) {
        if doc.get_first(self.doc_id_field).is_some() {
            return;
        }
        doc.add_u64(self.log_id_fields.shard, id.shard);
        doc.add_u64(self.log_id_fields.position, id.position);
        doc.add_u64(self.log_id_fields.line, id.line);
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Where documents carry their source on the way into the index (`store_source`).
    /// Hits read it back from the split's source store.
    pub fn source_field(&self) -> Option<Field> {
        self.source_field
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn fields(&self) -> &[MappedField] {
        &self.fields
    }

    /// How fields outside the mapping are indexed, in `dynamic` mode.
    pub fn dynamic_mapping(&self) -> Option<&DynamicMapping> {
        self.dynamic_field.map(|_| &self.dynamic_mapping)
    }

    pub fn timestamp_field(&self) -> Option<&MappedField> {
        self.timestamp_field.map(|position| &self.fields[position])
    }

    pub fn default_search_fields(&self) -> &[String] {
        &self.default_search_fields
    }

    pub fn tag_fields(&self) -> impl Iterator<Item = &MappedField> {
        self.tag_fields
            .iter()
            .map(|position| &self.fields[*position])
    }

    /// Resolves a field name from a query: an exact mapped path, a path inside a json
    /// field, or (in dynamic mode) a path inside the catch-all field.
    pub fn resolve_field(&self, path: &str) -> Result<ResolvedField<'_>, String> {
        if let Some(position) = self.by_path.get(path) {
            let mapped = &self.fields[*position];
            if mapped.leaf_type != LeafFieldType::Json {
                return Ok(ResolvedField::Mapped(mapped));
            }
            return Ok(self.json_path_in(mapped, ""));
        }
        // The longest mapped json field that prefixes the path owns it.
        let mut prefix_end = path.len();
        while let Some(dot) = path[..prefix_end].rfind('.') {
            if let Some(position) = self.by_path.get(&path[..dot]) {
                let mapped = &self.fields[*position];
                if mapped.leaf_type == LeafFieldType::Json {
                    return Ok(self.json_path_in(mapped, &path[dot + 1..]));
                }
                return Err(format!(
                    "field `{}` is a `{}`, it has no sub-field `{}`",
                    mapped.path,
                    mapped.leaf_type.name(),
                    &path[dot + 1..]
                ));
            }
            prefix_end = dot;
        }
        match (self.mode, self.dynamic_field) {
            (Mode::Dynamic, Some(field)) => Ok(ResolvedField::JsonPath {
                field,
                field_name: self.schema.get_field_name(field).to_string(),
                json_path: path.to_string(),
                expand_dots: self.dynamic_mapping.expand_dots,
                tokenizer: self.dynamic_mapping.tokenizer,
                fast: self.dynamic_mapping.fast,
                has_positions: self.dynamic_mapping.record == quarry_config::IndexRecord::Position,
            }),
            _ => Err(format!(
                "unknown field `{path}`: it is not in the index's doc mapping"
            )),
        }
    }

    fn json_path_in(&self, mapped: &MappedField, json_path: &str) -> ResolvedField<'_> {
        ResolvedField::JsonPath {
            field: mapped.field,
            field_name: mapped.path.clone(),
            json_path: json_path.to_string(),
            expand_dots: mapped.mapping.effective_expand_dots(),
            tokenizer: mapped.mapping.effective_tokenizer(),
            fast: mapped.mapping.fast,
            has_positions: mapped.mapping.effective_record()
                == quarry_config::IndexRecord::Position,
        }
    }
}

#[cfg(test)]
mod tests;
