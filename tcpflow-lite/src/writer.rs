//! The file writer: one thread that creates, writes and closes the output files, fed with
//! owned buffers through a queue bounded in bytes. On small packets these system calls are most of a
//! capture's time; on a thread of their own they overlap with reading and reassembly.
//!
//! Failures are learned after the call that caused them: a direction whose file fails is
//! reported once per connection ([`Writer::failures`]) and the connection's later work is
//! dropped until it is forgotten ([`Op::Forget`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::beneath::{self, Dir};
use crate::flow::{tcpflow_name, Failure, FlowInfo};
use crate::hash::FlowMap;

/// One direction of a connection: (flow id, direction 0 or 1).
pub(crate) type Key = (u64, usize);

/// Most bytes (allocated, not only used) one [`Op::Write`] may carry.
pub(crate) const MESSAGE_BYTES: usize = 64 * 1024;

/// The most bytes handed over and not yet written (queued, or being written), each
/// operation counted with its own size: a producer that gets ahead waits.
pub(crate) const IN_FLIGHT_BYTES: usize = 1024 * 1024;

/// A sleeping writer is woken once this much is queued (or [`WAKE_OPS`] operations, or the
/// end): a wake-up costs system calls on both threads, worth it for a batch, not per write.
const WAKE_BYTES: usize = 256 * 1024;

/// Operations queued that wake a sleeping writer (files created and closed carry no bytes).
const WAKE_OPS: usize = 1024;

/// The longest a sleeping writer leaves a small batch queued: files of a quiet live capture
/// still appear and fill promptly.
const LATENCY: Duration = Duration::from_millis(50);

/// What the writer is asked to do, in order.
pub(crate) enum Op {
    /// A direction's file is created at its first bytes: tcpflow's name, with the first `cN`
    /// not taken on disk.
    Create { key: Key, flow: Box<FlowInfo> },
    /// Bytes of a direction at their stream offset (at most [`MESSAGE_BYTES`] allocated).
    Write {
        key: Key,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// Its file is closed (both FINs seen); it is reopened if more comes.
    Close { key: Key },
    /// The direction is done: its file closed and its name forgotten. `counted`: bytes of
    /// its connection the summary counted as reassembled when it closed, carried by the
    /// connection's last operation; if the connection failed, they were not written after all.
    Retire { key: Key, counted: u64 },
    /// The connection's failure was reported to the flow table, which hands it nothing more:
    /// its id may be forgotten.
    Forget { id: u64 },
}

impl Op {
    /// The memory it holds, itself included.
    fn cost(&self) -> usize {
        std::mem::size_of::<Op>()
            + match self {
                Op::Create { .. } => std::mem::size_of::<FlowInfo>(),
                Op::Write { bytes, .. } => bytes.capacity(),
                _ => 0,
            }
    }
}

/// The queue between the two threads, bounded in bytes ([`IN_FLIGHT_BYTES`]). The writer
/// takes everything queued at once; either side sleeps only when it must, and is woken only
/// when the other knows it sleeps (a wake-up is a system call).
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    /// The writer waits here for work.
    work: Condvar,
    /// The producer waits here for room.
    room: Condvar,
}

#[derive(Default)]
struct State {
    ops: Vec<Op>,
    /// What `ops` hold.
    queued: usize,
    /// What the writer took and has not finished writing.
    writing: usize,
    writer_sleeps: bool,
    producer_waits: bool,
    /// No more operations will come.
    closed: bool,
    /// The writer ended (or panicked): nothing more will be written.
    gone: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never leaves the state half-changed: it is plain counters and a list.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, op: Op) -> io::Result<()> {
        let cost = op.cost();
        let mut state = self.lock();
        while !state.gone && state.queued + state.writing > 0 {
            if state.queued + state.writing + cost <= IN_FLIGHT_BYTES {
                break;
            }
            if state.writer_sleeps {
                self.work.notify_one();
            }
            state.producer_waits = true;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.producer_waits = false;
        }
        if state.gone {
            return Err(io::Error::other("the file writer stopped"));
        }
        state.ops.push(op);
        state.queued += cost;
        if state.writer_sleeps && (state.queued >= WAKE_BYTES || state.ops.len() >= WAKE_OPS) {
            self.work.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        if state.writer_sleeps {
            self.work.notify_one();
        }
    }

    /// The writer's side: everything queued, into `batch` (empty); false at the end.
    fn take(&self, batch: &mut Vec<Op>) -> bool {
        let mut state = self.lock();
        state.writing = 0;
        if state.producer_waits {
            self.room.notify_one();
        }
        while state.ops.is_empty() {
            if state.closed {
                return false;
            }
            state.writer_sleeps = true;
            state = self
                .work
                .wait_timeout(state, LATENCY)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.writer_sleeps = false;
        }
        std::mem::swap(&mut state.ops, batch);
        state.writing = std::mem::take(&mut state.queued);
        true
    }

    /// The writer ended: a producer waiting for room, or coming later, gets an error.
    fn writer_gone(&self) {
        let mut state = self.lock();
        state.gone = true;
        state.ops.clear();
        if state.producer_waits {
            self.room.notify_one();
        }
    }
}

/// Marks the writer gone when its thread ends, by returning or by a panic.
struct Gone(Arc<Queue>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.writer_gone();
    }
}

/// The sending end, owned by the thread that reassembles.
pub(crate) struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<u64>>,
    failures: Receiver<Failure>,
    /// Set by the writer after it queued a failure: checking costs one load per call.
    failed: Arc<AtomicBool>,
    /// Known once the writer ended ([`Writer::finish`]): bytes counted at a connection's
    /// close whose output failed afterwards.
    uncounted: u64,
}

impl Writer {
    /// Starts the writer thread on `dir` (whose path is `path`, for messages), with at most
    /// `max_open` files open at once.
    pub(crate) fn spawn(dir: Dir, path: PathBuf, max_open: usize) -> io::Result<Writer> {
        let queue = Arc::new(Queue::default());
        let (report, failures) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let mut files = Files {
            dir,
            path,
            max_open: max_open.max(1),
            open_count: 0,
            clock: 0,
            outputs: FlowMap::default(),
            failed_ids: FlowMap::default(),
            uncounted: 0,
            report,
            reported: Arc::clone(&failed),
        };
        let gone = Gone(Arc::clone(&queue));
        let thread = std::thread::Builder::new()
            .name("tcpflow-lite-writer".to_owned())
            .spawn(move || {
                let gone = gone;
                block_stop_signals();
                let mut batch = Vec::new();
                while gone.0.take(&mut batch) {
                    for op in batch.drain(..) {
                        files.apply(op);
                    }
                }
                files.uncounted
            })?;
        Ok(Writer {
            queue,
            thread: Some(thread),
            failures,
            failed,
            uncounted: 0,
        })
    }

    /// Queues `op`, waiting while too much is in flight. An error means the writer is gone
    /// (it panicked, or the output was finished): [`Writer::finish`] says why.
    pub(crate) fn send(&self, op: Op) -> io::Result<()> {
        self.queue.push(op)
    }

    /// The connections whose output failed since the last call, each once. The caller
    /// hands them nothing more, so the writer may forget them.
    pub(crate) fn failures(&self) -> Vec<Failure> {
        // A plain load first: this is asked every few packets.
        if !self.failed.load(Ordering::Relaxed) || !self.failed.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        let failures: Vec<Failure> = self.failures.try_iter().collect();
        for failure in &failures {
            // Queued after anything still on its way for it; a writer gone needs nothing.
            let _ = self.send(Op::Forget {
                id: failure.flow.id,
            });
        }
        failures
    }

    /// Waits until everything queued is written and the writer has ended. A panic of the
    /// writer is an error.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.queue.close();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.uncounted = thread.join().map_err(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            io::Error::other(format!("the file writer panicked: {why}"))
        })?;
        // It has ended: whatever it reported is here now.
        self.failed.store(true, Ordering::Release);
        Ok(())
    }

    /// Bytes the summary counted as reassembled when their connection closed, whose output
    /// failed afterwards: exact once [`Writer::finish`] returned, zero before.
    pub(crate) fn uncounted(&self) -> u64 {
        self.uncounted
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // What was queued is still written: nothing captured is lost.
        let _ = self.finish();
    }
}

/// The writer's own signals go to the thread that reads: SIGINT, SIGTERM and SIGHUP must
/// interrupt its waits so that a capture stops at once.
fn block_stop_signals() {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    // Cannot fail: SIG_BLOCK with a valid set (and if it did, Ctrl-C would only be slower).
    let _ = set.thread_block();
}

/// A direction's file on the writer's side.
struct Output {
    /// Closed when over the open-files limit or after both FINs; reopened when needed.
    file: Option<File>,
    name: String,
    flow: Box<FlowInfo>,
    last_use: u64,
}

/// The files, owned by the writer thread.
struct Files {
    dir: Dir,
    path: PathBuf,
    max_open: usize,
    open_count: usize,
    clock: u64,
    outputs: FlowMap<Key, Output>,
    /// Connections that failed and were reported, until forgotten: their work is dropped.
    failed_ids: FlowMap<u64, ()>,
    /// What [`Op::Retire`] counted for connections in `failed_ids`.
    uncounted: u64,
    report: Sender<Failure>,
    reported: Arc<AtomicBool>,
}

impl Files {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Create { key, flow } => {
                if self.failed_ids.contains_key(&key.0) {
                    return;
                }
                match self.create(&flow, key.1) {
                    Ok((file, name)) => {
                        self.open_count += 1;
                        let output = Output {
                            file: Some(file),
                            name,
                            flow,
                            last_use: 0,
                        };
                        // A direction is retired before it is created again: nothing is
                        // replaced, but the count stays right if it were.
                        if let Some(mut old) = self.outputs.insert(key, output) {
                            close(&mut self.open_count, &mut old);
                        }
                        self.keep_within_limit(key);
                    }
                    Err(error) => self.fail(*flow, error),
                }
            }
            Op::Write { key, offset, bytes } => {
                if let Err(error) = self.write(key, offset, &bytes) {
                    if let Some(output) = self.outputs.get(&key) {
                        let flow = (*output.flow).clone();
                        self.fail(flow, error);
                    }
                }
            }
            Op::Close { key } => {
                if let Some(output) = self.outputs.get_mut(&key) {
                    close(&mut self.open_count, output);
                }
            }
            Op::Retire { key, counted } => {
                if let Some(mut output) = self.outputs.remove(&key) {
                    close(&mut self.open_count, &mut output);
                }
                // Its last operation: a failure comes before it or never. (A connection
                // failed while open is closed with nothing counted.)
                if self.failed_ids.contains_key(&key.0) {
                    self.uncounted += counted;
                }
            }
            Op::Forget { id } => {
                self.failed_ids.remove(&id);
            }
        }
    }

    /// Creates the file of direction `dir`: tcpflow's name, with the first `cN` suffix not
    /// taken on disk (so `cN` depends on the files written, not on connections seen).
    fn create(&self, flow: &FlowInfo, dir: usize) -> io::Result<(File, String)> {
        let mut reuse = 0;
        loop {
            let name = tcpflow_name(&flow.direction(dir), reuse);
            match self.dir.open_beneath(&name, beneath::CREATE_NEW, 0o644) {
                Ok(file) => return Ok((file, name)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && reuse < u32::MAX => {
                    reuse += 1
                }
                Err(e) => return Err(in_file(&self.path, e, &name)),
            }
        }
    }

    fn write(&mut self, key: Key, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.clock += 1;
        let clock = self.clock;
        // Nothing for a direction never created (its connection failed): dropped.
        let Some(output) = self.outputs.get_mut(&key) else {
            return Ok(());
        };
        output.last_use = clock;
        if output.file.is_none() {
            let file = self
                .dir
                .open_beneath(&output.name, nix::fcntl::OFlag::O_WRONLY, 0)
                .map_err(|e| in_file(&self.path, e, &output.name))?;
            output.file = Some(file);
            self.open_count += 1;
            self.keep_within_limit(key);
        }
        match self
            .outputs
            .get(&key)
            .and_then(|o| o.file.as_ref().map(|f| (f, &o.name)))
        {
            Some((file, name)) => file
                .write_all_at(bytes, offset)
                .map_err(|e| in_file(&self.path, e, name)),
            None => Ok(()),
        }
    }

    /// Over the open-file limit: closes the least recently used quarter of the open files
    /// but `keep` in one pass (so the scan is paid once per many files, not once per file).
    fn keep_within_limit(&mut self, keep: Key) {
        if self.open_count <= self.max_open {
            return;
        }
        let mut open: Vec<(u64, Key)> = self
            .outputs
            .iter()
            .filter(|(k, o)| **k != keep && o.file.is_some())
            .map(|(k, o)| (o.last_use, *k))
            .collect();
        let count = (open.len() / 4).max(1).min(open.len());
        if count == 0 {
            return;
        }
        open.select_nth_unstable(count - 1);
        for (_, key) in &open[..count] {
            if let Some(output) = self.outputs.get_mut(key) {
                close(&mut self.open_count, output);
            }
        }
    }

    /// The connection's output failed: both its directions are closed and forgotten, it is
    /// reported once, and its later work dropped until [`Op::Forget`].
    fn fail(&mut self, flow: FlowInfo, error: io::Error) {
        for dir in 0..2 {
            if let Some(mut output) = self.outputs.remove(&(flow.id, dir)) {
                close(&mut self.open_count, &mut output);
            }
        }
        if self.failed_ids.insert(flow.id, ()).is_none() {
            // The receiving end lives as long as this thread is joined: a send cannot fail
            // but while the sink is dropped, when nobody would read it.
            let _ = self.report.send(Failure { flow, error });
            self.reported.store(true, Ordering::Release);
        }
    }
}

/// Closes `output`'s file if it is open, keeping `open_count` (the files open) right.
fn close(open_count: &mut usize, output: &mut Output) {
    if output.file.take().is_some() {
        *open_count -= 1;
    }
}

fn in_file(dir: &std::path::Path, error: io::Error, name: &str) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{}: {error}", dir.join(name).display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(capacity: usize) -> Op {
        Op::Write {
            key: (0, 0),
            offset: 0,
            bytes: Vec::with_capacity(capacity),
        }
    }

    #[test]
    fn what_is_in_flight_stays_within_its_bound() {
        let queue = Arc::new(Queue::default());
        let consumer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                let mut taken = 0;
                while queue.take(&mut batch) {
                    taken += batch.len();
                    batch.clear();
                    std::thread::sleep(Duration::from_millis(1));
                }
                taken
            })
        };
        for _ in 0..200 {
            queue.push(write(MESSAGE_BYTES)).unwrap();
            let state = queue.lock();
            assert!(state.queued + state.writing <= IN_FLIGHT_BYTES);
        }
        queue.close();
        assert_eq!(consumer.join().unwrap(), 200, "everything queued was taken");
    }

    #[test]
    fn a_writer_that_panics_is_an_error_not_a_hang() {
        let queue = Arc::new(Queue::default());
        let writer = {
            let gone = Gone(Arc::clone(&queue));
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                gone.0.take(&mut batch);
                panic!("writer failed");
            })
        };
        // The producer fills the queue and waits for room: the panic ends the wait.
        let failed = (0..1000).find_map(|_| queue.push(write(MESSAGE_BYTES)).err());
        assert!(failed.is_some(), "pushing never failed");
        assert!(writer.join().is_err());
        assert!(queue.push(write(0)).is_err());
    }
}
