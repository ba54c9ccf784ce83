//! Per-phase timing of a signing run for the debug log: wall time and the CPU time of the whole
//! process (user + system, all threads) since the previous mark, so that a log shows where a
//! large zone's time goes and how much of each phase ran in parallel (CPU / wall near the core
//! count) even on a machine shared with other work.

use std::time::Instant;

/// Marks phase ends; each [`Phases::mark`] logs the phase that just ended.
pub struct Phases {
    what: &'static str,
    start: Instant,
    last: Instant,
    last_cpu: Option<f64>,
}

impl Phases {
    /// Starts timing the run `what` (a label in the log lines).
    pub fn new(what: &'static str) -> Phases {
        let now = Instant::now();
        Phases {
            what,
            start: now,
            last: now,
            last_cpu: process_cpu_seconds(),
        }
    }

    /// Logs the phase `phase` as ended now (at debug level).
    pub fn mark(&mut self, phase: &'static str) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let now = Instant::now();
        let cpu = process_cpu_seconds();
        let wall = now.duration_since(self.last).as_secs_f64();
        let cpu_s = match (cpu, self.last_cpu) {
            (Some(a), Some(b)) => a - b,
            _ => f64::NAN,
        };
        tracing::debug!(
            run = self.what,
            phase,
            wall_s = format!("{wall:.3}"),
            cpu_s = format!("{cpu_s:.2}"),
            total_s = format!("{:.3}", now.duration_since(self.start).as_secs_f64()),
            "phase done"
        );
        self.last = now;
        self.last_cpu = cpu;
    }
}

/// User + system CPU seconds of this process (all threads), from `/proc/self/stat` (fields 14
/// and 15, in clock ticks of 1/100 s: the Linux user ABI's fixed USER_HZ). `None` elsewhere.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the command name (field 2) may hold spaces; the fields after its ')' are plain
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    // rest starts at field 3 (state): utime is field 14, stime field 15
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_grows_with_work() {
        let a = process_cpu_seconds().expect("/proc/self/stat");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 100 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(7));
        }
        std::hint::black_box(x);
        let b = process_cpu_seconds().unwrap_or(0.0);
        assert!(b - a >= 0.05, "{a} -> {b}");
    }
}
