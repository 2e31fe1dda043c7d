//! Who the program runs as: uid, gid and supplementary groups, decided from what the caller
//! asked for ([`Command::uid`](crate::Command::uid), `gid`, `groups`, `preserve_credentials`;
//! `-S USER` arrives here as ids the caller found in the container's `/etc/passwd` and
//! `/etc/group` with [`exec_user`](crate::user::exec_user)) and, for a confined program,
//! the ids the target runs as.
//!
//! A plain function of plain data, with no system call: the rules are unit-tested without
//! root (the seam youki keeps for its syscalls), and the forked child only applies the result.

/// What the caller asked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Requested<'a> {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<&'a [u32]>,
    /// A user namespace is joined and the caller's ids are not preserved: they become 0 there
    /// unless named.
    pub joins_user: bool,
}

/// The ids a confined program takes from the target (as seen inside its user namespace when
/// that is joined).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TargetIds<'a> {
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
}

/// The decision: `None` keeps the caller's (no call is made for it in the child).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<Vec<u32>>,
}

impl Ids {
    /// Whether the program runs as root (it then gets root's capabilities of the target's
    /// bounding set, as with `docker exec`).
    pub fn root(&self) -> bool {
        self.uid == Some(0)
    }
}

/// Decides the ids. `confined`: the target's ids when the program is confined like it.
/// `own_groups`: the caller's supplementary groups, asked for only when they could spare a
/// `setgroups` (which a user namespace may deny).
pub(crate) fn decide(
    requested: Requested<'_>,
    confined: Option<TargetIds<'_>>,
    own_groups: impl FnOnce() -> Option<Vec<u32>>,
) -> Ids {
    let (uid, gid) = match (confined, requested.joins_user) {
        // Explicit ids win over the target's, one by one (as `docker exec -u UID`).
        (Some(target), _) => (
            Some(requested.uid.unwrap_or(target.uid)),
            Some(requested.gid.unwrap_or(target.gid)),
        ),
        // After joining a user namespace the caller's ids mean nothing there: 0 (nsenter's).
        (None, true) => (
            Some(requested.uid.unwrap_or(0)),
            Some(requested.gid.unwrap_or(0)),
        ),
        (None, false) => (requested.uid, requested.gid),
    };
    let explicit_ids = requested.uid.is_some() || requested.gid.is_some();
    let groups = match (requested.groups, confined) {
        (Some(groups), _) => Some(groups.to_vec()),
        // The same groups as ours need no setgroups.
        (None, Some(target)) if !explicit_ids && Some(target.groups) == own_groups().as_deref() => {
            None
        }
        (None, Some(target)) if !explicit_ids => Some(target.groups.to_vec()),
        // Ids that change without groups named: none of the caller's groups is kept.
        (None, _) if uid.or(gid).is_some() => Some(Vec::new()),
        (None, _) => None,
    };
    Ids { uid, gid, groups }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::exec_user;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app\napp:x:1000:\n";

    /// A container whose processes run as app (1000:1000, groups 1000 and 10).
    const APP: TargetIds<'static> = TargetIds {
        uid: 1000,
        gid: 1000,
        groups: &[1000, 10],
    };

    fn host_groups() -> Option<Vec<u32>> {
        Some(vec![0, 4, 27])
    }

    /// `-S USER [-G GROUP]` as the CLI passes it: looked up in the container's files as data.
    fn as_user(user: &str, group: Option<&str>, joins_user: bool) -> Ids {
        let who = exec_user(PASSWD, GROUP, user, group).expect("a user of the fixture");
        let requested = Requested {
            uid: Some(who.uid),
            gid: Some(who.gid),
            groups: Some(&who.groups),
            joins_user,
        };
        decide(requested, Some(APP), host_groups)
    }

    #[test]
    fn a_confined_program_runs_as_the_target_runs() {
        let ids = decide(Requested::default(), Some(APP), host_groups);
        assert_eq!(
            ids,
            Ids {
                uid: Some(1000),
                gid: Some(1000),
                groups: Some(vec![1000, 10])
            }
        );
        assert!(!ids.root());
    }

    #[test]
    fn a_user_named_with_s_wins_over_the_targets_ids_with_its_own_groups() {
        let ids = as_user("nobody", None, false);
        assert_eq!(
            ids,
            Ids {
                uid: Some(65534),
                gid: Some(65534),
                groups: Some(vec![65534])
            }
        );
        // `-S 0` in a container of uid 1000 is root with root's groups, never app's.
        let ids = as_user("0", None, true);
        assert_eq!(ids.groups, Some(vec![0]));
        assert!(ids.root());
        let ids = as_user("app", Some("wheel"), false);
        assert_eq!(
            (ids.uid, ids.gid, ids.groups),
            (Some(1000), Some(10), Some(vec![10]))
        );
    }

    #[test]
    fn an_explicit_uid_alone_keeps_the_targets_gid_and_no_group_of_anyone() {
        let requested = Requested {
            uid: Some(0),
            ..Requested::default()
        };
        let ids = decide(requested, Some(APP), host_groups);
        assert_eq!((ids.uid, ids.gid), (Some(0), Some(1000)));
        // Neither the target's groups (they belong to uid 1000) nor the caller's.
        assert_eq!(ids.groups, Some(Vec::new()));
    }

    #[test]
    fn the_same_groups_as_the_callers_spare_setgroups() {
        let ids = decide(Requested::default(), Some(APP), || Some(vec![1000, 10]));
        assert_eq!(ids.groups, None);
        assert_eq!(ids.uid, Some(1000));
    }

    #[test]
    fn joining_a_user_namespace_makes_the_ids_0_there_and_drops_the_callers_groups() {
        let requested = Requested {
            joins_user: true,
            ..Requested::default()
        };
        let ids = decide(requested, None, || panic!("not needed without confinement"));
        assert_eq!(
            ids,
            Ids {
                uid: Some(0),
                gid: Some(0),
                groups: Some(Vec::new())
            }
        );
    }

    #[test]
    fn a_host_program_keeps_the_callers_ids_unless_named() {
        let ids = decide(Requested::default(), None, || panic!("not needed"));
        assert_eq!(ids, Ids::default());
        // `--setuid`-like: only the uid changes, and the host's groups are dropped.
        let requested = Requested {
            uid: Some(1000),
            ..Requested::default()
        };
        let ids = decide(requested, None, || panic!("not needed"));
        assert_eq!(
            (ids.uid, ids.gid, ids.groups),
            (Some(1000), None, Some(Vec::new()))
        );
        let requested = Requested {
            uid: Some(1000),
            groups: Some(&[5, 6]),
            ..Requested::default()
        };
        assert_eq!(decide(requested, None, || None).groups, Some(vec![5, 6]));
    }
}
