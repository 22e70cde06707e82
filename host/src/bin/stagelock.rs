//! The `stagelock` command: see `stagelock --help`.

fn main() -> std::process::ExitCode {
    stagelock::cli::main()
}
