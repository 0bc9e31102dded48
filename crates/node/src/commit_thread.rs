//! One long-lived thread that runs block commits in the order they are handed to it.
//!
//! A node commits a finalized block off its execution thread (see [`crate::head`]). Spawning a
//! thread per block made every block's commit allocate from a fresh allocator heap: the pages a
//! dead thread used are not handed to the next one at once, so each block touched new memory
//! and the kernel zeroed it (up to a fifth of a block's CPU time in `poi bench ledger`, see
//! docs/benchmarks.md). One thread keeps one heap, and a block's memory is reused by the next.
//!
//! Jobs run one at a time in submission order, so a block's commit never starts before its
//! parent's has finished. A job that panics loses only its own result: its [`Landing`] reports
//! the panic and the thread goes on with the next job.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// The commit thread. Dropping it lets queued jobs finish, then ends the thread.
#[derive(Debug)]
pub struct CommitThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The pending result of one job.
#[derive(Debug)]
pub struct Landing<T> {
    result: mpsc::Receiver<T>,
}

/// A job panicked (or the thread is gone) before producing its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the commit job panicked")]
pub struct JobPanicked;

impl CommitThread {
    /// Starts the thread (named `poi-commit`).
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("poi-commit".into())
            .spawn(move || {
                for job in queue {
                    // The job's own channel carries its result; a panic drops that sender,
                    // which its `Landing` reports.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues `job` behind every job queued before it.
    pub fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Landing<T> {
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            // The caller may have stopped waiting; the result is then dropped here.
            let _ = done.send(job());
        });
        if let Some(jobs) = &self.jobs {
            // The thread only ends after `jobs` is dropped, so a send cannot fail; if it did,
            // the job is dropped and its landing reports `JobPanicked`.
            let _ = jobs.send(job);
        }
        Landing { result }
    }
}

impl Drop for CommitThread {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<T> Landing<T> {
    /// Waits for the job's result.
    pub fn wait(self) -> Result<T, JobPanicked> {
        self.result.recv().map_err(|_| JobPanicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn jobs_run_in_submission_order_on_one_thread() {
        let thread = CommitThread::start().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let landings: Vec<_> = (0..20)
            .map(|i| {
                let seen = Arc::clone(&seen);
                thread.run(move || {
                    std::thread::sleep(std::time::Duration::from_millis((20 - i) % 3));
                    seen.lock().unwrap().push(i);
                    std::thread::current().id()
                })
            })
            .collect();
        let ids: Vec<_> = landings.into_iter().map(|l| l.wait().unwrap()).collect();
        assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<_>>());
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "one thread runs every job"
        );
        assert_ne!(ids[0], std::thread::current().id());
    }

    #[test]
    fn a_panicking_job_reports_itself_and_the_next_job_still_runs() {
        let thread = CommitThread::start().unwrap();
        let bad = thread.run(|| -> u32 { panic!("disk on fire") });
        let good = thread.run(|| 7u32);
        assert_eq!(bad.wait(), Err(JobPanicked));
        assert_eq!(good.wait(), Ok(7));
    }

    #[test]
    fn dropping_the_thread_finishes_queued_jobs() {
        let thread = CommitThread::start().unwrap();
        let landing = thread.run(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            42u8
        });
        drop(thread);
        assert_eq!(landing.wait(), Ok(42));
    }
}
