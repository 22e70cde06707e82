//! Prints the argument vector it received, `argv[0]` included, as one Rust `Debug` line:
//! `["run_cli_argv.wasm", "--dir", "foo"]`. Its host test checks what `stagelock run` passes.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    println!("{argv:?}");
}
