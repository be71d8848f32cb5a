//! How the CLI talks about itself and its failures: one-line error chains, usage errors
//! (exit code 2), shell completions and the manual page.

use std::fmt;

use clap::{Args, CommandFactory};

/// The arguments cannot be used as given: the command exits with code 2, like clap's own
/// parse errors, and says what to do instead.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether `error` (or a cause of it) is the caller's misuse rather than a failure.
pub fn is_usage_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<UsageError>()
            || matches!(
                cause.downcast_ref::<morsa_client::Error>(),
                Some(morsa_client::Error::EpochsOutOfRange { .. })
            )
    })
}

/// The error and its causes on one line, joined with ": ", each said once.
///
/// Many errors include their cause in their own message and also return it as their
/// `source()`; printing every link of the chain would then repeat it. A cause whose text the
/// line already holds is skipped, and a cause that starts with what the line ends with (a
/// context "storing F" over "F: not found") continues the line instead of repeating it.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if line.is_empty() {
            line = text;
            continue;
        }
        match overlap(&line, &text) {
            Some(rest) => line.push_str(rest),
            None => {
                line.push_str(": ");
                line.push_str(&text);
            }
        }
    }
    line
}

/// If `text` is `"X: rest"` with `X` one word (a path, a blob ID) that also ends `line`,
/// answers `": rest"`.
fn overlap<'a>(line: &str, text: &'a str) -> Option<&'a str> {
    let (head, _) = text.split_once(": ")?;
    let before = line.strip_suffix(head)?;
    (!head.is_empty() && !head.contains(' ') && before.ends_with(' ')).then(|| &text[head.len()..])
}

/// `morsa completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `args.shell` to stdout (made in memory first: the
/// generator panics on a failed write).
pub fn completions<C: CommandFactory>(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut command = C::command();
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(())
}

/// Prints the manual page, with a section for every subcommand, to stdout.
pub fn man<C: CommandFactory>() -> anyhow::Result<()> {
    let command = C::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let name = format!("{}-{}", command.get_name(), sub.get_name());
        let sub = sub.clone().name(name);
        let man = clap_mangen::Man::new(sub);
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
    }
    out!("{}", String::from_utf8_lossy(&page));
    Ok(())
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    fn io_error() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)")
    }

    #[test]
    fn a_cause_the_message_already_holds_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("coordinator, while reserving: {source}")]
        struct Wrapped {
            source: std::io::Error,
        }
        let error = anyhow::Error::new(Wrapped { source: io_error() });
        assert_eq!(one_line(&error), "coordinator, while reserving: No such file or directory (os error 2)");
    }

    #[test]
    fn a_context_that_ends_with_what_the_cause_starts_with_continues_the_line() {
        #[derive(Debug, thiserror::Error)]
        #[error("{path}: {source}")]
        struct Io {
            path: String,
            source: std::io::Error,
        }
        let error: anyhow::Result<()> = Err(Io { path: "/nonexistent".into(), source: io_error() }.into());
        let error = error.context("storing /nonexistent").unwrap_err();
        assert_eq!(one_line(&error), "storing /nonexistent: No such file or directory (os error 2)");
    }

    #[test]
    fn distinct_causes_are_all_kept_in_order() {
        let error: anyhow::Result<()> = Err(io_error().into());
        let error = error.context("reading the key").context("connecting").unwrap_err();
        assert_eq!(one_line(&error), "connecting: reading the key: No such file or directory (os error 2)");
        // Only a one-word head (a path, an ID) is taken for the end of the line.
        let error: anyhow::Result<()> = Err(anyhow::anyhow!("the node: refused"));
        let error = error.context("connecting to the node").unwrap_err();
        assert_eq!(one_line(&error), "connecting to the node: the node: refused");
    }
}
