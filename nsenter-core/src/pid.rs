//! Process ids as a type: a [`Pid`] always names one process (or thread), never a process
//! group or "every process" as 0 and negative numbers do for `kill(2)`.

use std::fmt;

use crate::error::Error;

/// The id of one process (or thread), greater than 0, in the caller's pid namespace unless
/// said otherwise.
///
/// ```
/// use nsenter_core::Pid;
/// let pid = Pid::new(1234).expect("a process id"); // ok: a literal above 0
/// assert_eq!(pid.get(), 1234);
/// assert_eq!(pid.to_string(), "1234");
/// // 0 and negative numbers name process groups to kill(2): never one process.
/// assert_eq!(Pid::new(0), None);
/// assert!(Pid::try_from(-1).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

impl Pid {
    /// `raw` as a pid: `None` unless it is greater than 0.
    pub const fn new(raw: i32) -> Option<Pid> {
        if raw > 0 {
            Some(Pid(raw))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> i32 {
        self.0
    }

    /// The calling process.
    pub fn this() -> Pid {
        // A running process's own pid is greater than 0 and fits an i32 (pid_max <= 2^22).
        Pid(std::process::id() as i32)
    }
}

impl TryFrom<i32> for Pid {
    type Error = Error;

    /// `raw` as a pid, or [`Error::InvalidPid`] for 0 and negative numbers.
    fn try_from(raw: i32) -> Result<Pid, Error> {
        Pid::new(raw).ok_or(Error::InvalidPid { raw })
    }
}

impl From<Pid> for i32 {
    fn from(pid: Pid) -> i32 {
        pid.0
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
