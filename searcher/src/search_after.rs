//! Deep pagination: the top hits strictly after a cursor, in the total order
//! (sort value, split, doc address) that the root merges by, so that walking pages visits
//! every hit exactly once, across splits and ties.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::sort::{FastKind, SortField, SortKey, SortSpec};

/// Where the previous page ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub sort_key: Option<SortKey>,
    pub split_id: String,
    pub segment_ord: u32,
    pub doc_id: u32,
}

impl Cursor {
    /// The tiebreaker as clients carry it: `split:segment:doc`.
    pub fn tiebreaker(split_id: &str, segment_ord: u32, doc_id: u32) -> String {
        format!("{split_id}:{segment_ord}:{doc_id}")
    }

    pub fn parse_tiebreaker(text: &str) -> Option<(String, u32, u32)> {
        let mut parts = text.rsplitn(3, ':');
        let doc_id = parts.next()?.parse().ok()?;
        let segment_ord = parts.next()?.parse().ok()?;
        let split_id = parts.next()?.to_string();
        Some((split_id, segment_ord, doc_id))
    }

    /// Whether a hit of `split_id` comes after the cursor in the total order.
    pub fn is_before(
        &self,
        sort: &SortSpec,
        sort_key: &Option<SortKey>,
        split_id: &str,
        address: DocAddress,
    ) -> bool {
        match sort.compare(&self.sort_key, sort_key) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => {
                (self.split_id.as_str(), self.segment_ord, self.doc_id)
                    < (split_id, address.segment_ord, address.doc_id)
            }
        }
    }
}

/// Collects the best `limit` hits of one split that come after the cursor, if any. Also
/// the collector for several sort keys, which tantivy's top-docs collectors do not take.
pub(crate) struct AfterCursorCollector {
    pub sort: SortSpec,
    pub cursor: Option<Cursor>,
    pub split_id: String,
    pub limit: usize,
}

pub(crate) struct AfterCursorSegmentCollector {
    sort: SortSpec,
    cursor: Option<Cursor>,
    split_id: String,
    limit: usize,
    segment_ord: SegmentOrdinal,
    /// One per sort key.
    columns: Vec<KeyColumn>,
    hits: Vec<(Option<SortKey>, DocAddress)>,
}

/// Where a sort key's values come from in one segment.
enum KeyColumn {
    /// `_score`, or a field this segment lacks.
    None,
    Numeric(Column<u64>),
    /// Text keys are compared as strings: term ordinals do not compare across splits.
    Str(StrColumn),
}

fn key_value(field: &SortField, column: &KeyColumn, doc: DocId, score: Score) -> Option<SortKey> {
    match (field, column) {
        (SortField::Score, _) => Some(SortKey::Numeric(tantivy::f64_to_u64(f64::from(score)))),
        (_, KeyColumn::Numeric(column)) => column.first(doc).map(SortKey::Numeric),
        (_, KeyColumn::Str(column)) => {
            let ord = column.ords().first(doc)?;
            let mut text = String::new();
            matches!(column.ord_to_str(ord, &mut text), Ok(true)).then_some(SortKey::Text(text))
        }
        (_, KeyColumn::None) => None,
    }
}

fn sort_hits(sort: &SortSpec, hits: &mut Vec<(Option<SortKey>, DocAddress)>, limit: usize) {
    hits.sort_by(|left, right| {
        sort.compare(&left.0, &right.0)
            .then_with(|| left.1.cmp(&right.1))
    });
    hits.truncate(limit);
}

impl Collector for AfterCursorCollector {
    type Fruit = Vec<(Option<SortKey>, DocAddress)>;
    type Child = AfterCursorSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let columns = std::iter::once(&self.sort)
            .chain(&self.sort.then_by)
            .map(|spec| match &spec.field {
                SortField::Score => Ok(KeyColumn::None),
                SortField::FastField {
                    name,
                    kind: FastKind::Str,
                } => Ok(reader
                    .fast_fields()
                    .str(name)?
                    .map_or(KeyColumn::None, KeyColumn::Str)),
                SortField::FastField { name, .. } => Ok(reader
                    .fast_fields()
                    .u64_lenient(name)?
                    .map_or(KeyColumn::None, |(column, _)| KeyColumn::Numeric(column))),
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(AfterCursorSegmentCollector {
            sort: self.sort.clone(),
            cursor: self.cursor.clone(),
            split_id: self.split_id.clone(),
            limit: self.limit,
            segment_ord,
            columns,
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        std::iter::once(&self.sort)
            .chain(&self.sort.then_by)
            .any(|spec| spec.field == SortField::Score)
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut hits: Vec<_> = fruits.into_iter().flatten().collect();
        sort_hits(&self.sort, &mut hits, self.limit);
        Ok(hits)
    }
}

impl SegmentCollector for AfterCursorSegmentCollector {
    type Fruit = Vec<(Option<SortKey>, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let sort_key = if self.sort.then_by.is_empty() {
            key_value(&self.sort.field, &self.columns[0], doc, score)
        } else {
            Some(SortKey::Composite(
                std::iter::once(&self.sort)
                    .chain(&self.sort.then_by)
                    .zip(&self.columns)
                    .map(|(spec, column)| key_value(&spec.field, column, doc, score))
                    .collect(),
            ))
        };
        let address = DocAddress::new(self.segment_ord, doc);
        if let Some(cursor) = &self.cursor {
            if !cursor.is_before(&self.sort, &sort_key, &self.split_id, address) {
                return;
            }
        }
        self.hits.push((sort_key, address));
        // Keep memory bounded: trim to the best `limit` whenever twice that accumulates.
        if self.hits.len() >= self.limit.max(1) * 2 {
            sort_hits(&self.sort, &mut self.hits, self.limit);
        }
    }

    fn harvest(mut self) -> Self::Fruit {
        sort_hits(&self.sort, &mut self.hits, self.limit);
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort::{FastKind, SortOrder};

    #[test]
    fn cursor_orders_by_key_then_split_then_address() {
        let sort = SortSpec {
            field: SortField::FastField {
                name: "ts".to_string(),
                kind: FastKind::Date,
            },
            order: SortOrder::Desc,
            then_by: Vec::new(),
        };
        let cursor = Cursor {
            sort_key: Some(SortKey::Numeric(100)),
            split_id: "B".to_string(),
            segment_ord: 0,
            doc_id: 5,
        };
        let key = |value| Some(SortKey::Numeric(value));
        let at = |doc| DocAddress::new(0, doc);
        assert!(
            cursor.is_before(&sort, &key(99), "A", at(0)),
            "smaller value comes later when descending"
        );
        assert!(!cursor.is_before(&sort, &key(101), "Z", at(9)));
        assert!(
            !cursor.is_before(&sort, &key(100), "A", at(9)),
            "same value, earlier split"
        );
        assert!(
            cursor.is_before(&sort, &key(100), "C", at(0)),
            "same value, later split"
        );
        assert!(cursor.is_before(&sort, &key(100), "B", at(6)));
        assert!(
            !cursor.is_before(&sort, &key(100), "B", at(5)),
            "the cursor itself is not after itself"
        );
        assert!(
            cursor.is_before(&sort, &None, "A", at(0)),
            "missing values come last"
        );
        assert_eq!(
            Cursor::parse_tiebreaker("01ABC:0:42"),
            Some(("01ABC".to_string(), 0, 42))
        );
        assert_eq!(Cursor::parse_tiebreaker("nope"), None);
    }
}
