//! Leader and followers as real processes: reads at a write's revision on every
//! follower, writes forwarded, kills, retention, the leader's death, partial followers.

mod followers;
mod lifecycle;
mod partial;
pub(crate) mod process;
mod recovery;
mod watch;
