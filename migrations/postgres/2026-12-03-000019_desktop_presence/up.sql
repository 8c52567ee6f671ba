-- Which allocator holds each VM agent's desktop tunnel, so that a participant whose browser
-- reaches another allocator (several allocators behind one load balancer) can still open
-- the desktop: that allocator asks the holder, at `allocator_url`, to ask the agent. The row
-- is a hint with a lease: the holder refreshes `seen_at` while it lives, and a row not seen
-- for a minute is treated as no tunnel at all. `link_id` tells one tunnel of the VM from the
-- next, so the end of an old one never removes a newer one held elsewhere.
CREATE TABLE desktop_tunnels (
    hostname      TEXT PRIMARY KEY REFERENCES vms (hostname) ON DELETE CASCADE,
    allocator_url TEXT NOT NULL,
    link_id       TEXT NOT NULL,
    seen_at       TIMESTAMP NOT NULL
);
CREATE INDEX desktop_tunnels_allocator_url ON desktop_tunnels (allocator_url);

-- The instructors' views of participants' desktops open now, on whichever allocator, so
-- that the participant's page says so whichever allocator it asks. Leased like the tunnels.
CREATE TABLE desktop_views (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    allocator_url TEXT NOT NULL,
    seen_at       TIMESTAMP NOT NULL
);
CREATE INDEX desktop_views_hostname ON desktop_views (hostname);
CREATE INDEX desktop_views_allocator_url ON desktop_views (allocator_url);
