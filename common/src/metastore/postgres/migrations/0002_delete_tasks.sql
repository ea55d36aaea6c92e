-- Delete tasks of each index, in opstamp order. Opstamps are handed out under the index
-- row's lock, so they increase without gaps per index.
CREATE TABLE delete_tasks (
    index_uid TEXT NOT NULL REFERENCES indexes (index_uid) ON DELETE CASCADE,
    opstamp BIGINT NOT NULL,
    -- Seconds since the epoch.
    create_timestamp BIGINT NOT NULL,
    delete_query JSONB NOT NULL,
    PRIMARY KEY (index_uid, opstamp)
);
