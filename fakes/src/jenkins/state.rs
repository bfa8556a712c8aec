//! The fake Jenkins' jobs, queue and builds, and how time moves them along.
//!
//! Nothing runs in the background: every request and every accessor first calls
//! [`State::tick`], which replays what would have happened since the last call, using the
//! instants at which each step was due rather than the instant of the call.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::records::{BuildRecord, QueueItemRecord, QueueItemState};
use super::Settings;
use crate::clock::Clock;

/// The first queue id handed out; real Jenkins ids are just as arbitrary.
const FIRST_QUEUE_ID: u64 = 100;

/// A job (a leaf item); folders exist implicitly as prefixes of job names.
#[derive(Debug)]
pub(crate) struct Job {
    /// Defined parameter names in definition order; `None` for an unparameterized job.
    pub(crate) params: Option<Vec<String>>,
    pub(crate) disabled: bool,
    /// Result that builds started from now on finish with.
    pub(crate) result: String,
    pub(crate) next_number: u64,
    pub(crate) builds: Vec<Build>,
}

impl Job {
    /// Build `number`; numbers count from 1 without gaps, so it is an index.
    pub(crate) fn build_mut(&mut self, number: u64) -> Option<&mut Build> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.builds.get_mut(index)
    }
}

/// One run of a job.
#[derive(Debug)]
pub(crate) struct Build {
    pub(crate) number: u64,
    pub(crate) queue_id: u64,
    pub(crate) params: Option<Vec<(String, String)>>,
    pub(crate) started: Instant,
    /// Set once the build is over; `building` is `finished.is_none()`.
    pub(crate) finished: Option<Instant>,
    /// The result it will finish with, or has finished with once `finished` is set.
    pub(crate) result: String,
}

impl Build {
    pub(crate) fn building(&self) -> bool {
        self.finished.is_none()
    }

    /// Milliseconds the build took; 0 while it runs, as Jenkins reports.
    pub(crate) fn duration_ms(&self) -> u64 {
        self.finished.map_or(0, |end| {
            u64::try_from(end.saturating_duration_since(self.started).as_millis())
                .unwrap_or(u64::MAX)
        })
    }
}

/// Where a queue item is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ItemState {
    /// In the queue; it may start once `due` has passed and the queue is not held.
    Queued { due: Instant },
    /// Left the queue, either into build `build` or cancelled.
    Left { cancelled: bool, build: Option<u64> },
}

/// One queue item.
#[derive(Debug)]
pub(crate) struct QueueItem {
    pub(crate) id: u64,
    pub(crate) job: String,
    pub(crate) params: Option<Vec<(String, String)>>,
    pub(crate) in_queue_since: Instant,
    pub(crate) state: ItemState,
}

impl QueueItem {
    pub(crate) fn in_queue(&self) -> bool {
        matches!(self.state, ItemState::Queued { .. })
    }
}

/// Why a queue item could not be cancelled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelError {
    /// No such item, or it was forgotten.
    Unknown,
    /// It has already left the queue.
    AlreadyLeft,
}

/// Everything the fake Jenkins knows, behind one mutex.
pub(crate) struct State {
    pub(crate) settings: Settings,
    pub(crate) clock: Clock,
    pub(crate) jobs: BTreeMap<String, Job>,
    pub(crate) queue: BTreeMap<u64, QueueItem>,
    /// Ids of the items still in the queue, so a tick need not scan left items.
    queued: BTreeSet<u64>,
    /// Left items by the instant they left, so expiry pops from the front.
    left_order: BTreeSet<(Instant, u64)>,
    /// `(job, build number)` of builds that may still be running.
    running: Vec<(String, u64)>,
    pub(crate) next_queue_id: u64,
    pub(crate) queue_held: bool,
    queue_released_at: Instant,
    pub(crate) builds_held: bool,
    builds_released_at: Instant,
    /// HTTP session ids issued by the crumb issuer since the last restart.
    pub(crate) sessions: HashSet<String>,
    pub(crate) triggers: Vec<super::TriggerRecord>,
    /// Fault injection: how many more requests answer with which status.
    pub(crate) faults: Option<(usize, u16)>,
    pub(crate) request_count: usize,
}

impl State {
    pub(crate) fn new(settings: Settings) -> State {
        let clock = Clock::new();
        let now = Instant::now();
        State {
            settings,
            clock,
            jobs: BTreeMap::new(),
            queue: BTreeMap::new(),
            queued: BTreeSet::new(),
            left_order: BTreeSet::new(),
            running: Vec::new(),
            next_queue_id: FIRST_QUEUE_ID,
            queue_held: false,
            queue_released_at: now,
            builds_held: false,
            builds_released_at: now,
            sessions: HashSet::new(),
            triggers: Vec::new(),
            faults: None,
            request_count: 0,
        }
    }

    /// Brings the queue and builds up to `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        if !self.queue_held {
            self.start_due_items(now);
        }
        if !self.builds_held {
            self.finish_due_builds(now);
        }

        let ttl = self.settings.left_item_ttl;
        while let Some(&(at, id)) = self.left_order.first() {
            if now < at + ttl {
                break;
            }
            self.left_order.remove(&(at, id));
            self.queue.remove(&id);
        }
    }

    fn start_due_items(&mut self, now: Instant) {
        let mut due: Vec<(Instant, u64)> = self
            .queued
            .iter()
            .filter_map(|id| match self.queue.get(id).map(|item| item.state) {
                Some(ItemState::Queued { due }) if due <= now => Some((due, *id)),
                _ => None,
            })
            .collect();
        due.sort();

        for (due_at, id) in due {
            let start = due_at.max(self.queue_released_at);
            let item = self.queue.get_mut(&id).expect("due item is queued");
            let job = self.jobs.get_mut(&item.job).expect("queued job exists");
            let number = job.next_number;
            job.next_number += 1;
            job.builds.push(Build {
                number,
                queue_id: id,
                params: item.params.clone(),
                started: start,
                finished: None,
                result: job.result.clone(),
            });
            item.state = ItemState::Left {
                cancelled: false,
                build: Some(number),
            };
            self.running.push((item.job.clone(), number));
            self.queued.remove(&id);
            self.left_order.insert((start, id));
        }
    }

    fn finish_due_builds(&mut self, now: Instant) {
        let duration = self.settings.build_duration;
        let released = self.builds_released_at;
        let jobs = &mut self.jobs;
        self.running.retain(|(job, number)| {
            let Some(build) = jobs.get_mut(job).and_then(|j| j.build_mut(*number)) else {
                return false;
            };
            if build.building() {
                let end = (build.started + duration).max(released);
                if end <= now {
                    build.finished = Some(end);
                }
            }
            build.building()
        });
    }

    /// Holds or releases the queue, settling everything due before the switch.
    pub(crate) fn set_queue_held(&mut self, hold: bool, now: Instant) {
        self.tick(now);
        if self.queue_held && !hold {
            self.queue_released_at = now;
        }
        self.queue_held = hold;
    }

    /// Holds or releases running builds, settling everything due before the switch.
    pub(crate) fn set_builds_held(&mut self, hold: bool, now: Instant) {
        self.tick(now);
        if self.builds_held && !hold {
            self.builds_released_at = now;
        }
        self.builds_held = hold;
    }

    /// Queues `job` with `params`, or merges into an identical item still in the queue.
    ///
    /// Returns the item id and whether it was newly created. On a merge the due time
    /// becomes the earlier of the two, as `Queue.scheduleInternal` does.
    pub(crate) fn schedule(
        &mut self,
        job: &str,
        params: Option<Vec<(String, String)>>,
        delay: Duration,
        now: Instant,
    ) -> (u64, bool) {
        let wanted_due = now + delay;
        let existing = self
            .queued
            .iter()
            .filter_map(|id| self.queue.get(id))
            .find(|item| item.job == job && same_set(&item.params, &params))
            .map(|item| item.id);
        if let Some(id) = existing {
            let item = self.queue.get_mut(&id).expect("queued id has an item");
            if let ItemState::Queued { due } = &mut item.state {
                *due = (*due).min(wanted_due);
            }
            return (id, false);
        }

        let id = self.next_queue_id;
        self.next_queue_id += 1;
        self.queue.insert(
            id,
            QueueItem {
                id,
                job: job.to_owned(),
                params,
                in_queue_since: now,
                state: ItemState::Queued { due: wanted_due },
            },
        );
        self.queued.insert(id);
        (id, true)
    }

    /// Cancels a queued item, turning it into a cancelled left item.
    pub(crate) fn cancel(&mut self, id: u64, now: Instant) -> Result<(), CancelError> {
        let item = self.queue.get_mut(&id).ok_or(CancelError::Unknown)?;
        if !item.in_queue() {
            return Err(CancelError::AlreadyLeft);
        }
        item.state = ItemState::Left {
            cancelled: true,
            build: None,
        };
        self.queued.remove(&id);
        self.left_order.insert((now, id));
        Ok(())
    }

    /// Aborts a running build. Returns false if there is no such build.
    pub(crate) fn stop(&mut self, job: &str, number: u64, now: Instant) -> bool {
        let Some(build) = self.jobs.get_mut(job).and_then(|job| job.build_mut(number)) else {
            return false;
        };
        if build.building() {
            build.result = "ABORTED".to_owned();
            build.finished = Some(now);
        }
        true
    }

    /// A controller restart: left items and sessions are lost, running builds abort,
    /// queued items survive with their ids.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.tick(now);
        self.queue.retain(|_, item| item.in_queue());
        self.left_order.clear();
        self.sessions.clear();
        for (job, number) in std::mem::take(&mut self.running) {
            if let Some(build) = self.jobs.get_mut(&job).and_then(|j| j.build_mut(number)) {
                if build.building() {
                    build.result = "ABORTED".to_owned();
                    build.finished = Some(now);
                }
            }
        }
    }

    /// The job's builds as records, oldest first.
    pub(crate) fn build_records(&self) -> Vec<BuildRecord> {
        let mut out = Vec::new();
        for (name, job) in &self.jobs {
            for build in &job.builds {
                let key = (build.started, build.queue_id);
                out.push((
                    key,
                    BuildRecord {
                        job: name.clone(),
                        number: build.number,
                        queue_id: build.queue_id,
                        params: to_map(&build.params),
                        building: build.building(),
                        result: (!build.building()).then(|| build.result.clone()),
                        url: self.build_url(name, build.number),
                    },
                ));
            }
        }
        out.sort_by_key(|(key, _)| *key);
        out.into_iter().map(|(_, record)| record).collect()
    }

    /// Every queue item still known, by id.
    pub(crate) fn queue_records(&self, now: Instant) -> Vec<QueueItemRecord> {
        self.queue
            .values()
            .map(|item| {
                let (state, cancelled, build_number) = match item.state {
                    ItemState::Queued { due } if due <= now => {
                        (QueueItemState::Buildable, false, None)
                    }
                    ItemState::Queued { .. } => (QueueItemState::Waiting, false, None),
                    ItemState::Left {
                        cancelled, build, ..
                    } => (QueueItemState::Left, cancelled, build),
                };
                QueueItemRecord {
                    id: item.id,
                    job: item.job.clone(),
                    params: to_map(&item.params),
                    state,
                    cancelled,
                    build_number,
                }
            })
            .collect()
    }

    /// The public URL of a job, with a trailing slash.
    pub(crate) fn job_url(&self, full_name: &str) -> String {
        format!(
            "{}{}",
            self.settings.public_url,
            super::paths::job_path(full_name)
        )
    }

    /// The public URL of a build, with a trailing slash.
    pub(crate) fn build_url(&self, full_name: &str, number: u64) -> String {
        format!("{}{number}/", self.job_url(full_name))
    }

    /// The public URL of a queue item, as sent in `Location`.
    pub(crate) fn queue_item_url(&self, id: u64) -> String {
        format!("{}/queue/item/{id}/", self.settings.public_url)
    }
}

/// Jenkins compares parameter values as a set (`ParametersAction.shouldSchedule`).
fn same_set(a: &Option<Vec<(String, String)>>, b: &Option<Vec<(String, String)>>) -> bool {
    let set = |p: &Option<Vec<(String, String)>>| -> std::collections::BTreeSet<(String, String)> {
        p.iter().flatten().cloned().collect()
    };
    set(a) == set(b)
}

/// Parameters as a map; empty for an unparameterized job.
pub(crate) fn to_map(params: &Option<Vec<(String, String)>>) -> BTreeMap<String, String> {
    params.iter().flatten().cloned().collect()
}
