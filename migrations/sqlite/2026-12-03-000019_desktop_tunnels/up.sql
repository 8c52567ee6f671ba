-- Which allocator holds each VM agent's desktop tunnel (one process here, so always this one).
CREATE TABLE desktop_tunnels (
    hostname      TEXT PRIMARY KEY NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    allocator_url TEXT NOT NULL,
    link_id       TEXT NOT NULL,
    seen_at       TIMESTAMP NOT NULL
);
CREATE INDEX desktop_tunnels_allocator_url ON desktop_tunnels (allocator_url);
