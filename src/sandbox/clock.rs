//! The sandbox's clock: real time by default, optionally sped up, or manual (tests advance it).
//! Controllers, pod lifecycles and logs all read time from here, never from the OS.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

#[derive(Debug)]
enum Mode {
    /// `base_sim + (now_real - base_real) * speed`.
    Real {
        base_real: Instant,
        base_sim: Timestamp,
        speed: f64,
    },
    /// Time stands still until [`Clock::advance`].
    Manual { now: Timestamp },
}

/// Shared simulated clock.
#[derive(Debug)]
pub struct Clock {
    mode: Mutex<Mode>,
}

impl Clock {
    /// Real time, `speed` times as fast (1.0 = wall clock).
    pub fn real(speed: f64) -> Self {
        Self::real_from(Timestamp::now(), speed)
    }

    /// Runs like [`Clock::real`] but starts at `start`.
    pub fn real_from(start: Timestamp, speed: f64) -> Self {
        Clock {
            mode: Mutex::new(Mode::Real {
                base_real: Instant::now(),
                base_sim: start,
                speed: if speed > 0.0 && speed.is_finite() {
                    speed
                } else {
                    1.0
                },
            }),
        }
    }

    /// A clock that only moves when told to, starting at `start`.
    pub fn manual(start: Timestamp) -> Self {
        Clock {
            mode: Mutex::new(Mode::Manual { now: start }),
        }
    }

    pub fn now(&self) -> Timestamp {
        match &*self.lock() {
            Mode::Real {
                base_real,
                base_sim,
                speed,
            } => {
                let real = base_real.elapsed().as_secs_f64() * speed;
                base_sim
                    .checked_add(SignedDuration::from_secs_f64(real))
                    .unwrap_or(*base_sim)
            }
            Mode::Manual { now } => *now,
        }
    }

    /// Move the clock forward (in either mode: a real clock jumps, then keeps running).
    pub fn advance(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::ZERO);
        match &mut *self.lock() {
            Mode::Real { base_sim, .. } => {
                *base_sim = base_sim.checked_add(by).unwrap_or(*base_sim);
            }
            Mode::Manual { now } => *now = now.checked_add(by).unwrap_or(*now),
        }
    }

    /// Move the clock back (only for building a world in the past before serving it).
    pub fn rewind(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::ZERO);
        match &mut *self.lock() {
            Mode::Real { base_sim, .. } => {
                *base_sim = base_sim.checked_sub(by).unwrap_or(*base_sim);
            }
            Mode::Manual { now } => *now = now.checked_sub(by).unwrap_or(*now),
        }
    }

    /// How long a simulated duration takes in real time (for sleeping): manual clocks
    /// never get there by waiting, so a short poll interval is returned.
    pub fn real_duration(&self, sim: Duration) -> Duration {
        match &*self.lock() {
            Mode::Real { speed, .. } => sim.div_f64(*speed),
            Mode::Manual { .. } => Duration::from_millis(50),
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(&*self.lock(), Mode::Manual { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mode> {
        // A poisoned clock still holds a valid time.
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// RFC 3339 with second precision, as Kubernetes writes times.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parse a Kubernetes time (RFC 3339).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}
