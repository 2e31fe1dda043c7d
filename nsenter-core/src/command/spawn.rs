//! Starting the program: the fork (or, for `exec_in`, the caller itself), the child's report
//! of a failed step, and the last check of a host program once it is in the pid namespace.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::{ExitStatus, Output};

use super::{Command, Stdio};
use crate::child::{self, Step};
use crate::confine;
use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::sys;
use crate::target::Target;

use super::prepare::without_own_user_namespace;
use super::process::Child;

impl Command {
    /// Starts the program inside `target`'s namespaces of `kinds`. Streams given as
    /// [`Stdio::Fd`] are handed over (and reset to `Inherit` in this `Command`).
    pub fn spawn_in(&mut self, target: &Target, kinds: NamespaceSet) -> Result<Child> {
        let stdio = std::mem::take(&mut self.stdio);
        let kinds = without_own_user_namespace(target, kinds)?;
        let prepared = self.prepare(target, kinds, stdio)?;
        let (err_read, err_write) =
            sys::pipe().map_err(|source| self.spawn_error(Step::Pipe, source))?;
        // Above stderr, so that the child's dup2 onto 0-2 and close_range cannot hit it
        // (a daemon may run with 0-2 closed, and pipe() then returns one of them).
        let high = sys::dup_at_least(err_write.as_fd(), 3)
            .map_err(|source| self.spawn_error(Step::Dup, source))?;
        drop(err_write); // or the read end would never see EOF
        let err_write = high;
        // A host program waits in the pid namespace until it is checked again (below).
        let handshake = match prepared.recheck {
            true => {
                let pipes = (sys::pipe(), sys::pipe());
                let ((ready_read, ready_write), (go_read, go_write)) = match pipes {
                    (Ok(ready), Ok(go)) => (ready, go),
                    (Err(source), _) | (_, Err(source)) => {
                        return Err(self.spawn_error(Step::Pipe, source))
                    }
                };
                Some((ready_read, ready_write, go_read, go_write))
            }
            false => None,
        };
        let plan = prepared.plan(
            Some(err_write.as_fd()),
            handshake
                .as_ref()
                .map(|(_, ready, go, _)| child::Handshake {
                    ready: ready.as_fd(),
                    go: go.as_fd(),
                }),
        );
        // No signal handler of the caller's may run in the child before it resets them.
        let blocked = crate::relay::SignalsBlocked::all();
        // SAFETY: in the child, `child::run` makes only async-signal-safe system calls on data
        // prepared above (no allocation, no locks) and never returns.
        let forked = unsafe { sys::fork() };
        let forked = match forked {
            Ok(None) => child::run(&plan),
            Ok(Some(pid)) => Ok(pid),
            Err(source) => Err(source),
        };
        drop(blocked);
        let pid = forked.map_err(|source| self.spawn_error(Step::Fork, source))?;
        drop(err_write);
        drop(prepared);
        if let Some((ready_read, ready_write, go_read, go_write)) = handshake {
            drop((ready_write, go_read));
            // Ready: the program is in the pid namespace, about to exec. End of file: it
            // failed before, and says why on the error pipe.
            if sys::read_byte(ready_read.as_fd()).unwrap_or(false) {
                let refusal =
                    match confine::host_program_reachable(target, kinds, self.uid, Some(pid)) {
                        Ok(None) => None,
                        Ok(Some(why)) => Some(Error::HostProgramReachable {
                            target: target.id(),
                            why,
                        }),
                        Err(error) => Some(error),
                    };
                if let Some(error) = refusal {
                    drop(go_write); // the program exits without exec
                    let _ = Child::started(pid).wait();
                    return Err(error);
                }
                sys::write_byte(go_write.as_fd())
                    .map_err(|source| self.spawn_error(Step::Pipe, source))?;
            }
        }
        match read_failure(err_read) {
            None => Ok(Child::started(pid)),
            Some(failure) => {
                // The child exited with 127 right after reporting; reap it.
                let _ = Child::started(pid).wait();
                Err(self.failure_error(target, kinds, failure))
            }
        }
    }

    /// Replaces the calling process with the program, inside `target`'s namespaces of
    /// `kinds`: no fork, so the program keeps this process's pid, parent, signals and
    /// terminal, and its exit status is this process's (what `nsenter` does when it need not
    /// fork). Returns only on failure.
    ///
    /// The pid namespace cannot be joined this way (only children enter one):
    /// [`Error::NeedsFork`]. User and time namespaces, and the mount namespace of a process
    /// whose threads share their filesystem attributes, need a single-threaded caller; the
    /// kernel's refusal is reported as for [`spawn_in`](Command::spawn_in).
    ///
    /// As in the forked child, the process becomes non-dumpable, every signal disposition is
    /// reset to the default and fds above stderr are marked close-on-exec: on failure the
    /// caller is left so (and possibly inside some of the namespaces), fit only to report
    /// the error and exit.
    pub fn exec_in(&mut self, target: &Target, kinds: NamespaceSet) -> Error {
        if kinds.contains(Namespace::Pid) {
            return Error::NeedsFork {
                namespace: Namespace::Pid,
            };
        }
        if self.toolbox.is_some() {
            // Its mount namespace is made by unshare, which a threaded process cannot do.
            return Error::NeedsFork {
                namespace: Namespace::Mnt,
            };
        }
        let stdio = std::mem::take(&mut self.stdio);
        let kinds = match without_own_user_namespace(target, kinds) {
            Ok(kinds) => kinds,
            Err(error) => return error,
        };
        let prepared = match self.prepare(target, kinds, stdio) {
            Ok(prepared) => prepared,
            Err(error) => return error,
        };
        if kinds.contains(Namespace::Mnt) {
            // setns(CLONE_NEWNS) needs an unshared fs struct even in a single thread's process
            // if a runtime started threads that are gone; harmless otherwise.
            if let Err(e) = sys::unshare_fs() {
                return Error::from_setns(target.id(), kinds, e);
            }
        }
        let plan = prepared.plan(None, None);
        child::reset_signals();
        let failure = match child::setup(&plan) {
            Ok(()) => child::exec(&plan),
            Err(failure) => failure,
        };
        self.failure_error(target, kinds, failure)
    }

    /// The typed error for a failed step of the child (or of `exec_in`).
    fn failure_error(
        &self,
        target: &Target,
        kinds: NamespaceSet,
        (step, errno): child::Failure,
    ) -> Error {
        let source = std::io::Error::from_raw_os_error(errno);
        match step {
            Step::Setns => Error::from_setns(target.id(), kinds, source),
            Step::Cgroup => Error::Cgroup {
                target: target.id(),
                source,
            },
            Step::Exec if errno == libc::ENOENT => Error::ProgramNotFound {
                program: self.program_name(),
                searched_path: !self.program.as_bytes().contains(&b'/'),
            },
            other => self.spawn_error(other, source),
        }
    }

    /// Runs the program inside the namespaces and waits for it.
    pub fn status_in(&mut self, target: &Target, kinds: NamespaceSet) -> Result<ExitStatus> {
        self.spawn_in(target, kinds)?.wait()
    }

    /// Runs the program inside the namespaces, capturing its standard output and error.
    pub fn output_in(&mut self, target: &Target, kinds: NamespaceSet) -> Result<Output> {
        let pipe =
            |cmd: &Command| sys::pipe().map_err(|source| cmd.spawn_error(Step::Pipe, source));
        let (out_read, out_write) = pipe(self)?;
        let (err_read, err_write) = pipe(self)?;
        self.stdout(Stdio::Fd(out_write))
            .stderr(Stdio::Fd(err_write));
        let mut child = self.spawn_in(target, kinds)?;
        let stderr_reader = std::thread::spawn(move || read_all(err_read));
        let stdout = read_all(out_read);
        let stderr = stderr_reader.join().unwrap_or_default();
        let status = child.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Reads the child's failure report: `None` when the pipe closed without one (the exec
/// succeeded and close-on-exec closed it).
fn read_failure(pipe: OwnedFd) -> Option<child::Failure> {
    let mut file = std::fs::File::from(pipe);
    let mut report = [0u8; 8];
    let mut got = 0;
    while got < report.len() {
        match file.read(&mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if got < report.len() {
        return None;
    }
    let [s0, s1, s2, s3, e0, e1, e2, e3] = report;
    let step = Step::from_code(u32::from_ne_bytes([s0, s1, s2, s3]));
    Some((step, i32::from_ne_bytes([e0, e1, e2, e3])))
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = std::fs::File::from(fd).read_to_end(&mut bytes);
    bytes
}
