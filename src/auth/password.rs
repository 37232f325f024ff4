//! Passwords: the NIST SP 800-63B rev 4 policy and argon2id hashing on dedicated low-priority threads.

use std::{
    collections::HashSet,
    sync::{
        Arc, LazyLock, Mutex,
        mpsc::{Receiver, RecvTimeoutError, SyncSender},
    },
    time::Duration,
};

use anyhow::Context;
use argon2::{
    Argon2, Block, Params,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use rand::RngCore as _;
use tokio::sync::Semaphore;

use crate::{
    config::PASSWORD_MIN_LENGTH_FLOOR,
    error::{AppError, AppResult},
};

/// Longest accepted password (NIST asks for at least 64; we accept well beyond the 128 a passphrase needs).
pub const PASSWORD_MAX_LENGTH: usize = 256;

/// Common passwords (lower-cased, 8+ characters); see common_passwords.LICENSE.md for the source.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl PasswordPolicy {
    pub fn new(min_length: usize) -> Self {
        Self {
            min_length: min_length.max(PASSWORD_MIN_LENGTH_FLOOR),
        }
    }

    /// No composition rules: length and the blocklist only. The error is the reason for the field.
    pub fn check(&self, password: &str, context_words: &[&str]) -> Result<(), String> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(format!("must be at least {} characters", self.min_length));
        }
        if length > PASSWORD_MAX_LENGTH {
            return Err(format!("must be at most {PASSWORD_MAX_LENGTH} characters"));
        }
        let lowered = password.to_lowercase();
        if COMMON_PASSWORDS.contains(lowered.as_str()) {
            return Err("is too common; choose a less predictable password".into());
        }
        if context_words
            .iter()
            .any(|w| !w.is_empty() && lowered == w.to_lowercase())
        {
            return Err("must not be your name or email".into());
        }
        Ok(())
    }
}

/// Niceness of the hashing threads. Argon2 is pure CPU: at the lowest priority it still takes every idle
/// cycle (so a login storm alone runs at full speed), but the kernel gives ordinary requests and the
/// database the cores first, so a login storm cannot starve reads.
const HASHER_NICENESS: i32 = 19;

/// A hash or verification: runs on a hashing thread with that thread's argon2 memory and returns how
/// to hand its result to the caller.
type Job = Box<dyn FnOnce(&mut Vec<Block>) -> Delivery + Send>;
type Delivery = Box<dyn FnOnce() + Send>;

/// Hashes and verifies with argon2id at OWASP's parameters (the crate defaults: m=19456 KiB, t=2, p=1) on
/// one dedicated low-priority thread per core. Each thread reuses its own argon2 memory, so memory stays
/// at 19 MiB per core however many logins arrive (a fresh 19 MiB allocation per hash on the blocking pool
/// left the allocator holding hundreds of MiB after a storm). A request that cannot get a hasher within
/// `wait` is refused with RATE_LIMITED instead of queueing without bound.
#[derive(Clone)]
pub struct PasswordHasher {
    /// One per thread: a caller holding a permit always finds an idle thread.
    permits: Arc<Semaphore>,
    threads: Arc<HashingThreads>,
    wait: Duration,
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
}

struct HashingThreads {
    /// Each thread's job slot; dropping them (with the last `PasswordHasher`) ends the threads.
    inboxes: Vec<SyncSender<Job>>,
    /// Idle threads, the most recently busy last: hashes that come one at a time all go to the same
    /// (warm) thread, so the others' 19 MiB are not touched at all.
    idle: Arc<Mutex<Vec<usize>>>,
}

impl PasswordHasher {
    pub fn new(wait: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let idle = Arc::new(Mutex::new(Vec::with_capacity(cores)));
        let mut inboxes = Vec::with_capacity(cores);
        for index in 0..cores {
            let (inbox, jobs) = std::sync::mpsc::sync_channel::<Job>(1);
            let thread_idle = idle.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || hashing_thread(index, &jobs, &thread_idle));
            match spawned {
                Ok(_) => {
                    inboxes.push(inbox);
                    if let Ok(mut idle) = idle.lock() {
                        idle.push(inboxes.len() - 1);
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not start a password hashing thread"),
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(inboxes.len())),
            threads: Arc::new(HashingThreads { inboxes, idle }),
            wait,
            dummy_hash: Arc::default(),
        }
    }

    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        self.run(move |memory| {
            let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
            rand::rng().fill_bytes(&mut salt);
            let argon2 = Argon2::default();
            let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
            argon2
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    &salt,
                    &mut output,
                    sized(memory, argon2.params()),
                )
                .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))?;
            let phc = PasswordHash {
                algorithm: argon2::Algorithm::Argon2id.ident(),
                version: Some(argon2::Version::V0x13.into()),
                params: ParamsString::try_from(argon2.params())
                    .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
                salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?),
                hash: Some(
                    Output::new(&output).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?,
                ),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// True when `password` matches `hash`. A malformed stored hash is an internal error.
    pub async fn verify(&self, password: &str, hash: &str) -> AppResult<bool> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move |memory| {
            let unusable =
                |e: &dyn std::fmt::Display| anyhow::anyhow!("stored password hash unusable: {e}");
            let parsed = PasswordHash::new(&hash).map_err(|e| unusable(&e))?;
            let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
                return Err(unusable(&"no salt or no output"));
            };
            let algorithm =
                argon2::Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| unusable(&e))?;
            let version = parsed
                .version
                .map(argon2::Version::try_from)
                .transpose()
                .map_err(|e| unusable(&e))?
                .unwrap_or_default();
            let params = Params::try_from(&parsed).map_err(|e| unusable(&e))?;
            let argon2 = Argon2::new(algorithm, version, params);
            let mut output = vec![0u8; expected.len()];
            argon2
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt,
                    &mut output,
                    sized(memory, argon2.params()),
                )
                .map_err(|e| unusable(&e))?;
            // Output's equality is constant-time.
            let computed = Output::new(&output).map_err(|e| unusable(&e))?;
            Ok(&computed == expected)
        })
        .await
    }

    /// Spends the same work as a real verification, for logins of unknown accounts, so the response time
    /// does not tell whether an email is registered.
    pub async fn verify_dummy(&self, password: &str) -> AppResult<()> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| self.hash("medgraph dummy password for timing"))
            .await?
            .clone();
        self.verify(password, &hash).await.map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> anyhow::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        let busy = || AppError::RateLimited {
            message: "The server is busy checking passwords; try again shortly",
            retry_after: Some(1),
        };
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(permit) => permit.context("password hasher closed")?,
                Err(_) => return Err(busy()),
            };
        let (done, result) = tokio::sync::oneshot::channel();
        // The permit goes with the job and is released on the thread once it is idle again, also when
        // the caller has given up meanwhile: a permit always stands for an idle thread.
        let job: Job = Box::new(move |memory| {
            let outcome = work(memory);
            Box::new(move || {
                let _ = done.send(outcome);
                drop(permit);
            })
        });
        let thread = self
            .threads
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .ok_or_else(busy)?;
        self.threads.inboxes[thread]
            .try_send(job)
            .map_err(|_| busy())?;
        Ok(result.await.context("password hashing thread failed")??)
    }
}

/// Address space reserved for a thread's argon2 memory, so a stored hash with larger parameters grows it in
/// place. Far above jemalloc's oversize threshold (8 MiB), so it is an extent of its own whose pages go
/// back to the system when it is freed; only the 19 MiB argon2 touches become resident.
const ARGON2_RESERVATION_BYTES: usize = 33 * 1024 * 1024;

/// A hashing thread frees its argon2 memory after this long without work: warm during a login storm,
/// nothing resident when idle.
const HASHER_IDLE_RELEASE: Duration = Duration::from_millis(500);

/// The argon2 memory for `params`, reserved on first use and grown when a stored hash asks for more.
fn sized<'a>(memory: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let needed = params.block_count();
    if memory.capacity() == 0 {
        let reserve = ARGON2_RESERVATION_BYTES / std::mem::size_of::<Block>();
        *memory = Vec::with_capacity(reserve.max(needed));
    }
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    &mut memory[..needed]
}

fn hashing_thread(index: usize, jobs: &Receiver<Job>, idle: &Mutex<Vec<usize>>) {
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASHER_NICENESS)
    {
        tracing::warn!(error = %e, "could not lower the password hashing thread's priority");
    }
    let mut memory = Vec::new();
    loop {
        let job = match jobs.recv_timeout(HASHER_IDLE_RELEASE) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                memory = Vec::new();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let delivery = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
        // Idle again before the job's permit is released (in `deliver`), so the next permit holder
        // always finds a thread.
        if let Ok(mut idle) = idle.lock() {
            idle.push(index);
        }
        match delivery {
            Ok(deliver) => deliver(),
            Err(_) => tracing::error!("a password hashing job panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_checks_length_blocklist_and_context() {
        let policy = PasswordPolicy::new(15);
        assert!(policy.check("short", &[]).is_err());
        assert!(policy.check("correct horse battery staple", &[]).is_ok());
        assert!(
            policy
                .check(&"x".repeat(PASSWORD_MAX_LENGTH + 1), &[])
                .is_err()
        );
        assert!(
            policy
                .check("alice@example.com", &["alice@example.com"])
                .is_err()
        );
        let common = COMMON_PASSWORDS
            .iter()
            .find(|p| p.chars().count() >= 8)
            .expect("the blocklist has entries of 8+ characters");
        assert!(PasswordPolicy::new(8).check(common, &[]).is_err());
        assert!(
            PasswordPolicy::new(8)
                .check(&common.to_uppercase(), &[])
                .is_err()
        );
    }

    #[test]
    fn the_minimum_is_never_below_eight() {
        assert_eq!(PasswordPolicy::new(3).min_length, 8);
    }

    #[tokio::test]
    async fn a_request_that_cannot_get_a_hasher_in_time_is_rate_limited() {
        let hasher = PasswordHasher::new(Duration::ZERO);
        let _all = hasher
            .permits
            .acquire_many(u32::try_from(hasher.permits.available_permits()).unwrap_or(1))
            .await;
        match hasher.hash("correct horse battery staple").await {
            Err(AppError::RateLimited { .. }) => {}
            other => panic!("expected RateLimited, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_owasp_parameters() {
        let hasher = PasswordHasher::new(Duration::from_secs(5));
        let hash = hasher
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery staple", &hash)
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse battery staple", &hash)
                .await
                .expect("verify")
        );
        assert!(hasher.verify("x", "not a hash").await.is_err());
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crates_own_format() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(Duration::from_secs(5));
        let ours = hasher
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        Argon2::default()
            .verify_password(b"correct horse battery staple", ours.as_str())
            .expect("the crate verifies our hash");
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery staple")
            .expect("crate hash")
            .to_string();
        assert!(
            hasher
                .verify("correct horse battery staple", &theirs)
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("correct horse battery stapler", &theirs)
                .await
                .expect("verify")
        );
        assert!(hasher.verify("x", "not a hash").await.is_err());
    }

    #[tokio::test]
    async fn hashes_one_at_a_time_stay_on_one_warm_thread() {
        let hasher = PasswordHasher::new(Duration::from_secs(5));
        let mut threads = std::collections::HashSet::new();
        for _ in 0..6 {
            let name = hasher
                .run(|_| Ok(std::thread::current().name().map(str::to_owned)))
                .await
                .expect("ran");
            threads.insert(name.expect("a named hashing thread"));
        }
        assert_eq!(threads.len(), 1, "{threads:?}");

        // Concurrent work still spreads over every thread.
        let cores = hasher.threads.inboxes.len();
        let barrier = Arc::new(std::sync::Barrier::new(cores));
        let runs = (0..cores).map(|_| {
            let barrier = barrier.clone();
            hasher.run(move |_| {
                barrier.wait();
                Ok(std::thread::current().name().map(str::to_owned))
            })
        });
        let names: std::collections::HashSet<_> = futures_util::future::join_all(runs)
            .await
            .into_iter()
            .map(|name| name.expect("ran").expect("named"))
            .collect();
        assert_eq!(names.len(), cores);
    }

    #[tokio::test]
    async fn hashing_threads_run_at_the_lowest_priority() {
        let hasher = PasswordHasher::new(Duration::from_secs(5));
        hasher
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        let mut niceness = Vec::new();
        for task in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim().starts_with("argon2-") {
                let stat = std::fs::read_to_string(task.path().join("stat")).expect("stat");
                let after_name = &stat[stat.rfind(')').expect("comm end") + 2..];
                // Field 19 of stat is the niceness; fields here start at field 3.
                let nice: i32 = after_name
                    .split_whitespace()
                    .nth(16)
                    .and_then(|n| n.parse().ok())
                    .expect("nice");
                niceness.push(nice);
            }
        }
        assert!(!niceness.is_empty(), "no argon2 threads found");
        assert!(
            niceness.iter().all(|n| *n == HASHER_NICENESS),
            "{niceness:?}"
        );
    }
}
