//! One module per subcommand, thin over the libraries.

pub mod audit;
pub mod docs;
pub mod enter;
pub mod flow;
pub mod mem;
pub mod pid;
pub mod ps;
pub mod stopped;
pub mod trace;
pub mod veth;
pub mod why;

/// The one escaping function of every command's text output (see [`crate::shown`]).
pub(crate) use crate::shown::shown;

/// Resolves TARGET through nsdebug-resolve and tells the user its notes (which container of
/// a pod it chose, and why) unless -q: the library prints nothing itself.
pub(crate) async fn resolve(
    spec: &str,
    options: &nsdebug_resolve::ResolveOptions,
) -> nsdebug_resolve::Result<nsdebug_resolve::Resolved> {
    let resolved = nsdebug_resolve::resolve(spec, options).await?;
    for note in &resolved.notes {
        crate::cli::notice(format_args!("{}", shown(note)));
    }
    Ok(resolved)
}

/// The runtime's record of TARGET, running or not, through nsdebug-resolve, telling the user
/// its notes unless -q (as [`resolve`] does).
pub(crate) async fn record(
    spec: &str,
    options: &nsdebug_resolve::ResolveOptions,
) -> nsdebug_resolve::Result<nsdebug_resolve::ContainerInfo> {
    let recorded = nsdebug_resolve::record(spec, options).await?;
    for note in &recorded.notes {
        crate::cli::notice(format_args!("{}", shown(note)));
    }
    Ok(recorded.info)
}

/// The target as every `--json` output names it: what the runtime knows of it (runtime, id,
/// name, namespace, pid, status, network mode, Kubernetes names when known), plus the pid
/// entered and a one-line description; for a pid or a namespace file, just those two.
pub(crate) fn target_json(resolved: &nsdebug_resolve::Resolved) -> serde_json::Value {
    let mut object = target_object(resolved.container.as_ref(), &resolved.description);
    if let Some(map) = object.as_object_mut() {
        map.insert(
            "pid".into(),
            resolved.target.pid().map(nsenter_core::Pid::get).into(),
        );
    }
    object
}

/// The target object of a target that could not be pinned: what the runtime listed of it,
/// when it was listed, and what it was called.
pub(crate) fn unresolved_target_json(
    what: &str,
    listed: Option<&nsdebug_resolve::ContainerInfo>,
) -> serde_json::Value {
    target_object(listed, what)
}

/// What the runtime says of `container` (nothing when there is none) with `description`.
fn target_object(
    container: Option<&nsdebug_resolve::ContainerInfo>,
    description: &str,
) -> serde_json::Value {
    let mut object = container
        .and_then(|container| serde_json::to_value(container).ok())
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    if let Some(map) = object.as_object_mut() {
        map.insert("description".into(), description.into());
    }
    object
}

/// Prints a table with columns as wide as their widest cell (bridge names such as
/// `br-f71ffd1e9c1f` and long pod names fit). `right[i]`: column `i` is right-aligned
/// (numbers). A row shorter than the header prints its last cell as free text.
pub(crate) fn print_table(header: &[&str], right: &[bool], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        // A short row's last cell is free text: it does not widen a column.
        let sized = if row.len() < header.len() {
            &row[..row.len().saturating_sub(1)]
        } else {
            &row[..]
        };
        for (width, cell) in widths.iter_mut().zip(sized) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let last = i + 1 == cells.len();
            if i > 0 {
                out.push(' ');
            }
            if last && cells.len() < header.len() {
                out.push_str(cell);
            } else if right.get(i).copied().unwrap_or(false) {
                out.push_str(&format!("{cell:>width$}"));
            } else if last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}"));
            }
        }
        out
    };
    println!(
        "{}",
        line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
    );
    for row in rows {
        println!("{}", line(row));
    }
}

/// A duration as people type it (30, 30s, 500ms, 2m): one definition with tcpflow-lite.
pub(crate) use tcpflow_lite::cli::parse_duration;

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_as_people_type_them() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(
            parse_duration("-3").is_err()
                && parse_duration("").is_err()
                && parse_duration("s").is_err()
        );
    }
}
