//! The pub/sub core of a shard: the latest frame of every stream, who
//! subscribes to it, and when each connection may flush next. It knows a
//! connection only as an index and an outbox.

pub mod latest;
pub mod outbox;
pub mod topic;
pub mod wheel;
pub mod wire;
