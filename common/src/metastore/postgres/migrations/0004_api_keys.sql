-- API keys, each a JSON record (`ApiKeyRecord`): the secret's hash, never the secret, with
-- its role descriptors, expiration and whether it was invalidated. Every node reads them.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    record JSONB NOT NULL
);
