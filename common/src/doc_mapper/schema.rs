use std::collections::HashSet;

use quarry_config::{
    DatePrecision, DocMapping, FieldMapping, FieldType, IndexRecord, LeafFieldType, TokenizerName,
    DOC_ID_FIELD_NAME, DYNAMIC_FIELD_NAME, SOURCE_FIELD_NAME,
};
use tantivy::schema::{
    BytesOptions, DateOptions, DateTimePrecision, IndexRecordOption, IpAddrOptions,
    JsonObjectOptions, NumericOptions, Schema, SchemaBuilder, TextFieldIndexing, TextOptions,
};

use super::log_ids::{LOG_LINE_FIELD_NAME, LOG_POSITION_FIELD_NAME, LOG_SHARD_FIELD_NAME};
use super::MappedField;

/// Fast text columns keep the raw value: aggregations and sorting see what was sent.
const FAST_NORMALIZER: &str = "raw";

pub(super) struct BuiltSchema {
    pub schema: Schema,
    pub fields: Vec<MappedField>,
    pub object_paths: HashSet<String>,
    pub dynamic_field: Option<tantivy::schema::Field>,
    pub source_field: Option<tantivy::schema::Field>,
    pub doc_id_field: tantivy::schema::Field,
    pub log_id_fields: LogIdFields,
}

/// The columns a document's stable id is read from when the client gave none.
#[derive(Clone, Copy, Debug)]
pub struct LogIdFields {
    pub shard: tantivy::schema::Field,
    pub position: tantivy::schema::Field,
    pub line: tantivy::schema::Field,
}

fn index_record(record: IndexRecord) -> IndexRecordOption {
    match record {
        IndexRecord::Basic => IndexRecordOption::Basic,
        IndexRecord::Freq => IndexRecordOption::WithFreqs,
        IndexRecord::Position => IndexRecordOption::WithFreqsAndPositions,
    }
}

fn text_indexing(
    tokenizer: TokenizerName,
    record: IndexRecord,
    fieldnorms: bool,
) -> TextFieldIndexing {
    TextFieldIndexing::default()
        .set_tokenizer(tokenizer.as_str())
        .set_index_option(index_record(record))
        .set_fieldnorms(fieldnorms)
}

fn date_precision(precision: DatePrecision) -> DateTimePrecision {
    match precision {
        DatePrecision::Seconds => DateTimePrecision::Seconds,
        DatePrecision::Milliseconds => DateTimePrecision::Milliseconds,
        DatePrecision::Microseconds => DateTimePrecision::Microseconds,
        DatePrecision::Nanoseconds => DateTimePrecision::Nanoseconds,
    }
}

/// Numeric, date, IP and bytes options share `set_indexed`/`set_stored`/`set_fast` but no
/// trait: one macro applies a mapping's flags to any of them.
macro_rules! with_flags {
    ($options:expr, $mapping:expr) => {{
        let mut options = $options;
        if $mapping.indexed {
            options = options.set_indexed();
        }
        if $mapping.stored {
            options = options.set_stored();
        }
        if $mapping.fast {
            options = options.set_fast();
        }
        options
    }};
}

fn numeric_options(mapping: &FieldMapping) -> NumericOptions {
    with_flags!(NumericOptions::default(), mapping)
}

fn add_leaf(
    builder: &mut SchemaBuilder,
    path: &str,
    leaf: LeafFieldType,
    mapping: &FieldMapping,
) -> tantivy::schema::Field {
    match leaf {
        LeafFieldType::Text => {
            let mut options = TextOptions::default();
            if mapping.indexed {
                options = options.set_indexing_options(text_indexing(
                    mapping.effective_tokenizer(),
                    mapping.effective_record(),
                    mapping.fieldnorms,
                ));
            }
            if mapping.stored {
                options = options.set_stored();
            }
            if mapping.fast {
                options = options.set_fast(FAST_NORMALIZER);
            }
            builder.add_text_field(path, options)
        }
        LeafFieldType::U64 => builder.add_u64_field(path, numeric_options(mapping)),
        LeafFieldType::I64 => builder.add_i64_field(path, numeric_options(mapping)),
        LeafFieldType::F64 => builder.add_f64_field(path, numeric_options(mapping)),
        LeafFieldType::Bool => builder.add_bool_field(path, numeric_options(mapping)),
        LeafFieldType::Datetime => {
            let options = DateOptions::default()
                .set_precision(date_precision(mapping.effective_fast_precision()));
            builder.add_date_field(path, with_flags!(options, mapping))
        }
        LeafFieldType::Ip => {
            builder.add_ip_addr_field(path, with_flags!(IpAddrOptions::default(), mapping))
        }
        LeafFieldType::Bytes => {
            builder.add_bytes_field(path, with_flags!(BytesOptions::default(), mapping))
        }
        LeafFieldType::Json => {
            let options = json_options(
                mapping.indexed,
                mapping.stored,
                mapping.fast,
                mapping.effective_tokenizer(),
                mapping.effective_record(),
                mapping.fieldnorms,
                mapping.effective_expand_dots(),
            );
            builder.add_json_field(path, options)
        }
    }
}

fn json_options(
    indexed: bool,
    stored: bool,
    fast: bool,
    tokenizer: TokenizerName,
    record: IndexRecord,
    fieldnorms: bool,
    expand_dots: bool,
) -> JsonObjectOptions {
    let mut options = JsonObjectOptions::default();
    if indexed {
        options = options.set_indexing_options(text_indexing(tokenizer, record, fieldnorms));
    }
    if stored {
        options = options.set_stored();
    }
    if fast {
        options = options.set_fast(FAST_NORMALIZER);
    }
    if expand_dots {
        options = options.set_expand_dots_enabled();
    }
    options
}

pub(super) fn build_schema(doc_mapping: &DocMapping) -> BuiltSchema {
    let mut builder = Schema::builder();
    let mut fields = Vec::new();
    let mut object_paths = HashSet::new();
    collect_object_paths("", &doc_mapping.field_mappings, &mut object_paths);
    for (path, mapping) in doc_mapping.leaf_fields() {
        let Some(leaf_type) = mapping.field_type.leaf() else {
            continue;
        };
        // The source is the stored copy of every field: the doc store would hold it twice.
        let field = if doc_mapping.store_source && mapping.stored {
            let unstored = FieldMapping {
                stored: false,
                ..mapping.clone()
            };
            add_leaf(&mut builder, &path, leaf_type, &unstored)
        } else {
            add_leaf(&mut builder, &path, leaf_type, mapping)
        };
        fields.push(MappedField {
            path,
            field,
            leaf_type,
            input_formats: mapping.effective_input_formats(),
            mapping: mapping.clone(),
        });
    }
    let dynamic_field = (doc_mapping.mode == quarry_config::Mode::Dynamic).then(|| {
        let dynamic = &doc_mapping.dynamic_mapping;
        builder.add_json_field(
            DYNAMIC_FIELD_NAME,
            json_options(
                dynamic.indexed,
                dynamic.stored && !doc_mapping.store_source,
                dynamic.fast,
                dynamic.tokenizer,
                dynamic.record,
                false,
                dynamic.expand_dots,
            ),
        )
    });
    // Bytes, not a json field: tantivy would turn date-like strings into dates and give
    // them back reformatted, while the source must come back as it was sent. Not stored by
    // tantivy: the source store plugin (`split::source_store`) keeps it.
    let source_field = doc_mapping
        .store_source
        .then(|| builder.add_bytes_field(SOURCE_FIELD_NAME, BytesOptions::default()));
    let doc_id_field = builder.add_text_field(
        DOC_ID_FIELD_NAME,
        TextOptions::default()
            .set_indexing_options(text_indexing(TokenizerName::Raw, IndexRecord::Basic, false))
            .set_stored(),
    );
    // Last, so that the fields before keep the numbers they have in splits written
    // before these columns existed: queries built from this schema still fit those.
    let log_id_column = || NumericOptions::default().set_fast();
    let log_id_fields = LogIdFields {
        shard: builder.add_u64_field(LOG_SHARD_FIELD_NAME, log_id_column()),
        position: builder.add_u64_field(LOG_POSITION_FIELD_NAME, log_id_column()),
        line: builder.add_u64_field(LOG_LINE_FIELD_NAME, log_id_column()),
    };
    BuiltSchema {
        doc_id_field,
        log_id_fields,
        schema: builder.build(),
        fields,
        object_paths,
        dynamic_field,
        source_field,
    }
}

fn collect_object_paths(prefix: &str, mappings: &[FieldMapping], out: &mut HashSet<String>) {
    for mapping in mappings {
        if mapping.field_type == FieldType::Object {
            let path = if prefix.is_empty() {
                mapping.name.clone()
            } else {
                format!("{prefix}.{}", mapping.name)
            };
            collect_object_paths(&path, &mapping.field_mappings, out);
            out.insert(path);
        }
    }
}
