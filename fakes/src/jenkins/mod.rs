//! A strict, stateful fake of Jenkins' remote access API.
//!
//! It serves what ci-bridge uses, the way Jenkins answers it: `buildWithParameters` with
//! 201/303 and a queue `Location`, queue items that turn into left items with an
//! `executable`, builds that finish with a configured result, session-bound crumbs for
//! password logins, folder and multibranch URLs, and the 4xx answers of a real controller.
//! Time moves lazily: every request and accessor first settles what became due.

mod auth;
mod json;
mod paths;
mod records;
mod reply;
mod routes;
mod state;
mod trigger;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;

pub use records::{BuildRecord, QueueItemRecord, QueueItemState, TriggerRecord};

use crate::server::Server;
use state::{Job, State};

pub(crate) type Shared = Arc<Mutex<State>>;

/// The root URL Jenkins believes it has unless told otherwise; never the bound address.
pub const DEFAULT_PUBLIC_URL: &str = "https://jenkins.example.invalid";

/// The results a build can finish with.
const RESULTS: [&str; 5] = ["SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED"];

/// How the fake Jenkins is set up.
#[derive(Clone)]
pub struct JenkinsOptions {
    /// Path prefix Jenkins is mounted under: `""` or e.g. `"/jenkins"`.
    pub prefix: String,
    /// The user name accepted in HTTP Basic auth.
    pub user: String,
    /// The secret accepted as the HTTP Basic password.
    pub api_token: String,
    /// If true the secret is a password, so every POST needs a crumb bound to the session.
    pub password_mode: bool,
    /// The root URL Jenkins believes is its own, used in `Location` and every `url` field.
    /// Left at [`DEFAULT_PUBLIC_URL`], the prefix is appended to it.
    pub public_url: String,
    /// Quiet period of every job when a trigger gives no `delay`. Default 20 ms.
    pub quiet_period: Duration,
    /// How long a build runs before finishing. Default 50 ms.
    pub build_duration: Duration,
    /// How long a left queue item stays visible. Default 5 min, as in Jenkins.
    pub left_item_ttl: Duration,
}

impl Default for JenkinsOptions {
    fn default() -> Self {
        JenkinsOptions {
            prefix: String::new(),
            user: "ci-bridge".to_owned(),
            api_token: "fake-jenkins-api-token".to_owned(),
            password_mode: false,
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            quiet_period: Duration::from_millis(20),
            build_duration: Duration::from_millis(50),
            left_item_ttl: Duration::from_secs(5 * 60),
        }
    }
}

impl fmt::Debug for JenkinsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JenkinsOptions")
            .field("prefix", &self.prefix)
            .field("user", &self.user)
            .field("api_token", &"<redacted>")
            .field("password_mode", &self.password_mode)
            .field("public_url", &self.public_url)
            .field("quiet_period", &self.quiet_period)
            .field("build_duration", &self.build_duration)
            .field("left_item_ttl", &self.left_item_ttl)
            .finish()
    }
}

/// The options after normalisation, plus per-instance secrets.
pub(crate) struct Settings {
    pub(crate) prefix: String,
    pub(crate) user: String,
    pub(crate) api_token: String,
    pub(crate) password_mode: bool,
    /// No trailing slash.
    pub(crate) public_url: String,
    pub(crate) quiet_period: Duration,
    pub(crate) build_duration: Duration,
    pub(crate) left_item_ttl: Duration,
    /// `JSESSIONID.<instance hash>`, as Jenkins names its session cookie.
    pub(crate) cookie_name: String,
    pub(crate) crumb_salt: String,
}

impl Settings {
    fn from_options(opts: JenkinsOptions) -> Settings {
        let trimmed = opts.prefix.trim().trim_end_matches('/');
        let prefix = match trimmed {
            "" => String::new(),
            p if p.starts_with('/') => p.to_owned(),
            p => format!("/{p}"),
        };
        let mut public_url = opts.public_url.trim_end_matches('/').to_owned();
        if public_url == DEFAULT_PUBLIC_URL {
            public_url.push_str(&prefix);
        }
        let mut rng = rand::thread_rng();
        Settings {
            prefix,
            user: opts.user,
            api_token: opts.api_token,
            password_mode: opts.password_mode,
            public_url,
            quiet_period: opts.quiet_period,
            build_duration: opts.build_duration,
            left_item_ttl: opts.left_item_ttl,
            cookie_name: format!("JSESSIONID.{:08x}", rng.gen::<u32>()),
            crumb_salt: format!("{:032x}", rng.gen::<u128>()),
        }
    }
}

/// A fake Jenkins controller listening on `127.0.0.1`. Cloning shares the same instance.
#[derive(Clone)]
pub struct FakeJenkins {
    state: Shared,
    server: Arc<Server>,
    base_url: String,
}

impl FakeJenkins {
    /// Starts the fake on `127.0.0.1:0` in a tokio task.
    pub async fn start(opts: JenkinsOptions) -> FakeJenkins {
        let settings = Settings::from_options(opts);
        let prefix = settings.prefix.clone();
        let state: Shared = Arc::new(Mutex::new(State::new(settings)));
        let server = Server::spawn(routes::router(state.clone())).await;
        let base_url = format!("http://{}{prefix}", server.addr());
        FakeJenkins {
            state,
            server: Arc::new(server),
            base_url,
        }
    }

    /// Where to reach it: `http://127.0.0.1:PORT` plus the prefix, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The root URL it reports in `Location` and `url` fields, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.with(|st, _| st.settings.public_url.clone())
    }

    /// Adds (or redefines) a parameterized job with string parameters defaulting to `""`.
    ///
    /// `full_name` separates folders with `/`; a multibranch branch job's name is given as
    /// Jenkins stores it, e.g. `group/app/feature%2Fx`.
    pub fn add_job(&self, full_name: &str, params: &[&str]) {
        let params = params.iter().map(|p| (*p).to_owned()).collect();
        self.insert_job(full_name, Some(params));
    }

    /// Adds (or redefines) a job without parameters.
    pub fn add_unparameterized_job(&self, full_name: &str) {
        self.insert_job(full_name, None);
    }

    fn insert_job(&self, full_name: &str, params: Option<Vec<String>>) {
        assert!(
            !full_name.is_empty() && full_name.split('/').all(|s| !s.is_empty()),
            "invalid Jenkins job name {full_name:?}"
        );
        self.with(|st, _| {
            let job = st.jobs.entry(full_name.to_owned()).or_insert_with(|| Job {
                params: None,
                disabled: false,
                result: "SUCCESS".to_owned(),
                next_number: 1,
                builds: Vec::new(),
            });
            job.params = params;
        });
    }

    /// Disables or enables a job; a disabled job answers triggers with 409.
    pub fn set_disabled(&self, full_name: &str, disabled: bool) {
        self.with(|st, _| job_mut(st, full_name).disabled = disabled);
    }

    /// The result builds started from now on finish with (`SUCCESS` by default).
    pub fn set_result(&self, full_name: &str, result: &str) {
        assert!(
            RESULTS.contains(&result),
            "unknown Jenkins result {result:?}"
        );
        self.with(|st, _| job_mut(st, full_name).result = result.to_owned());
    }

    /// While held, queued items never start (past their quiet period they are buildable).
    pub fn hold_queue(&self, hold: bool) {
        self.with(|st, now| st.set_queue_held(hold, now));
    }

    /// While held, running builds never finish.
    pub fn hold_builds(&self, hold: bool) {
        self.with(|st, now| st.set_builds_held(hold, now));
    }

    /// Cancels a queued item as a user pressing X in the UI; a no-op if it already left.
    pub fn cancel_queue_item(&self, id: u64) {
        self.with(|st, now| {
            let _ = st.cancel(id, now);
        });
    }

    /// Every POST to `build` or `buildWithParameters`, in arrival order.
    pub fn triggers(&self) -> Vec<TriggerRecord> {
        self.with(|st, _| st.triggers.clone())
    }

    /// Every build of every job, in the order they started.
    pub fn builds(&self) -> Vec<BuildRecord> {
        self.with(|st, _| st.build_records())
    }

    /// Every queue item Jenkins still knows about, by id.
    pub fn queue_items(&self) -> Vec<QueueItemRecord> {
        self.with(|st, now| st.queue_records(now))
    }

    /// The next `n` requests of any kind answer `status` with a short HTML body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.with(|st, _| st.faults = (n > 0).then_some((n, status)));
    }

    /// As a controller restart: left items and HTTP sessions are forgotten, queued items
    /// keep their ids, running builds end `ABORTED`.
    pub fn restart(&self) {
        self.with(|st, now| st.restart(now));
    }

    /// How many HTTP requests the fake has received.
    pub fn request_count(&self) -> usize {
        self.with(|st, _| st.request_count)
    }

    /// Stops the server; later connections are refused. Idempotent.
    pub fn shutdown(&self) {
        self.server.shutdown();
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let mut st = self.state.lock().expect("fake Jenkins state poisoned");
        st.tick(now);
        f(&mut st, now)
    }
}

fn job_mut<'a>(st: &'a mut State, full_name: &str) -> &'a mut Job {
    st.jobs
        .get_mut(full_name)
        .unwrap_or_else(|| panic!("no Jenkins job {full_name:?} in the fake"))
}
