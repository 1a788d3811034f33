//! The `nfcron` binary: run, and turn the outcome into an exit code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(nfcron::run(std::env::args_os()) as u8)
}
