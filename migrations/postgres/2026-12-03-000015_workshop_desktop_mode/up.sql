-- A workshop's own desktop mode (`crd` or `browser`); NULL: the allocator's `desktop.mode`.
ALTER TABLE workshops ADD COLUMN desktop_mode TEXT;
