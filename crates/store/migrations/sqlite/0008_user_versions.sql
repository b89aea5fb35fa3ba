-- Every change of a user is a compare-and-swap on its version: a read-modify-write that raced
-- another change is refused and retried instead of undoing it.
ALTER TABLE userpool_users ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Writes made for users that do not exist (PreventUserExistenceErrors), so that answering
-- for them costs what answering for a real user costs; a bounded number of slots per pool.
CREATE TABLE userpool_decoys (
    pool_id    TEXT NOT NULL REFERENCES userpool_pools (pool_id) ON DELETE CASCADE,
    slot       BIGINT NOT NULL,
    touched_at BIGINT NOT NULL,
    PRIMARY KEY (pool_id, slot)
);
