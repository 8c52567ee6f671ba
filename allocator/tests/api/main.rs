//! HTTP tests against an allocator started in-process on port 0 with its own database.
//! One test binary for all of them, so they build once.

mod health;
mod helpers;
