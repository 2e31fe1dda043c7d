//! The runtime's record of confinement (no-new-privileges, a seccomp profile) against each
//! process's kernel state (`NoNewPrivs:`, `Seccomp:` of its status). A process less confined
//! than recorded makes the record mislead whoever reads it (`docker inspect`, docker-bench,
//! kube-bench): a process put into the container from outside (`nsenter`, `docker exec
//! --privileged`) without the filter. More confined than recorded is `record.grant-dropped`.

use super::powers::holders;
use super::process::Process;
use crate::{Finding, Record, Report, Severity};

/// Whether a process lacks one recorded confinement.
type Lacks = fn(&Process) -> bool;

pub(super) fn less_confined(processes: &[Process], record: &Record, report: &mut Report) {
    let checks: [(bool, &str, &str, Lacks); 2] = [
        (
            record.no_new_privileges,
            "no-new-privileges",
            "NoNewPrivs 0",
            |p| p.status.no_new_privs == Ok(false),
        ),
        (
            record.seccomp == Some(true),
            "a seccomp profile",
            "Seccomp 0",
            |p| p.status.seccomp == Ok(0),
        ),
    ];
    for (recorded, what, kernel, lacks) in checks {
        if !recorded {
            continue;
        }
        let lacking: Vec<&Process> = processes.iter().filter(|p| lacks(p)).collect();
        if lacking.is_empty() {
            continue;
        }
        let (pid, pids, others) = holders(&lacking);
        let label = lacking.first().map_or(String::new(), |p| p.label.clone());
        report.findings.push(
            Finding::new(
                "record.less-confined",
                Severity::High,
                format!(
                    "{} records {what}, but pid {pid} runs without it: its record misleads whoever reads it",
                    record.runtime
                ),
                format!("{label}: {kernel}{others}"),
            )
            .about(pid, pids),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::audit::granted::grants;
    use crate::audit::powers::tests::HELPER;
    use crate::status::Status;

    fn process(pid: i32, status: &str) -> Process {
        Process {
            pid,
            tgid: pid,
            dir: File::open("/").unwrap(),
            comm: "p".into(),
            label: format!("pid {pid} (p)"),
            status: Status::parse(status),
            namespaces: vec![],
            own_userns: None,
        }
    }

    fn ids(report: &Report) -> Vec<(&str, Option<i32>)> {
        report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.pid))
            .collect()
    }

    /// Each way the record and a process can differ: less confined than recorded is high
    /// about that process, more confined is the info grant-dropped, equal is nothing.
    #[test]
    fn the_record_against_each_process() {
        let confined = HELPER
            .replace("NoNewPrivs:\t0", "NoNewPrivs:\t1")
            .replace("Seccomp:\t0", "Seccomp:\t2");
        let both = [process(7, &confined), process(8, HELPER)];
        let mut record = Record {
            runtime: "docker".into(),
            ..Record::default()
        };
        record.set_security_opt(&["no-new-privileges".to_owned()]);
        let mut report = Report::default();
        less_confined(&both, &record, &mut report);
        assert_eq!(
            ids(&report),
            [
                ("record.less-confined", Some(8)),
                ("record.less-confined", Some(8))
            ]
        );
        assert!(report.findings.iter().all(|f| f.severity == Severity::High));
        let mut report = Report::default();
        less_confined(&both[..1], &record, &mut report);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        // seccomp=unconfined recorded, every process filtered: more confined than recorded.
        record.set_security_opt(&["seccomp=unconfined".to_owned()]);
        let mut report = Report::default();
        less_confined(&both, &record, &mut report);
        grants(&both[..1], &record, &mut report);
        assert_eq!(ids(&report), [("record.grant-dropped", Some(0))]);
        assert!(report.findings[0].title.contains("seccomp=unconfined"));
        let mut report = Report::default();
        grants(&both, &record, &mut report);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }
}
