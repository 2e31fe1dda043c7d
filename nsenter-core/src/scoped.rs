//! Run a closure inside a target's namespaces on a fresh thread.

use crate::error::{Error, Result};
use crate::guard::{enter_thread, Via};
use crate::kind::NamespaceSet;
use crate::target::Target;

/// Runs `f` inside `target`'s namespaces of `kinds` and returns its result.
///
/// `f` runs on a new thread that enters the namespaces and then ends, so nothing is ever
/// restored and the calling thread (and every other one) stays where it is. This is safe
/// from any program, multi-threaded ones included. From async code call it through
/// `tokio::task::spawn_blocking` (it blocks until `f` returns).
///
/// A panic in `f` is resumed on the calling thread. User and time namespaces are refused
/// ([`Error::SingleThreadedOnly`]): the process has at least two threads here.
///
/// ```no_run
/// use nsenter_core::{run_in, Namespace, Pid, Target};
/// let target = Target::open(Pid::try_from(1234)?)?;
/// let hostname = run_in(&target, Namespace::Uts.into(), || std::fs::read_to_string("/proc/sys/kernel/hostname"))?;
/// # Ok::<(), nsenter_core::Error>(())
/// ```
pub fn run_in<F, R>(target: &Target, kinds: NamespaceSet, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    std::thread::scope(|scope| {
        let inside = std::thread::Builder::new()
            .name("nsenter".to_owned())
            .spawn_scoped(scope, move || -> Result<R> {
                enter_thread(target, kinds, Via::PidfdIfPinned).map_err(|(_, error)| error)?;
                Ok(f())
            })
            .map_err(Error::Thread)?;
        match inside.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
