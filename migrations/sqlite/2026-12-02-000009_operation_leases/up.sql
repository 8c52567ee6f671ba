-- Which allocator holds an unfinished operation (queued or running) and until when: the
-- holder renews the lease while it holds the operation, so another allocator starting up
-- leaves it alone, and takes it over only once the lease has run out.
ALTER TABLE operations ADD COLUMN lease_owner TEXT;
ALTER TABLE operations ADD COLUMN lease_expires_at TIMESTAMP;
