//! The paths documents put inside json fields (mapped ones and the dynamic catch-all), read
//! from the fast columns of published splits: what `_field_caps` lists beyond the mapping,
//! so that Grafana and Kibana offer those fields too.

use std::collections::BTreeMap;

use futures::StreamExt;
use quarry_common::metastore::{IndexMetadata, ListSplitsQuery};
use quarry_common::split::SplitOpenInfo;
use quarry_config::{LeafFieldType, TokenizerName};
use tantivy::columnar::ColumnType;

use super::{SearchError, SearchService};

/// Splits looked at, newest first. Each costs one ranged read the first time (then its
/// footer is cached), and the paths logs use change slowly.
const MAX_SPLITS_LISTED: usize = 100;
/// Splits opened concurrently while listing.
const SPLITS_OPENED_AT_ONCE: usize = 8;
/// Tantivy joins the field name and each path segment of a json column with this.
const JSON_PATH_SEPARATOR: char = '\u{1}';

/// One path and value type found inside a json field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonFieldPath {
    /// Dotted, as queries name it: `attributes.http.status_code`, or `user.name` for a
    /// dynamic field.
    pub path: String,
    pub column_type: ColumnType,
    /// The owning json field's settings: how the path is searched.
    pub tokenizer: TokenizerName,
    pub indexed: bool,
}

/// A json field of the schema, and how its paths are named and searched.
struct JsonField {
    schema_name: String,
    /// Prepended to the paths found in it; empty for the dynamic field.
    path_prefix: String,
    tokenizer: TokenizerName,
    indexed: bool,
}

impl SearchService {
    /// The paths the newest published splits of an index hold inside fast json fields,
    /// sorted, each once per value type.
    pub async fn json_field_paths(
        &self,
        index_metadata: &IndexMetadata,
    ) -> Result<Vec<JsonFieldPath>, SearchError> {
        let doc_mapper = self.doc_mapper(index_metadata);
        let mut json_fields: Vec<JsonField> = doc_mapper
            .fields()
            .iter()
            .filter(|mapped| mapped.leaf_type == LeafFieldType::Json && mapped.mapping.fast)
            .map(|mapped| JsonField {
                schema_name: mapped.path.clone(),
                path_prefix: format!("{}.", mapped.path),
                tokenizer: mapped.mapping.effective_tokenizer(),
                indexed: mapped.mapping.indexed,
            })
            .collect();
        if let Some(dynamic) = doc_mapper.dynamic_mapping().filter(|dynamic| dynamic.fast) {
            json_fields.push(JsonField {
                schema_name: quarry_config::DYNAMIC_FIELD_NAME.to_string(),
                path_prefix: String::new(),
                tokenizer: dynamic.tokenizer,
                indexed: dynamic.indexed,
            });
        }
        if json_fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut splits = self
            .metastore
            .list_splits(&index_metadata.index_uid, &ListSplitsQuery::published())
            .await?;
        splits.sort_by_key(|split| std::cmp::Reverse(split.split_metadata.create_timestamp));
        splits.truncate(MAX_SPLITS_LISTED);
        let storage = self
            .resolver
            .resolve(index_metadata.index_uri())
            .map_err(|error| SearchError::Internal(error.to_string()))?;
        // Splits not in the cache cost a ranged read each: a few at once, not in turn.
        let mut columns_of_splits = futures::stream::iter(splits)
            .map(|split| {
                let split_id = split.split_metadata.split_id.clone();
                let info = SplitOpenInfo {
                    storage: storage.clone(),
                    split_path: split_id.file_name(),
                    footer_offsets: split.split_metadata.footer_offsets.clone(),
                    range_cache: Some(self.leaf.range_cache.clone()),
                };
                async move {
                    let failed =
                        |error: String| SearchError::Internal(format!("split {split_id}: {error}"));
                    let open = self
                        .leaf
                        .split_cache
                        .get_or_open(&split_id, info)
                        .await
                        .map_err(|error| failed(error.to_string()))?;
                    tokio::task::spawn_blocking(move || open.fast_columns())
                        .await
                        .map_err(|error| failed(error.to_string()))?
                        .map_err(|error| failed(error.to_string()))
                }
            })
            .buffer_unordered(SPLITS_OPENED_AT_ONCE);
        let mut found: BTreeMap<(String, u8), JsonFieldPath> = BTreeMap::new();
        while let Some(columns) = columns_of_splits.next().await {
            for (column_name, column_type) in columns? {
                if let Some(path) = json_path(&json_fields, &column_name, column_type) {
                    found.insert((path.path.clone(), column_type.to_code()), path);
                }
            }
        }
        Ok(found.into_values().collect())
    }
}

/// The dotted path of a fast column, if it belongs to one of `json_fields`.
fn json_path(
    json_fields: &[JsonField],
    column_name: &str,
    column_type: ColumnType,
) -> Option<JsonFieldPath> {
    let (field_name, inner) = column_name.split_once(JSON_PATH_SEPARATOR)?;
    let json_field = json_fields
        .iter()
        .find(|json_field| json_field.schema_name == field_name)?;
    let inner: String = inner
        .chars()
        .map(|c| if c == JSON_PATH_SEPARATOR { '.' } else { c })
        .collect();
    Some(JsonFieldPath {
        path: format!("{}{inner}", json_field.path_prefix),
        column_type,
        tokenizer: json_field.tokenizer,
        indexed: json_field.indexed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_become_dotted_paths_of_their_field() {
        let fields = [
            JsonField {
                schema_name: "attributes".to_string(),
                path_prefix: "attributes.".to_string(),
                tokenizer: TokenizerName::Raw,
                indexed: true,
            },
            JsonField {
                schema_name: quarry_config::DYNAMIC_FIELD_NAME.to_string(),
                path_prefix: String::new(),
                tokenizer: TokenizerName::Default,
                indexed: true,
            },
        ];
        let path = json_path(
            &fields,
            "attributes\u{1}http\u{1}status_code",
            ColumnType::I64,
        )
        .map(|found| found.path);
        assert_eq!(path.as_deref(), Some("attributes.http.status_code"));
        let dynamic = json_path(&fields, "_dynamic\u{1}user\u{1}name", ColumnType::Str);
        assert_eq!(
            dynamic.map(|found| found.path).as_deref(),
            Some("user.name")
        );
        // Plain fast fields and other json fields are not listed.
        assert!(json_path(&fields, "timestamp", ColumnType::DateTime).is_none());
        assert!(json_path(&fields, "other\u{1}a", ColumnType::Str).is_none());
    }
}
