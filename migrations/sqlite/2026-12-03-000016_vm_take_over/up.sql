-- An admin who took over a free VM holds it until this time; then its actor releases it.
ALTER TABLE vms ADD COLUMN reserved_until TIMESTAMP;
