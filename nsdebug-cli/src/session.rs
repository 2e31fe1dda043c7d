//! A debug session's processes, watched from outside: the container's root can SIGSTOP any of
//! them (they are in its pid namespace), and a stopped program deep in the session (a pipe's
//! middle, a background job) would leave the operator waiting with no word of why.

use std::collections::BTreeSet;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// How often the session is looked at.
const EVERY: Duration = Duration::from_millis(300);
/// At most this many processes are followed (a fork bomb in the session costs nothing more).
const MAX_PROCESSES: usize = 4096;

/// Watches the processes descending from a session's first process until dropped, and says
/// once for each one that is stopped.
pub struct StopWatch {
    /// Dropped to stop the thread at once (not at its next look).
    done: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StopWatch {
    /// Starts watching the descendants of `root` (our child).
    pub fn start(root: i32) -> StopWatch {
        let (done, stop) = channel();
        let thread = std::thread::Builder::new()
            .name("session-stops".into())
            .spawn(move || watch(root, &stop))
            .ok();
        StopWatch {
            done: Some(done),
            thread,
        }
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(root: i32, stop: &Receiver<()>) {
    let mut told = BTreeSet::new();
    loop {
        for pid in descendants(root) {
            match stopped(pid) {
                Some(comm) if told.insert(pid) => crate::cli::notice(format_args!(
                    "session process {pid} ({}) is stopped (a host pid: `kill -CONT {pid}` on \
                     the host continues it; a job you stopped, or the container's root)",
                    crate::cmd::shown(&comm)
                )),
                Some(_) => {}
                None => {
                    told.remove(&pid);
                }
            }
        }
        if !matches!(stop.recv_timeout(EVERY), Err(RecvTimeoutError::Timeout)) {
            return;
        }
    }
}

/// Every process below `root` (not `root`): each thread's `children` file, breadth first.
fn descendants(root: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let Ok(children) = std::fs::read_to_string(path) else {
                continue;
            };
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if found.len() >= MAX_PROCESSES {
                    return found;
                }
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// The command name of `pid` when it is stopped (state `T`, or `t` under a tracer).
fn stopped(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE ...": the name may hold spaces and parentheses, the last ")" ends it.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    match rest.trim_start().chars().next()? {
        'T' | 't' => Some(comm.to_owned()),
        _ => None,
    }
}
