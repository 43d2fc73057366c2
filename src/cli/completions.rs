//! `loadplan completions SHELL`: print a shell completion script to stdout.
//!
//!     source <(loadplan completions bash)                      # bash, this shell
//!     loadplan completions zsh > "${fpath[1]}/_loadplan"       # zsh
//!     loadplan completions fish > ~/.config/fish/completions/loadplan.fish

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> u8 {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "loadplan", &mut out);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => super::EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => super::EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot write the completion script: {e}");
            super::EXIT_FATAL
        }
    }
}
