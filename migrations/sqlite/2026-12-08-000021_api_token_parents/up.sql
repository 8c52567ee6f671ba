-- The token a token was made with (none: made by a signed-in admin or with Basic), so that a
-- token never outlives the one that made it: its expiry is capped by its parent's, and
-- revoking a token revokes every token made with it.
ALTER TABLE api_tokens ADD COLUMN parent_id BIGINT REFERENCES api_tokens (id);
