//! Text the container controls, made safe for the operator's terminal: the one escaping
//! function of every command's text output.
//!
//! It lives here, in the binary, because nsdebug is the only crate that prints such text for
//! its commands: the libraries never print (their errors reach the terminal through
//! [`shown`] too), and tcpflow-lite's console sink has a policy of its own for payloads
//! (newlines and tabs kept, bytes that are not UTF-8 shown as `\xNN`), private to it.

/// Text the container controls (a process name or command line, an interface, a path, a
/// mount point, a cgroup) as a terminal is shown it: every control character (ESC, CR,
/// newline, tab, C1) and every bidirectional-override mark as `\xNN`/`\u{NNNN}`, so it can
/// neither drive the operator's terminal nor fake or hide a line. This is the one escaping
/// function of every command's text output; `--json` keeps text as it is (JSON escapes it).
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() && u32::from(c) <= 0xff {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn shown_escapes_every_control_and_bidi_mark_and_keeps_the_rest() {
        assert_eq!(shown("\x1b[2K\r\x1b[8m"), "\\x1b[2K\\x0d\\x1b[8m");
        assert_eq!(shown("a\nb\tc"), "a\\x0ab\\x09c", "no line can be faked");
        assert_eq!(shown("\u{9b}31m"), "\\x9b31m", "C1 CSI");
        assert_eq!(shown("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(shown("/var/lib/ü name"), "/var/lib/ü name");
    }
}
