//! `nsdebug completions SHELL` and `nsdebug man [DIR]`: shell completions and man pages
//! generated from the very clap definitions the binary parses with, so they never drift.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Failure;

// Arguments of `nsdebug completions`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::COMPLETIONS, long_about = None)]
#[command(after_help = "Installed by the Debian package; by hand: \
    nsdebug completions bash > /etc/bash_completion.d/nsdebug")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

// Arguments of `nsdebug man`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::MAN, long_about = None)]
#[command(
    after_help = "Without DIR, nsdebug(1) is written to standard output (nsdebug man | man -l -)."
)]
pub struct ManArgs {
    /// Write nsdebug.1 and one nsdebug-SUBCOMMAND.1 per subcommand into this directory.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `nsdebug completions`: the script on standard output.
pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> Result<ExitCode, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nsdebug", &mut script);
    let script = with_target_names(args.shell, &String::from_utf8_lossy(&script)).into_bytes();
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .context("writing the completions")?;
    Ok(ExitCode::SUCCESS)
}

/// The subcommands whose first positional word is a TARGET.
const TAKES_TARGET: &str = "enter debug flow mem trace pid veth audit";

/// Options whose next word is their value, not a TARGET (for bash, which sees only words).
const TAKES_VALUE: &str = "-n --namespace -c --container --runtime --cri-endpoint -t --target \
    --workdir -S --setuid --user-name -G --setgid --interface --for --process --with --top \
    --fail-on --ignore --ignore-file -o --output --duration --count --max-bytes --overlap \
    --max-flows --max-pending --max-pending-total --max-open-files --idle";

/// clap's script, with TARGET completed from `nsdebug __complete-targets` (container names,
/// pods as NS/POD) where the shell allows: bash, zsh and fish.
fn with_target_names(shell: clap_complete::Shell, script: &str) -> String {
    use clap_complete::Shell;
    match shell {
        Shell::Bash => format!(
            r#"{script}
# TARGET: the names of the containers and pods nsdebug sees (nsdebug __complete-targets).
_nsdebug_targets() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" i given=""
    case " {TAKES_TARGET} " in *" ${{COMP_WORDS[1]}} "*) ;; *) _nsdebug "$@"; return ;; esac
    for (( i = 2; i < COMP_CWORD; i++ )); do
        case "${{COMP_WORDS[i]}}" in -*) ;; *)
            case " {TAKES_VALUE} " in *" ${{COMP_WORDS[i-1]}} "*) ;; *) given=1 ;; esac ;;
        esac
    done
    case " {TAKES_VALUE} " in *" $prev "*) [[ $prev == -t || $prev == --target ]] || given=1 ;; esac
    if [[ -z $given && $cur != -* ]]; then
        COMPREPLY=( $(compgen -W "$(nsdebug __complete-targets 2>/dev/null)" -- "$cur") )
        return 0
    fi
    _nsdebug "$@"
}}
complete -F _nsdebug_targets -o bashdefault -o default nsdebug
"#
        ),
        Shell::Zsh => {
            let body: String = script
                .lines()
                .map(|line| {
                    let target = line.starts_with("'::target -- ")
                        || line.starts_with("':target -- ")
                        || line.contains("]:TARGET:_default'");
                    if target {
                        line.replacen(":_default'", ":_nsdebug_targets'", 1)
                    } else {
                        line.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let (first, rest) = body.split_once('\n').unwrap_or((&body, ""));
            format!(
                "{first}\n\n# TARGET: the names of the containers and pods nsdebug sees.\n\
                 _nsdebug_targets() {{\n    local -a names\n    \
                 names=(${{(f)\"$(nsdebug __complete-targets 2>/dev/null)\"}})\n    \
                 compadd -a names\n}}\n{rest}\n"
            )
        }
        Shell::Fish => {
            let mut script = script.to_owned();
            for sub in TAKES_TARGET.split(' ') {
                script.push_str(&format!(
                    "complete -c nsdebug -n \"__fish_nsdebug_using_subcommand {sub}\" -f -a \"(nsdebug __complete-targets 2>/dev/null)\"\n"
                ));
            }
            script
        }
        _ => script.to_owned(),
    }
}

/// Runs `nsdebug __complete-targets`: one name a line, nothing but names a shell can take
/// as they are (a name with other characters is left out rather than mangled).
pub fn complete_targets() -> Result<ExitCode, Failure> {
    let (containers, _) = crate::cli::block_on(nsdebug_resolve::list_all(None, false))?;
    let mut names: Vec<String> = Vec::new();
    for container in containers {
        if let Some(k8s) = &container.kubernetes {
            names.push(format!("{}/{}", k8s.namespace, k8s.pod));
        } else if container.runtime != "containerd" {
            names.push(container.name.clone());
        }
    }
    names.retain(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
    });
    names.sort();
    names.dedup();
    let mut stdout = std::io::stdout().lock();
    for name in names {
        let _ = writeln!(stdout, "{name}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `nsdebug man`: nsdebug(1) on standard output, or every page into DIR.
pub fn man(args: ManArgs, command: clap::Command) -> Result<ExitCode, Failure> {
    let pages = pages(command)?;
    match &args.dir {
        None => {
            let (_, top) = pages.first().context("no man page generated")?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(top)
                .and_then(|()| stdout.flush())
                .context("writing the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, page) in &pages {
                write_page(dir, name, page)?;
            }
            eprintln!(
                "nsdebug: {} man pages written to {}",
                pages.len(),
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, name: &str, page: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}

/// What nsdebug(1) shows under EXAMPLES: a command line and what it does.
const EXAMPLES: &[(&str, &str)] = &[
    ("nsdebug enter web --net -- ip a", "The host's ip in the network namespace of container web."),
    ("nsdebug enter web", "A shell inside every namespace of web: the container's shell, confined like it (as docker exec -it web sh)."),
    ("nsdebug debug web -- ps -ef", "The host's ps with web's view (its /proc, network, hostname), for images without a shell; its files are at $CTR_ROOT."),
    ("nsdebug ps", "The containers of every runtime found, with their pids and the namespaces they share with the host."),
    ("nsdebug veth web --down --for 30s", "Cut web off the network by its host-side veth peer, back up after 30 s or at once on Ctrl-C."),
    ("nsdebug flow web -c port 80", "Capture inside web's network namespace and print its reassembled HTTP streams."),
    ("nsdebug mem web", "Memory usage, limit, OOM kills and the largest processes; of an exited container, its exit and OOMKilled."),
    ("strace -fp $(nsdebug pid web 1)", "The host's strace on web's init, by its host pid."),
    ("nsdebug audit web --fail-on high", "What web is really isolated from; exit 3 when a finding is high or worse."),
];

/// The EXAMPLES section in roff.
fn examples_section() -> Vec<u8> {
    let escape = |text: &str| text.replace('\\', "\\e").replace('-', "\\-");
    let mut roff = String::from(".SH EXAMPLES\n");
    for (command, what) in EXAMPLES {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(command),
            escape(what)
        ));
    }
    roff.into_bytes()
}

/// `(name, roff)` of nsdebug(1) first, then nsdebug-SUBCOMMAND(1) for each visible subcommand.
pub fn pages(command: clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    // No `help` subcommand on the pages: nsdebug-help(1) is never written.
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let mut pages = vec![("nsdebug".to_owned(), render_top(command.clone())?)];
    for sub in command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        let name = format!("nsdebug-{}", sub.get_name());
        // The page's title and usage line name the full command, `nsdebug enter`.
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("nsdebug {}", sub.get_name()));
        pages.push((name, render(page)?));
    }
    Ok(pages)
}

/// nsdebug(1): clap's sections with EXAMPLES before the exit statuses.
fn render_top(command: clap::Command) -> anyhow::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command);
    let mut page = Vec::new();
    (|| {
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        man.render_subcommands_section(&mut page)?;
        page.extend_from_slice(&examples_section());
        man.render_extra_section(&mut page)?;
        man.render_version_section(&mut page)
    })()
    .context("rendering a man page")?;
    // Each section rendered alone starts with roff's quote-character preamble: keep the first.
    let text = String::from_utf8_lossy(&page).into_owned();
    let mut seen = std::collections::HashSet::new();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains(".ds Aq") || seen.insert(*line))
        .collect();
    Ok(format!("{}\n", kept.join("\n")).into_bytes())
}

fn render(command: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .context("rendering a man page")?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_for_nsdebug_and_each_subcommand_naming_the_full_command() {
        let pages = super::pages(crate::cli::command()).unwrap();
        let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
        for expected in [
            "nsdebug",
            "nsdebug-enter",
            "nsdebug-debug",
            "nsdebug-ps",
            "nsdebug-flow",
            "nsdebug-veth",
            "nsdebug-audit",
        ] {
            assert!(names.contains(&expected), "no page {expected} in {names:?}");
        }
        let enter = String::from_utf8_lossy(
            &pages
                .iter()
                .find(|(name, _)| name == "nsdebug-enter")
                .unwrap()
                .1,
        )
        .into_owned();
        assert!(enter.contains(".TH nsdebug-enter 1"), "{enter}");
        assert!(
            enter.contains("\\-\\-net"),
            "enter's page lists --net: {enter}"
        );
    }

    /// NAME is "nsdebug - what it does" (not "nsdebug - nsdebug: ..."), no page is referred
    /// to that `nsdebug man DIR` does not write, and there are examples.
    #[test]
    fn the_top_page_names_itself_once_refers_to_written_pages_and_has_examples() {
        let pages = super::pages(crate::cli::command()).unwrap();
        let names: Vec<String> = pages.iter().map(|(name, _)| format!("{name}(1)")).collect();
        let top = String::from_utf8_lossy(&pages[0].1).into_owned();
        assert!(
            top.contains(".SH NAME\nnsdebug \\- debug containers from the host"),
            "{top}"
        );
        for word in top.split_whitespace() {
            let word = word.replace("\\-", "-");
            if word.starts_with("nsdebug-") && word.ends_with("(1)") {
                assert!(
                    names.contains(&word),
                    "{word} is referred to and not written"
                );
            }
        }
        assert!(!top.contains("nsdebug-help"), "{top}");
        assert!(top.contains(".SH EXAMPLES"), "{top}");
        assert!(
            top.contains("nsdebug enter web \\-\\-net \\-\\- ip a"),
            "{top}"
        );
    }
}
