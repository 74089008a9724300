//! Many clients writing at once.
