//! `cargo run --example fake-northflank -- --port 0`: a fake Northflank API
//! on 127.0.0.1 for demos and manual testing. Prints its address and the
//! token it accepts, then serves until interrupted.

mod server;

fn main() {
    let mut port = 0u16;
    let mut latency_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--port" => {
                port = u16::try_from(value("--port")).unwrap_or_else(|_| usage("--port is 0-65535"))
            }
            "--latency-ms" => latency_ms = value("--latency-ms"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let fake = server::Fake::spawn(port);
    fake.set_latency(std::time::Duration::from_millis(latency_ms));
    println!("fake-northflank listening on {}", fake.url);
    println!("token: {}", server::TOKEN);
    println!(
        "try:   NORTHFLANK_API_URL={} NORTHFLANK_API_TOKEN={} nfcron reconcile jobs.d",
        fake.url,
        server::TOKEN
    );
    // Serve until the process is stopped (Ctrl-C ends it).
    loop {
        std::thread::park();
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: fake-northflank [--port N] [--latency-ms N]");
    std::process::exit(if problem.is_empty() { 0 } else { 1 });
}
