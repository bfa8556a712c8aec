//! Snapshots of the fake Jenkins' state that tests read back.

use std::collections::BTreeMap;

/// One POST to a job's `build` or `buildWithParameters` endpoint, whatever it was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerRecord {
    /// The job's stored full name as decoded from the URL, e.g. `group/app/feature%2Fx`.
    /// For a URL that names no job path this is the raw request path.
    pub job: String,
    /// `build` or `buildWithParameters`.
    pub endpoint: String,
    /// Every query and form parameter as received (the first value of a repeated name),
    /// including ones the job does not define and `delay`.
    pub params: BTreeMap<String, String>,
    /// The HTTP status the fake answered.
    pub status: u16,
    /// The queue item the request created (201) or was merged into (303).
    pub queue_id: Option<u64>,
}

/// One build of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildRecord {
    /// The job's stored full name.
    pub job: String,
    /// The build number, counting from 1 per job.
    pub number: u64,
    /// The queue item the build came from.
    pub queue_id: u64,
    /// The parameters the build ran with: only those the job defines.
    pub params: BTreeMap<String, String>,
    /// True until the build finishes or is aborted.
    pub building: bool,
    /// `None` while building, then `SUCCESS`, `UNSTABLE`, `FAILURE`, `NOT_BUILT` or `ABORTED`.
    pub result: Option<String>,
    /// The build's absolute URL under the public URL, with a trailing slash.
    pub url: String,
}

/// Where a queue item is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueItemState {
    /// In the quiet period (`Queue$WaitingItem`).
    Waiting,
    /// Past its quiet period but not started, because the queue is held (`Queue$BuildableItem`).
    Buildable,
    /// Left the queue: started a build or was cancelled (`Queue$LeftItem`).
    Left,
}

/// One queue item Jenkins still knows about (left items are forgotten after their TTL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItemRecord {
    /// The queue id, as in `Location: …/queue/item/<id>/`.
    pub id: u64,
    /// The job's stored full name.
    pub job: String,
    /// The parameters the item carries.
    pub params: BTreeMap<String, String>,
    /// Waiting, buildable or left.
    pub state: QueueItemState,
    /// True for a left item that was cancelled.
    pub cancelled: bool,
    /// The build number once the item has left the queue by starting a build.
    pub build_number: Option<u64>,
}
