//! Converts the monotonic instants the fakes schedule with into wall-clock timestamps.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Pairs one `Instant` with the `SystemTime` it was taken at, so later instants map to dates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
    origin_wall: SystemTime,
}

impl Clock {
    /// A clock anchored at the current moment.
    pub(crate) fn new() -> Clock {
        Clock {
            origin: Instant::now(),
            origin_wall: SystemTime::now(),
        }
    }

    /// The wall-clock time of `at`.
    pub(crate) fn wall(&self, at: Instant) -> SystemTime {
        self.origin_wall + at.saturating_duration_since(self.origin)
    }

    /// Milliseconds since the Unix epoch, as Jenkins exports `timestamp` and `inQueueSince`.
    pub(crate) fn epoch_ms(&self, at: Instant) -> u64 {
        let since = self
            .wall(at)
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    /// An RFC 3339 UTC timestamp with milliseconds, as GitLab renders `created_at`.
    pub(crate) fn rfc3339(&self, at: Instant) -> String {
        humantime::format_rfc3339_millis(self.wall(at)).to_string()
    }
}
