use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// An index id plus the incarnation it was created with (`logs:01H…`), so that splits of a
/// deleted index can never be mistaken for splits of a new index with the same id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexUid {
    index_id: String,
    incarnation: Ulid,
}

impl IndexUid {
    pub fn new(index_id: impl Into<String>) -> IndexUid {
        IndexUid {
            index_id: index_id.into(),
            incarnation: Ulid::new(),
        }
    }

    pub fn index_id(&self) -> &str {
        &self.index_id
    }
}

impl fmt::Display for IndexUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.index_id, self.incarnation)
    }
}

impl FromStr for IndexUid {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (index_id, incarnation) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("`{text}` is not an index uid (`index_id:ULID`)"))?;
        let incarnation = Ulid::from_string(incarnation)
            .map_err(|_| format!("`{text}` is not an index uid (`index_id:ULID`)"))?;
        Ok(IndexUid {
            index_id: index_id.to_string(),
            incarnation,
        })
    }
}

impl Serialize for IndexUid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl utoipa::PartialSchema for IndexUid {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "`index_id:ULID`: the index id and the incarnation it was created with.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for IndexUid {}

impl<'de> Deserialize<'de> for IndexUid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Split ids are ULIDs: unique without coordination and sortable by creation time.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct SplitId(String);

impl SplitId {
    pub fn generate() -> SplitId {
        SplitId(Ulid::new().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The split's key in its index's storage.
    pub fn file_name(&self) -> String {
        format!("{}.split", self.0)
    }
}

impl FromStr for SplitId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(text)
            .map(|_| SplitId(text.to_string()))
            .map_err(|_| format!("`{text}` is not a split id"))
    }
}

impl fmt::Display for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// FNV-1a: the same value on every build and platform, unlike the standard library's
/// hasher, for hashes that are persisted (document ids, schema fingerprints).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_uid_round_trips() {
        let uid = IndexUid::new("app-logs.v2");
        let parsed: IndexUid = uid.to_string().parse().unwrap();
        assert_eq!(parsed, uid);
        assert_eq!(parsed.index_id(), "app-logs.v2");
        assert!("no-incarnation".parse::<IndexUid>().is_err());
        assert!("logs:not-a-ulid".parse::<IndexUid>().is_err());
    }

    #[test]
    fn split_ids_sort_by_creation() {
        let first = SplitId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = SplitId::generate();
        assert!(first < second);
        assert!(first.file_name().ends_with(".split"));
    }
}
