use serde::{Deserialize, Serialize};

/// An inclusive range of timestamps in seconds since the epoch, as kept in split metadata
/// for pruning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    /// Whether any instant of this range falls in `[start, end)` (seconds; open sides
    /// unbounded), the search API's window.
    pub fn overlaps(&self, start: Option<i64>, end: Option<i64>) -> bool {
        start.is_none_or(|start| self.end >= start) && end.is_none_or(|end| self.start < end)
    }

    pub fn extend(&mut self, other: TimeRange) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_inclusive_start_exclusive_end() {
        let range = TimeRange { start: 10, end: 20 };
        assert!(range.overlaps(None, None));
        assert!(range.overlaps(Some(20), None));
        assert!(!range.overlaps(Some(21), None));
        assert!(range.overlaps(None, Some(11)));
        assert!(!range.overlaps(None, Some(10)));
        assert!(range.overlaps(Some(0), Some(100)));
        assert!(!range.overlaps(Some(0), Some(5)));
    }
}
