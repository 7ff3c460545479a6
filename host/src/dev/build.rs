//! Building a handler folder into a component with its language's own
//! toolchain: cargo for Rust, componentize-py for Python, componentize-js
//! for JavaScript. Folders as `hookhost new` makes them.

use crate::scaffold::Lang;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The language of the handler in `folder`: `Cargo.toml` is Rust,
/// `package.json` JavaScript, `app.py` Python.
pub fn detect(folder: &Path) -> Option<Lang> {
    if folder.join("Cargo.toml").is_file() {
        Some(Lang::Rust)
    } else if folder.join("package.json").is_file() {
        Some(Lang::Js)
    } else if folder.join("app.py").is_file() {
        Some(Lang::Python)
    } else {
        None
    }
}

/// Builds the handler in `folder` into the component `out`; the error is
/// what the toolchain said.
pub fn build(folder: &Path, lang: Lang, out: &Path) -> Result<(), String> {
    match lang {
        Lang::Rust => build_rust(folder, out),
        Lang::Python => {
            let mut cmd = Command::new("componentize-py");
            cmd.current_dir(folder)
                .args(["-d", "wit", "-w", "handler", "componentize", "app", "-o"])
                .arg(out);
            run(
                cmd,
                "componentize-py",
                "pip install componentize-py==0.25.1",
            )
        }
        Lang::Js => {
            // componentize-js sees only its working directory: relative paths.
            let mut cmd = Command::new(local_or_path(folder, "componentize-js"));
            cmd.current_dir(folder)
                .args(["--wit", "wit", "--world-name", "handler", "--out"])
                .arg(out)
                .arg("handler.js");
            run(cmd, "componentize-js", "npm install (in the folder)")
        }
    }
}

/// The folder's own `node_modules/.bin/<tool>` when installed there.
fn local_or_path(folder: &Path, tool: &str) -> PathBuf {
    let local = folder.join("node_modules/.bin").join(tool);
    if local.is_file() { local } else { tool.into() }
}

fn build_rust(folder: &Path, out: &Path) -> Result<(), String> {
    let manifest = std::fs::read_to_string(folder.join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    let package = manifest
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_owned))
        .ok_or("Cargo.toml has no [package] name")?;
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(folder).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--message-format",
        "short",
    ]);
    run(cmd, "cargo", "rustup target add wasm32-wasip2")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| folder.join("target"));
    let built = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    std::fs::copy(&built, out)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {}: {e}", built.display()))
}

fn run(mut cmd: Command, tool: &str, install: &str) -> Result<(), String> {
    let output = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{tool} is not installed: {install}"),
        _ => format!("cannot run {tool}: {e}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{tool} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
