//! The kernel log (`/dev/kmsg`) as a witness of OOM kills: the kernel's word after a
//! container's cgroup is gone, and when the runtime missed the event (Docker on a busy
//! cgroup-v1 host has said `OOMKilled: false` for a container the kernel killed).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// How many `oom-kill:` records of the kernel log (`/dev/kmsg`) name a task of the cgroup of
/// container `id` (`task_memcg=/docker/ID`, `.../cri-containerd-ID.scope`...); `None` when the
/// log cannot be read. Only counted: the records hold names the container chose.
pub fn oom_kills(id: &str) -> Option<u64> {
    if id.len() < 12 {
        return None;
    }
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut record = vec![0u8; 8192];
    let mut kills = 0;
    // One record per read, until the end of the log (EAGAIN); bounded in any case.
    for _ in 0..1_000_000 {
        let n = match kmsg.read(&mut record) {
            Ok(0) => break,
            Ok(n) => n,
            // A record overwritten while reading: go on with the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        };
        if oom_kill_names(&record[..n], id) {
            kills += 1;
        }
    }
    Some(kills)
}

/// Whether one kernel log record is an `oom-kill:` of a task in container `id`'s cgroup.
fn oom_kill_names(record: &[u8], id: &str) -> bool {
    let text = String::from_utf8_lossy(record);
    let Some(message) = text.split_once(';').map(|(_, m)| m) else {
        return false;
    };
    let Some(fields) = message.strip_prefix("oom-kill:") else {
        return false;
    };
    // The first task_memcg only: the task's name comes after it and may hold anything.
    fields
        .split(',')
        .find_map(|f| f.strip_prefix("task_memcg="))
        .is_some_and(|path| {
            path.split('/').any(|component| {
                let inner = component.strip_suffix(".scope").unwrap_or(component);
                inner == id || inner.rsplit_once('-').is_some_and(|(_, tail)| tail == id)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_oom_records_count_for_their_container_only() {
        let id = "7a03f5f08e095dc30708f04abb4e7484700f52412310fc60ec5a1fcf98651aaa";
        let docker = format!("6,1234,1090044831,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),oom_memcg=/docker/{id},task_memcg=/docker/{id},task=tail,pid=15136,uid=0\n");
        assert!(oom_kill_names(docker.as_bytes(), id));
        let systemd = format!("6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/system.slice/docker-{id}.scope,task=x,pid=1,uid=0\n");
        assert!(oom_kill_names(systemd.as_bytes(), id));
        // Another container, a prefix, the name a task chose, another kind of record: no.
        let other = docker.replace(id, &"b".repeat(64));
        assert!(!oom_kill_names(other.as_bytes(), id));
        assert!(!oom_kill_names(docker.as_bytes(), &id[..12]));
        let named = format!(
            "6,1,2,-;oom-kill:task_memcg=/docker/other,task=x,task_memcg=/docker/{id},pid=1\n"
        );
        assert!(!oom_kill_names(named.as_bytes(), id));
        assert!(!oom_kill_names(
            format!("6,1,2,-;Memory cgroup {id}").as_bytes(),
            id
        ));
    }
}
