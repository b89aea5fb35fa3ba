-- Refresh-token rotation: a sign-in keeps one row, whose token is replaced on each rotation.
-- The token it replaced is remembered (as its hash) with the time of the rotation, so that a
-- retry within the client's grace period is answered with the same new token (kept sealed
-- under the master key) and a later reuse is recognised.
ALTER TABLE userpool_refresh_tokens ADD COLUMN previous_hash TEXT;
ALTER TABLE userpool_refresh_tokens ADD COLUMN rotated_at_ms BIGINT;
ALTER TABLE userpool_refresh_tokens ADD COLUMN current_sealed BLOB;
CREATE INDEX userpool_refresh_tokens_by_previous ON userpool_refresh_tokens (previous_hash);
