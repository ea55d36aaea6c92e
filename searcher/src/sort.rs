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
    /// The values of several sort keys, compared key by key with each key's order.
    Composite(Vec<Option<SortKey>>),
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
    /// Keys that break ties of the first one, in order. With any, hits carry a
    /// `SortKey::Composite` of all the keys' values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then_by: Vec<SortSpec>,
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
                    then_by: Vec::new(),
                },
                None => SortSpec {
                    field: SortField::Score,
                    order: SortOrder::Desc,
                    then_by: Vec::new(),
                },
            });
        };
        let mut keys = sort_by
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty());
        let mut spec = Self::parse_key(keys.next().unwrap_or(sort_by), doc_mapper)?;
        for key in keys {
            spec.then_by.push(Self::parse_key(key, doc_mapper)?);
        }
        Ok(spec)
    }

    /// One key: `field`, `-field` or `_score`.
    fn parse_key(sort_by: &str, doc_mapper: &DocMapper) -> Result<SortSpec, String> {
        let (name, order) = match sort_by.strip_prefix('-') {
            Some(name) => (name, SortOrder::Desc),
            None => (sort_by.strip_prefix('+').unwrap_or(sort_by), SortOrder::Asc),
        };
        if name == "_score" {
            // Relevance is always best-first.
            return Ok(SortSpec {
                field: SortField::Score,
                order: SortOrder::Desc,
                then_by: Vec::new(),
            });
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
            then_by: Vec::new(),
        })
    }

    /// The specs of every key, the first one included.
    fn keys(&self) -> impl Iterator<Item = &SortSpec> {
        std::iter::once(self).chain(&self.then_by)
    }

    /// How many values a hit's sort value and a cursor hold.
    pub fn num_keys(&self) -> usize {
        1 + self.then_by.len()
    }

    /// The cursor's key from the first `num_keys` values a client sent back.
    pub fn cursor_key_from_json(
        &self,
        values: &[serde_json::Value],
    ) -> Result<Option<SortKey>, String> {
        if values.len() < self.num_keys() {
            return Err(format!(
                "search_after needs {} sort values (one per sort key), got {}",
                self.num_keys(),
                values.len()
            ));
        }
        if self.then_by.is_empty() {
            return self.key_from_json(&values[0]);
        }
        let keys = self
            .keys()
            .zip(values)
            .map(|(spec, value)| spec.key_from_json(value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SortKey::Composite(keys)))
    }

    /// The sort value as clients see it: numbers in the field's type, dates in epoch
    /// milliseconds (as Elasticsearch shows them), text as is.
    pub fn key_to_json(&self, key: &SortKey) -> serde_json::Value {
        use tantivy::columnar::MonotonicallyMappableToU64;
        let encoded = match key {
            SortKey::Text(text) => return serde_json::Value::String(text.clone()),
            SortKey::Numeric(encoded) => *encoded,
            SortKey::Composite(keys) => {
                return serde_json::Value::Array(
                    self.keys()
                        .zip(keys)
                        .map(|(spec, key)| match key {
                            Some(key) => spec.key_to_json(key),
                            None => serde_json::Value::Null,
                        })
                        .collect(),
                )
            }
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
                FastKind::Str => SortKey::Text(value.as_str().ok_or_else(invalid)?.to_string()),
            },
        };
        Ok(Some(key))
    }

    /// Orders two hits best-first; hits without a value come last in either order.
    pub fn compare(&self, left: &Option<SortKey>, right: &Option<SortKey>) -> Ordering {
        if let (Some(SortKey::Composite(left)), Some(SortKey::Composite(right))) = (left, right) {
            return self
                .keys()
                .zip(left.iter().zip(right))
                .map(|(spec, (left, right))| spec.compare_one(left, right))
                .find(|ordering| ordering.is_ne())
                .unwrap_or(Ordering::Equal);
        }
        self.compare_one(left, right)
    }

    fn compare_one(&self, left: &Option<SortKey>, right: &Option<SortKey>) -> Ordering {
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
                then_by: Vec::new(),
            };
            assert_eq!(spec.compare(&key(1), &None), Ordering::Less);
            assert_eq!(spec.compare(&None, &key(1)), Ordering::Greater);
        }
        let desc = SortSpec {
            field: SortField::Score,
            order: SortOrder::Desc,
            then_by: Vec::new(),
        };
        assert_eq!(desc.compare(&key(2), &key(1)), Ordering::Less);
    }

    #[test]
    fn composite_keys_compare_key_by_key_with_their_own_order() {
        let numeric = |name: &str, order| SortSpec {
            field: SortField::FastField {
                name: name.to_string(),
                kind: FastKind::U64,
            },
            order,
            then_by: Vec::new(),
        };
        let mut spec = numeric("level", SortOrder::Asc);
        spec.then_by.push(numeric("ts", SortOrder::Desc));
        let key = |level, ts: Option<u64>| {
            Some(SortKey::Composite(vec![
                Some(SortKey::Numeric(level)),
                ts.map(SortKey::Numeric),
            ]))
        };
        assert_eq!(
            spec.compare(&key(1, Some(5)), &key(2, Some(9))),
            Ordering::Less
        );
        assert_eq!(
            spec.compare(&key(1, Some(9)), &key(1, Some(5))),
            Ordering::Less
        );
        assert_eq!(
            spec.compare(&key(1, Some(0)), &key(1, None)),
            Ordering::Less
        );
        let json = spec.key_to_json(key(1, None).as_ref().unwrap());
        assert_eq!(json, serde_json::json!([1, null]));
        let values = [
            serde_json::json!(1),
            serde_json::json!("7"),
            serde_json::json!("tie"),
        ];
        assert_eq!(spec.cursor_key_from_json(&values).unwrap(), key(1, Some(7)));
        assert!(spec.cursor_key_from_json(&values[..1]).is_err());
    }
}
