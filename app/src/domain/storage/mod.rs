//! Where state lives: the database (and its one change lock), the batching
//! writer of the hot path, the in-memory views every request reads, and
//! the caches and bookkeeping beside them.

pub mod batching;
pub mod bloom;
pub mod changes;
pub mod db;
pub mod head_reads;
pub mod known_users;
pub mod reader;
pub mod stored_user_ids;
pub mod usage;
pub mod views;
pub mod writer;
