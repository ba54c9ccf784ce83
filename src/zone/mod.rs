//! One zone's life: its content ([`data`]), loading, signing, persisting and publishing.

pub mod checkds;
pub mod data;
pub mod keys;
pub mod nodemap;
pub mod offline;
pub mod overlay;
pub mod service;
pub mod status;
