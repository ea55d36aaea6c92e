use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A position in a source partition (e.g. a WAL offset). `Beginning` sorts first.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Beginning,
    Offset(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Beginning => f.write_str("beginning"),
            Position::Offset(offset) => write!(f, "{offset}"),
        }
    }
}

/// Up to where each partition of one source has been published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceCheckpoint {
    pub partitions: BTreeMap<String, Position>,
}

/// The positions one publish covers: `(from, to]` per partition of a source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDelta {
    pub source_id: String,
    pub partitions: BTreeMap<String, (Position, Position)>,
}

impl SourceCheckpoint {
    /// Applies a delta only if every partition continues exactly where the checkpoint is:
    /// that is what makes a replayed publish fail instead of indexing twice.
    pub fn try_apply(&mut self, delta: &CheckpointDelta) -> Result<(), String> {
        for (partition, (from, to)) in &delta.partitions {
            let current = self
                .partitions
                .get(partition)
                .cloned()
                .unwrap_or(Position::Beginning);
            if &current != from {
                return Err(format!(
                    "partition `{partition}` of source `{}` is at {current}, but the delta starts at {from}",
                    delta.source_id
                ));
            }
            if to < from {
                return Err(format!(
                    "partition `{partition}` delta goes backwards ({from} → {to})"
                ));
            }
        }
        for (partition, (_, to)) in &delta.partitions {
            self.partitions.insert(partition.clone(), to.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(from: Position, to: Position) -> CheckpointDelta {
        CheckpointDelta {
            source_id: "ingest".to_string(),
            partitions: [("p0".to_string(), (from, to))].into_iter().collect(),
        }
    }

    #[test]
    fn deltas_must_continue_the_checkpoint() {
        let mut checkpoint = SourceCheckpoint::default();
        checkpoint
            .try_apply(&delta(Position::Beginning, Position::Offset(10)))
            .unwrap();
        checkpoint
            .try_apply(&delta(Position::Offset(10), Position::Offset(20)))
            .unwrap();
        let replay = checkpoint
            .try_apply(&delta(Position::Offset(10), Position::Offset(20)))
            .unwrap_err();
        assert_eq!(
            replay,
            "partition `p0` of source `ingest` is at 20, but the delta starts at 10"
        );
        assert!(checkpoint
            .try_apply(&delta(Position::Offset(20), Position::Offset(5)))
            .is_err());
        assert_eq!(checkpoint.partitions["p0"], Position::Offset(20));
    }
}
