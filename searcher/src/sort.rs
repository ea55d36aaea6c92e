use std::cmp::Ordering;

use quarry_common::doc_mapper::{DocMapper, ResolvedField};
use quarry_config::LeafFieldType;
use serde::{Deserialize, Serialize};

/// The value a hit is ranked by. Fast values are kept in tantivy's order-preserving u64
/// form so that hits from different splits compare directly.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SortKey {
    Numeric(u64),
    Text(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortField {
    Score,
    FastField { name: String, kind: FastKind },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FastKind {
    U64,
    I64,
    F64,
    Bool,
    Date,
    Str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortSpec {
    pub field: SortField,
    pub order: SortOrder,
}

impl SortSpec {
    /// Parses `sort_by` (`field` ascending, `-field` descending, `_score`). Without one:
    /// newest first, or by relevance when the index has no timestamp field.
    pub fn parse(sort_by: Option<&str>, doc_mapper: &DocMapper) -> Result<SortSpec, String> {
        let Some(sort_by) = sort_by.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(match doc_mapper.timestamp_field() {
                Some(timestamp) => SortSpec {
                    field: SortField::FastField {
                        name: timestamp.path.clone(),
                        kind: FastKind::Date,
                    },
                    order: SortOrder::Desc,
                },
                None => SortSpec {
                    field: SortField::Score,
                    order: SortOrder::Desc,
                },
            });
        };
        let (name, order) = match sort_by.strip_prefix('-') {
            Some(name) => (name, SortOrder::Desc),
            None => (sort_by.strip_prefix('+').unwrap_or(sort_by), SortOrder::Asc),
        };
        if name == "_score" {
            // Relevance is always best-first.
            return Ok(SortSpec {
                field: SortField::Score,
                order: SortOrder::Desc,
            });
        }
        if name.contains(',') {
            return Err(format!(
                "sorting by several fields (`{sort_by}`) is not supported yet: give one field"
            ));
        }
        let resolved = doc_mapper.resolve_field(name)?;
        let ResolvedField::Mapped(mapped) = resolved else {
            return Err(format!(
                "cannot sort by `{name}`: sorting by paths inside json fields is not supported yet"
            ));
        };
        if !mapped.mapping.fast {
            return Err(format!(
                "cannot sort by `{name}`: it is not a fast field (set `fast: true` in its mapping)"
            ));
        }
        let kind = match mapped.leaf_type {
            LeafFieldType::U64 => FastKind::U64,
            LeafFieldType::I64 => FastKind::I64,
            LeafFieldType::F64 => FastKind::F64,
            LeafFieldType::Bool => FastKind::Bool,
            LeafFieldType::Datetime => FastKind::Date,
            LeafFieldType::Text => FastKind::Str,
            other => {
                return Err(format!(
                    "cannot sort by `{name}`: sorting by `{}` fields is not supported",
                    other.name()
                ))
            }
        };
        Ok(SortSpec {
            field: SortField::FastField {
                name: mapped.path.clone(),
                kind,
            },
            order,
        })
    }

    /// The sort value as clients see it: numbers in the field's type, dates in epoch
    /// milliseconds (as Elasticsearch shows them), text as is.
    pub fn key_to_json(&self, key: &SortKey) -> serde_json::Value {
        use tantivy::columnar::MonotonicallyMappableToU64;
        let encoded = match key {
            SortKey::Text(text) => return serde_json::Value::String(text.clone()),
            SortKey::Numeric(encoded) => *encoded,
        };
        match &self.field {
            SortField::Score => serde_json::json!(f64::from_u64(encoded)),
            SortField::FastField { kind, .. } => match kind {
                FastKind::U64 => serde_json::json!(encoded),
                FastKind::I64 => serde_json::json!(i64::from_u64(encoded)),
                FastKind::F64 => serde_json::json!(f64::from_u64(encoded)),
                FastKind::Bool => serde_json::json!(encoded != 0),
                // Nanoseconds, as Elasticsearch shows `date_nanos` sort values: a cursor
                // must keep the full precision or ties within a millisecond get lost.
                FastKind::Date => serde_json::json!(i64::from_u64(encoded)),
                FastKind::Str => serde_json::json!(encoded),
            },
        }
    }

    /// The inverse of `key_to_json`, for cursors sent back by clients.
    pub fn key_from_json(&self, value: &serde_json::Value) -> Result<Option<SortKey>, String> {
        use tantivy::columnar::MonotonicallyMappableToU64;
        if value.is_null() {
            return Ok(None);
        }
        let invalid =
            || format!("search_after value `{value}` does not match the sort field's type");
        // Nanosecond dates are past what JavaScript numbers hold exactly, so clients may
        // send any numeric cursor value as a string.
        let text = value.as_str();
        let as_u64 = || value.as_u64().or_else(|| text?.parse().ok());
        let as_i64 = || value.as_i64().or_else(|| text?.parse().ok());
        let as_f64 = || value.as_f64().or_else(|| text?.parse().ok());
        let key = match &self.field {
            SortField::Score => SortKey::Numeric(as_f64().ok_or_else(invalid)?.to_u64()),
            SortField::FastField { kind, .. } => match kind {
                FastKind::U64 => SortKey::Numeric(as_u64().ok_or_else(invalid)?),
                FastKind::I64 | FastKind::Date => {
                    SortKey::Numeric(as_i64().ok_or_else(invalid)?.to_u64())
                }
                FastKind::F64 => SortKey::Numeric(as_f64().ok_or_else(invalid)?.to_u64()),
                FastKind::Bool => SortKey::Numeric(u64::from(value.as_bool().ok_or_else(invalid)?)),
                FastKind::Str => {
                    return Err(
                        "search_after is not supported when sorting by a text field".to_string()
                    )
                }
            },
        };
        Ok(Some(key))
    }

    /// Orders two hits best-first; hits without a value come last in either order.
    pub fn compare(&self, left: &Option<SortKey>, right: &Option<SortKey>) -> Ordering {
        match (left, right) {
            (Some(left), Some(right)) => match self.order {
                SortOrder::Asc => left.cmp(right),
                SortOrder::Desc => right.cmp(left),
            },
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_sort_last_in_both_orders() {
        let key = |value| Some(SortKey::Numeric(value));
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let spec = SortSpec {
                field: SortField::Score,
                order,
            };
            assert_eq!(spec.compare(&key(1), &None), Ordering::Less);
            assert_eq!(spec.compare(&None, &key(1)), Ordering::Greater);
        }
        let desc = SortSpec {
            field: SortField::Score,
            order: SortOrder::Desc,
        };
        assert_eq!(desc.compare(&key(2), &key(1)), Ordering::Less);
    }
}
