//! Time is injected: one [`Clock`] drives every timer and every signature inception/expiration,
//! so tests can run a year of schedule on a simulated clock in seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of the current time, in seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct SimClock(Arc<AtomicU64>);

impl SimClock {
    pub fn new(start: u64) -> Self {
        SimClock(Arc::new(AtomicU64::new(start)))
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn set(&self, t: u64) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
