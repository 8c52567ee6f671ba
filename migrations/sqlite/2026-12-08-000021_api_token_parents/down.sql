ALTER TABLE api_tokens DROP COLUMN parent_id;
