-- One row per index; its config and source checkpoints live in `index_metadata` because
-- they are read and written as a whole (a publish rewrites the checkpoints).
CREATE TABLE indexes (
    index_id TEXT PRIMARY KEY,
    -- Changes when an index is deleted and re-created under the same id, so splits of the
    -- old incarnation never attach to the new one.
    index_uid TEXT NOT NULL UNIQUE,
    index_metadata JSONB NOT NULL,
    create_timestamp BIGINT NOT NULL
);

-- Splits get their own rows (not a JSON array in `indexes`) so that listing, publishing
-- and deleting touch only the splits involved, and so that time pruning runs in SQL.
CREATE TABLE splits (
    index_uid TEXT NOT NULL REFERENCES indexes (index_uid) ON DELETE CASCADE,
    split_id TEXT NOT NULL,
    split_state TEXT NOT NULL
        CHECK (split_state IN ('staged', 'published', 'marked_for_deletion')),
    -- Seconds since the epoch.
    update_timestamp BIGINT NOT NULL,
    publish_timestamp BIGINT,
    -- Copied out of `split_metadata` for pruning; NULL when the index has no timestamp field.
    time_range_start BIGINT,
    time_range_end BIGINT,
    split_metadata JSONB NOT NULL,
    PRIMARY KEY (index_uid, split_id)
);

-- Searches list the published splits of one index; the janitor lists the marked ones.
CREATE INDEX splits_index_uid_state_idx ON splits (index_uid, split_state);
