//! One module per subcommand, thin over the libraries.

pub mod audit;
pub mod docs;
pub mod enter;
pub mod flow;
pub mod ps;
pub mod veth;

/// A name the container controls (an interface, a container or process name) as a table
/// shows it: control characters (an ESC sequence, say) as `\xNN`, so that they cannot drive
/// the operator's terminal. `--json` keeps names as they are.
pub(crate) fn shown(name: &str) -> String {
    String::from_utf8_lossy(&tcpflow_lite::sink::escape_controls(name.as_bytes())).into_owned()
}

/// A duration as people type it: `30`, `30s`, `1.5s`, `500ms`, `2m`, `1h` (a bare number is
/// seconds). For clap's `value_parser`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use ms, s, m or h)")),
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 && value * scale < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(value * scale))
        }
        _ => Err(format!("{text:?} is not a duration (e.g. 30, 30s, 500ms, 2m)")),
    }
}

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
        assert!(parse_duration("-3").is_err() && parse_duration("").is_err() && parse_duration("s").is_err());
    }
}
