//! Where admin actions happen. Each action takes the caller and its input, validates once,
//! acts through the actors, writes exactly one audit record (the same whichever surface
//! asked) and returns a typed result. The JSON API turns that result into JSON, the dashboard
//! into a redirect or a page; neither does anything else.
//!
//! A new admin action goes into the file of what it acts on (`vms`, `enrollment_tokens`), or
//! a new file here, and is called from both `routes/admin.rs` and the dashboard's handlers.

pub mod api_tokens;
pub mod audit;
pub mod desktops;
pub mod enrollment_tokens;
pub mod exports;
pub mod participants;
pub mod recovery;
pub mod vms;
pub mod workshops;
