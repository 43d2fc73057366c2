//! The `loadplan` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    loadplan::cli::main()
}
