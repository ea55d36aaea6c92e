-- `_bulk` `_id`s each index accepted (or is indexing) within the dedup window, shared by
-- every node: a retry that lands on any node, even after the first one died, is recognised.
CREATE TABLE bulk_ids (
    index_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    -- Seconds since the epoch: when it was claimed, then when it was accepted.
    claimed_at BIGINT NOT NULL,
    -- False while the request that claimed it has not settled.
    accepted BOOLEAN NOT NULL,
    PRIMARY KEY (index_id, doc_id)
);
CREATE INDEX bulk_ids_by_age ON bulk_ids (index_id, claimed_at);
