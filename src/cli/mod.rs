//! The command-line tools that ship in the binary besides `serve`.

pub mod bridge;
pub mod doctor;
pub mod watch;
