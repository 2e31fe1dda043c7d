//! `nsdebug completions SHELL` and `nsdebug man [DIR]`: shell completions and man pages
//! generated from the very clap definitions the binary parses with, so they never drift.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Failure;

/// Arguments of `nsdebug completions`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Installed by the Debian package; by hand: \
    nsdebug completions bash > /etc/bash_completion.d/nsdebug")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Arguments of `nsdebug man`.
#[derive(clap::Args, Debug)]
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
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .context("writing the completions")?;
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

/// `(name, roff)` of nsdebug(1) first, then nsdebug-SUBCOMMAND(1) for each visible subcommand.
pub fn pages(command: clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut command = command;
    command.build();
    let mut pages = vec![("nsdebug".to_owned(), render(command.clone())?)];
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
}
