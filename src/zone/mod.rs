//! One zone's life: its content ([`data`]), loading, signing, persisting and publishing.

pub mod data;
