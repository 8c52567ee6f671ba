-- PostgreSQL's migration of this name changes its notification trigger; SQLite has no
-- trigger (the allocator announces changes itself), so there is nothing to do here.
SELECT 1;
