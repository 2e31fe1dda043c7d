//! Who `docker exec --user USER[:GROUP]` runs a program as, from the container's
//! `/etc/passwd` and `/etc/group` read as data (never NSS: its modules are the container's
//! code). The same rules as moby and runc: a name is looked up in `/etc/passwd`; a number is
//! taken as it is, with the primary group of its `/etc/passwd` line if it has one, else 0;
//! without GROUP the supplementary groups are the primary group plus every group of
//! `/etc/group` that lists the user's name; with GROUP, that group alone.

/// The ids a program runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecUser {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its supplementary groups (the primary one first, as `docker exec` sets them).
    pub groups: Vec<u32>,
}

/// The `:`-separated fields of each line of a passwd or group file.
fn entries(file: &str) -> impl Iterator<Item = Vec<&str>> {
    file.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<_>>())
}

/// Who `user` (`-S`) and `group` (`-G`) are in a container whose `/etc/passwd` and
/// `/etc/group` are `passwd` and `group` (empty when the image has none). A name that is in
/// neither file, or a line without valid ids, is an error naming it.
pub fn exec_user(
    passwd: &str,
    group: &str,
    user: &str,
    group_arg: Option<&str>,
) -> Result<ExecUser, String> {
    let number = user.parse::<u32>().ok();
    let line = entries(passwd).find(|fields| match number {
        Some(uid) => fields.get(2).and_then(|f| f.parse().ok()) == Some(uid),
        None => fields.first() == Some(&user),
    });
    let (uid, gid, name) = match (line, number) {
        (Some(fields), _) => {
            let id = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
            match (id(2), id(3)) {
                (Some(uid), Some(gid)) => (uid, gid, fields.first().copied()),
                _ => {
                    return Err(format!(
                        "user {user:?}: its /etc/passwd line has no valid uid and gid"
                    ))
                }
            }
        }
        (None, Some(uid)) => (uid, 0, None),
        (None, None) => {
            return Err(format!(
                "user {user:?}: no such name in the container's /etc/passwd"
            ))
        }
    };
    if let Some(wanted) = group_arg {
        let gid = match wanted.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => entries(group)
                .find(|fields| fields.first() == Some(&wanted))
                .and_then(|fields| fields.get(2)?.parse().ok())
                .ok_or_else(|| format!("group {wanted:?}: no such name with a valid gid in the container's /etc/group"))?,
        };
        return Ok(ExecUser {
            uid,
            gid,
            groups: vec![gid],
        });
    }
    let mut groups = vec![gid];
    if let Some(name) = name {
        for fields in entries(group) {
            let Some(member_gid) = fields.get(2).and_then(|f| f.parse::<u32>().ok()) else {
                continue;
            };
            let listed = fields
                .get(3)
                .is_some_and(|members| members.split(',').any(|m| m.trim() == name));
            if listed && !groups.contains(&member_gid) {
                groups.push(member_gid);
            }
        }
    }
    Ok(ExecUser { uid, gid, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000::/app:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root,app\nnogroup:x:65534:\napp:x:1000:\ndocker:x:999:app\n";

    #[test]
    fn like_docker_exec_user() {
        // `docker exec -u nobody`: uid=65534 gid=65534 groups=65534.
        assert_eq!(
            exec_user(PASSWD, GROUP, "nobody", None),
            Ok(ExecUser {
                uid: 65534,
                gid: 65534,
                groups: vec![65534]
            })
        );
        // `-u 0` on a `--user 1000` container: root's gid and groups, not the container's.
        assert_eq!(
            exec_user(PASSWD, GROUP, "0", None),
            Ok(ExecUser {
                uid: 0,
                gid: 0,
                groups: vec![0, 10]
            })
        );
        assert_eq!(
            exec_user(PASSWD, GROUP, "app", None).map(|u| u.groups),
            Ok(vec![1000, 10, 999])
        );
        // A uid without a line: gid 0.
        assert_eq!(
            exec_user(PASSWD, GROUP, "4242", None),
            Ok(ExecUser {
                uid: 4242,
                gid: 0,
                groups: vec![0]
            })
        );
        // An explicit group: that group alone.
        assert_eq!(
            exec_user(PASSWD, GROUP, "app", Some("wheel")),
            Ok(ExecUser {
                uid: 1000,
                gid: 10,
                groups: vec![10]
            })
        );
        assert_eq!(
            exec_user("", "", "7", Some("8")).map(|u| (u.uid, u.gid)),
            Ok((7, 8))
        );
    }

    #[test]
    fn unknown_names_and_bad_lines_are_errors_naming_them() {
        assert!(exec_user(PASSWD, GROUP, "mallory", None).is_err_and(|e| e.contains("mallory")));
        assert!(exec_user(PASSWD, GROUP, "app", Some("nope")).is_err_and(|e| e.contains("nope")));
        assert!(exec_user("bad:x:zz:0::/:/bin/sh\n", "", "bad", None).is_err());
    }
}
