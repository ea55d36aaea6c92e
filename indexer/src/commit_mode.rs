use std::str::FromStr;

/// When an ingest request is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitMode {
    /// As soon as the documents are accepted; searchable within `commit_timeout_secs`.
    #[default]
    Auto,
    /// Once the documents are searchable.
    WaitFor,
    /// Cuts a split now and answers once the documents are searchable.
    Force,
}

impl FromStr for CommitMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(CommitMode::Auto),
            "wait_for" => Ok(CommitMode::WaitFor),
            "force" => Ok(CommitMode::Force),
            other => Err(format!(
                "unknown commit mode `{other}` (expected auto, wait_for or force)"
            )),
        }
    }
}
