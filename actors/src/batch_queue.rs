//! `BatchQueue`: the queue and worker threads behind group commit. A worker waits for one
//! item, takes every item already queued behind it (up to a limit) and hands the whole batch
//! to the serving function, which runs it in one transaction. With [`Linger::NONE`] nothing
//! waits on purpose: a lone item is served at once, and batches grow only while every worker
//! is busy. With a linger, a worker that finds only a few items keeps gathering for a while,
//! so work that arrives steadily but never piles up (heartbeats) still shares commits, while
//! work that does pile up is served at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often an idle worker looks whether the queue was dropped.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The sending side; cheap to clone. The workers stop once every clone is dropped.
pub struct BatchQueue<T> {
    sender: Sender<T>,
}

impl<T> std::fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue").finish_non_exhaustive()
    }
}

impl<T> Clone for BatchQueue<T> {
    fn clone(&self) -> Self {
        BatchQueue {
            sender: self.sender.clone(),
        }
    }
}

/// How long a worker keeps gathering a batch after its first item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linger {
    /// Never longer than this after the first item.
    pub up_to: Duration,
    /// Stop as soon as the batch has this many items.
    pub enough: usize,
}

impl Linger {
    /// Take what is queued and go.
    pub const NONE: Linger = Linger {
        up_to: Duration::ZERO,
        enough: 1,
    };
}

/// How much work a batcher has done, for tests and benchmarks: items taken from the queue
/// (counted by the queue) and transactions they were served in (counted by the server).
#[derive(Debug, Default)]
pub struct BatchCounts {
    items: AtomicU64,
    transactions: AtomicU64,
}

impl BatchCounts {
    /// One more transaction served.
    pub fn add_transaction(&self) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
    }

    /// (items taken, transactions) so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.items.load(Ordering::Relaxed),
            self.transactions.load(Ordering::Relaxed),
        )
    }
}

/// The queue is gone: its workers stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStopped;

impl<T: Send + 'static> BatchQueue<T> {
    /// Starts `workers` threads named `{name}-{n}`, each serving batches of at most
    /// `max_batch` items with `serve`, gathering each batch as `linger` says and counting the
    /// items it takes in `counts`.
    pub fn start(
        name: &str,
        workers: usize,
        max_batch: usize,
        linger: Linger,
        counts: Arc<BatchCounts>,
        serve: impl Fn(Vec<T>) + Send + Sync + 'static,
    ) -> BatchQueue<T> {
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let serve = Arc::new(serve);
        for n in 0..workers.max(1) {
            let receiver = receiver.clone();
            let serve = serve.clone();
            let counts = counts.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    while let Some(batch) = next_batch(&receiver, max_batch.max(1), linger) {
                        counts
                            .items
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        serve(batch);
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, queue = name, "cannot start a batch worker");
            }
        }
        BatchQueue { sender }
    }

    /// Queues `item` for the next batch.
    pub fn push(&self, item: T) -> Result<(), QueueStopped> {
        self.sender.send(item).map_err(|_| QueueStopped)
    }
}

/// Waits for an item, then takes every item queued behind it or arriving while `linger`
/// lets it wait (up to `max_batch`). `None` once every sender is gone. The lock is held only
/// while gathering, so one worker gathers while the others commit.
fn next_batch<T>(
    receiver: &Mutex<Receiver<T>>,
    max_batch: usize,
    linger: Linger,
) -> Option<Vec<T>> {
    let receiver = receiver.lock().ok()?;
    let first = loop {
        match receiver.recv_timeout(IDLE_CHECK) {
            Ok(item) => break item,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    };
    let gathered_until = Instant::now() + linger.up_to;
    let mut batch = vec![first];
    while batch.len() < max_batch {
        let wait = gathered_until.saturating_duration_since(Instant::now());
        let next = if wait.is_zero() || batch.len() >= linger.enough {
            receiver.try_recv().ok()
        } else {
            receiver.recv_timeout(wait).ok()
        };
        match next {
            Some(item) => batch.push(item),
            None => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<T: Send + 'static> BatchQueue<T> {
        fn start_uncounted(
            name: &str,
            workers: usize,
            max_batch: usize,
            linger: Linger,
            serve: impl Fn(Vec<T>) + Send + Sync + 'static,
        ) -> BatchQueue<T> {
            BatchQueue::start(name, workers, max_batch, linger, Arc::default(), serve)
        }
    }
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn items_queued_while_the_worker_is_busy_come_as_one_batch() {
        let (batches, seen) = mpsc::channel::<Vec<u32>>();
        let hold = Arc::new(AtomicBool::new(true));
        let held = hold.clone();
        let queue =
            BatchQueue::start_uncounted("test", 1, 10, Linger::NONE, move |batch: Vec<u32>| {
                let first = batch[0] == 0;
                batches.send(batch).expect("test alive");
                // The first batch keeps the only worker busy until the others are queued.
                while first && held.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        queue.push(0).expect("queued");
        assert_eq!(
            seen.recv().expect("first batch"),
            vec![0],
            "a lone item at once"
        );
        for n in 1..=14 {
            queue.push(n).expect("queued");
        }
        hold.store(false, Ordering::SeqCst);
        assert_eq!(
            seen.recv().expect("second batch"),
            (1..=10).collect::<Vec<_>>(),
            "what waited, in order, up to the limit"
        );
        assert_eq!(seen.recv().expect("third batch"), vec![11, 12, 13, 14]);
    }

    #[test]
    fn with_a_linger_a_batch_waits_for_enough_items_and_no_longer() {
        let (batches, seen) = mpsc::channel::<Vec<u32>>();
        let linger = Linger {
            up_to: Duration::from_secs(5),
            enough: 3,
        };
        let queue = BatchQueue::start_uncounted("test", 1, 10, linger, move |batch| {
            batches.send(batch).expect("test alive");
        });
        let started = Instant::now();
        for n in 1..=3 {
            queue.push(n).expect("queued");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(seen.recv().expect("batch"), vec![1, 2, 3]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "served once enough had come, not at the limit"
        );
    }

    #[test]
    fn a_linger_ends_at_its_limit_even_while_items_keep_coming() {
        let (batches, seen) = mpsc::channel::<Vec<u32>>();
        let linger = Linger {
            up_to: Duration::from_millis(150),
            enough: 100,
        };
        let queue = BatchQueue::start_uncounted("test", 1, 100, linger, move |batch| {
            batches.send(batch).expect("test alive");
        });
        let started = Instant::now();
        for n in 0..20 {
            queue.push(n).expect("queued");
            std::thread::sleep(Duration::from_millis(25));
        }
        let first = seen.recv().expect("batch");
        assert!(
            first.len() < 20,
            "the first batch went out at its limit, not after all 20 ({} ms)",
            started.elapsed().as_millis()
        );
        let rest: usize = std::iter::from_fn(|| seen.recv_timeout(Duration::from_secs(1)).ok())
            .map(|batch| batch.len())
            .sum();
        assert_eq!(first.len() + rest, 20, "nothing lost");
    }

    #[test]
    fn workers_stop_when_the_queue_is_dropped() {
        let (done, stopped) = mpsc::channel::<()>();
        struct SaysWhenDropped(Sender<()>);
        impl Drop for SaysWhenDropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let guard = SaysWhenDropped(done);
        let queue = BatchQueue::start_uncounted("test", 2, 4, Linger::NONE, move |_: Vec<u8>| {
            let _keep = &guard;
        });
        drop(queue);
        // Both workers drop their handle on the serving function; the last one drops it.
        stopped
            .recv_timeout(IDLE_CHECK * 3)
            .expect("workers stopped and dropped the serving function");
    }
}
