//! The stable-log merge policy: which published splits of an index merge together.
//!
//! Small splits are grouped in levels by size: level 0 below `min_level_num_docs`, each
//! next level `merge_factor` times bigger. When a level holds `merge_factor` splits of one
//! partition, the oldest of them (at most `max_merge_factor`, and no more documents than
//! `split_num_docs_target`) merge into one split of a higher level. Every document is thus
//! rewritten about log_{merge_factor}(target / min_level_num_docs) times, and a steady
//! stream of commits keeps a bounded number of splits per level.

use std::collections::BTreeMap;

use quarry_common::metastore::{Split, SplitMaturity};
use quarry_config::{IndexingSettings, MergePolicyConfig, StableLogMergePolicyConfig};

/// Splits to merge into one.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOperation {
    pub splits: Vec<Split>,
}

impl MergeOperation {
    pub fn num_docs(&self) -> u64 {
        self.splits
            .iter()
            .map(|split| split.split_metadata.num_docs)
            .sum()
    }
}

/// The maturity of a new split: one at the document target never merges again; others
/// may merge until the maturation period has passed.
pub fn split_maturity(num_docs: u64, settings: &IndexingSettings) -> SplitMaturity {
    match &settings.merge_policy {
        MergePolicyConfig::NoMerge => SplitMaturity::Mature,
        MergePolicyConfig::StableLog(_) if num_docs >= settings.split_num_docs_target => {
            SplitMaturity::Mature
        }
        MergePolicyConfig::StableLog(policy) => SplitMaturity::Immature {
            maturation_period_secs: policy.maturation_period_secs().unwrap_or(48 * 3600),
        },
    }
}

fn is_mergeable(split: &Split, target: u64, now_secs: i64) -> bool {
    let metadata = &split.split_metadata;
    if metadata.num_docs >= target {
        return false;
    }
    match metadata.maturity {
        SplitMaturity::Mature => false,
        SplitMaturity::Immature {
            maturation_period_secs,
        } => {
            metadata
                .create_timestamp
                .saturating_add(maturation_period_secs as i64)
                > now_secs
        }
    }
}

fn level(num_docs: u64, policy: &StableLogMergePolicyConfig) -> u32 {
    let mut level = 0;
    let mut bound = policy.min_level_num_docs.max(1);
    while num_docs >= bound {
        level += 1;
        bound = bound.saturating_mul(policy.merge_factor as u64);
    }
    level
}

/// The merges to run now over an index's published splits. Operations never share a split.
pub fn plan_merges(
    published: &[Split],
    settings: &IndexingSettings,
    now_secs: i64,
) -> Vec<MergeOperation> {
    let MergePolicyConfig::StableLog(policy) = &settings.merge_policy else {
        return Vec::new();
    };
    let target = settings.split_num_docs_target;
    // (partition, schema, level) → splits, oldest first (split ids are ULIDs: creation
    // order). tantivy cannot merge segments of different schemas.
    let mut groups: BTreeMap<(u64, u64, u32), Vec<&Split>> = BTreeMap::new();
    for split in published {
        if is_mergeable(split, target, now_secs) {
            let metadata = &split.split_metadata;
            let level = level(metadata.num_docs, policy);
            groups
                .entry((metadata.partition_id, metadata.schema_fingerprint, level))
                .or_default()
                .push(split);
        }
    }
    let mut operations = Vec::new();
    for splits in groups.values_mut() {
        splits.sort_by(|left, right| {
            left.split_metadata
                .split_id
                .cmp(&right.split_metadata.split_id)
        });
        let mut remaining: &[&Split] = splits;
        while remaining.len() >= policy.merge_factor {
            let mut taken = 0;
            let mut num_docs = 0u64;
            for split in remaining.iter().take(policy.max_merge_factor) {
                if taken >= policy.merge_factor && num_docs + split.split_metadata.num_docs > target
                {
                    break;
                }
                num_docs += split.split_metadata.num_docs;
                taken += 1;
            }
            operations.push(MergeOperation {
                splits: remaining[..taken]
                    .iter()
                    .map(|split| (*split).clone())
                    .collect(),
            });
            remaining = &remaining[taken..];
        }
    }
    operations
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use quarry_common::metastore::{SplitMetadata, SplitState};
    use quarry_common::{IndexUid, SplitId};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn settings(merge_factor: usize, max_merge_factor: usize) -> IndexingSettings {
        IndexingSettings {
            split_num_docs_target: 1_000_000,
            merge_policy: MergePolicyConfig::StableLog(StableLogMergePolicyConfig {
                min_level_num_docs: 1_000,
                merge_factor,
                max_merge_factor,
                maturation_period: "48h".to_string(),
            }),
            ..IndexingSettings::default()
        }
    }

    fn split(ordinal: u64, num_docs: u64, partition_id: u64, age_secs: i64) -> Split {
        // Ids sort like creation order, as ULIDs do.
        let split_id: SplitId = format!("01H{ordinal:023}").parse().unwrap();
        Split {
            split_metadata: SplitMetadata {
                split_id,
                index_uid: IndexUid::new("logs"),
                source_id: "ingest".to_string(),
                partition_id,
                num_docs,
                uncompressed_docs_size_bytes: num_docs * 100,
                file_size_bytes: num_docs * 30,
                time_range: None,
                create_timestamp: NOW - age_secs,
                maturity: SplitMaturity::Immature {
                    maturation_period_secs: 48 * 3600,
                },
                tags: BTreeSet::new(),
                footer_offsets: 0..0,
                num_merge_ops: 0,
                delete_opstamp: 0,
                schema_fingerprint: 0,
            },
            split_state: SplitState::Published,
            update_timestamp: NOW,
            publish_timestamp: Some(NOW),
        }
    }

    fn ordinals(operations: &[MergeOperation]) -> Vec<Vec<u64>> {
        operations
            .iter()
            .map(|operation| {
                operation
                    .splits
                    .iter()
                    .map(|split| {
                        split.split_metadata.split_id.to_string()[3..]
                            .parse()
                            .unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_level_merges_once_it_holds_merge_factor_splits() {
        let settings = settings(3, 4);
        let three: Vec<Split> = (0..2).map(|n| split(n, 100, 0, 60)).collect();
        assert!(
            plan_merges(&three, &settings, NOW).is_empty(),
            "2 < merge_factor"
        );
        let splits: Vec<Split> = (0..7).map(|n| split(n, 100, 0, 60)).collect();
        // The oldest first, up to max_merge_factor per merge; the 3 left over merge too.
        assert_eq!(
            ordinals(&plan_merges(&splits, &settings, NOW)),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6]]
        );
    }

    #[test]
    fn levels_and_partitions_do_not_mix() {
        let settings = settings(3, 3);
        let splits = vec![
            split(0, 100, 0, 60),
            split(1, 5_000, 0, 60),
            split(2, 100, 1, 60),
            split(3, 100, 0, 60),
            split(4, 5_000, 0, 60),
            split(5, 100, 1, 60),
            split(6, 100, 0, 60),
            split(7, 5_000, 0, 60),
        ];
        assert_eq!(
            ordinals(&plan_merges(&splits, &settings, NOW)),
            vec![vec![0, 3, 6], vec![1, 4, 7]]
        );
    }

    #[test]
    fn splits_of_different_schemas_do_not_mix() {
        let settings = settings(2, 4);
        let with_schema = |ordinal, fingerprint| {
            let mut split = split(ordinal, 100, 0, 60);
            split.split_metadata.schema_fingerprint = fingerprint;
            split
        };
        // Splits from before an upgrade, and after it (a schema with new columns).
        let splits = vec![
            with_schema(0, 0),
            with_schema(1, 7),
            with_schema(2, 0),
            with_schema(3, 7),
            with_schema(4, 9),
        ];
        assert_eq!(
            ordinals(&plan_merges(&splits, &settings, NOW)),
            vec![vec![0, 2], vec![1, 3]]
        );
    }

    #[test]
    fn mature_old_and_full_splits_stay_out() {
        let settings = settings(2, 2);
        let mut mature = split(0, 100, 0, 60);
        mature.split_metadata.maturity = SplitMaturity::Mature;
        let splits = vec![
            mature,
            split(1, 100, 0, 49 * 3600),
            split(2, 1_000_000, 0, 60),
            split(3, 100, 0, 60),
        ];
        assert!(plan_merges(&splits, &settings, NOW).is_empty());
        let no_merge = IndexingSettings {
            merge_policy: MergePolicyConfig::NoMerge,
            ..settings.clone()
        };
        let fresh: Vec<Split> = (0..4).map(|n| split(n, 100, 0, 60)).collect();
        assert!(plan_merges(&fresh, &no_merge, NOW).is_empty());
    }

    #[test]
    fn a_merge_stops_at_the_document_target() {
        let settings = settings(2, 10);
        // 400k each in level 3 (100k..1M): the first two reach 800k, a third would pass
        // the 1M target.
        let splits: Vec<Split> = (0..5).map(|n| split(n, 400_000, 0, 60)).collect();
        assert_eq!(
            ordinals(&plan_merges(&splits, &settings, NOW)),
            vec![vec![0, 1], vec![2, 3]]
        );
    }

    #[test]
    fn new_splits_at_the_target_are_born_mature() {
        let settings = settings(10, 12);
        assert_eq!(split_maturity(1_000_000, &settings), SplitMaturity::Mature);
        assert_eq!(
            split_maturity(10, &settings),
            SplitMaturity::Immature {
                maturation_period_secs: 48 * 3600
            }
        );
    }
}
