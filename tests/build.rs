//! Builds the plugins the tests run, for wasm32-wasip2, and exposes each
//! component's path as a constant in `hookhost_tests::plugins`.

use std::fmt::Write as _;

const PLUGINS: [&str; 19] = [
    "stripe-ledger",
    "github-digest",
    "test-loop",
    "test-membomb",
    "test-trap",
    "test-always-retry",
    "test-counter",
    "test-noop",
    "test-bad-describe",
    "test-snoop",
    "test-sequence",
    "test-leaky",
    "test-clock",
    "test-caller",
    "test-hoard",
    "test-legacy",
    "test-provenance",
    "test-v020",
    "test-dice",
];

fn main() {
    let root = xtask::workspace_root();
    for dir in [
        "wit",
        "plugin-sdk",
        "plugins/stripe-ledger",
        "plugins/github-digest",
        "tests/plugins",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let paths = match xtask::build_plugins(&PLUGINS) {
        Ok(paths) => paths,
        Err(message) => panic!("cannot build the test plugins: {message}"),
    };
    let mut consts = String::new();
    for (name, path) in PLUGINS.iter().zip(paths) {
        let ident = name.to_uppercase().replace('-', "_");
        let _ = writeln!(
            consts,
            "/// The `{name}` component.\npub const {ident}: &str = {:?};",
            path.display().to_string()
        );
    }
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(e) = std::fs::write(std::path::Path::new(&out).join("plugins.rs"), consts) {
        panic!("cannot write plugins.rs: {e}");
    }
}
