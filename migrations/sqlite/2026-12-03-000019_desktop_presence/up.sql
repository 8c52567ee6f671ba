-- Which allocator holds each VM agent's desktop tunnel (one process here, so always this one).
CREATE TABLE desktop_tunnels (
    hostname      TEXT PRIMARY KEY NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    allocator_url TEXT NOT NULL,
    link_id       TEXT NOT NULL,
    seen_at       TIMESTAMP NOT NULL
);
CREATE INDEX desktop_tunnels_allocator_url ON desktop_tunnels (allocator_url);

-- The instructors' views of participants' desktops open now.
CREATE TABLE desktop_views (
    id            TEXT PRIMARY KEY NOT NULL,
    hostname      TEXT NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    allocator_url TEXT NOT NULL,
    seen_at       TIMESTAMP NOT NULL
);
CREATE INDEX desktop_views_hostname ON desktop_views (hostname);
CREATE INDEX desktop_views_allocator_url ON desktop_views (allocator_url);
