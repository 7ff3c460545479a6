//! Builds Hookhost's guest plugins for `wasm32-wasip2`.
//!
//! Used by `cargo xtask` and by the build scripts and benchmarks that need
//! real compiled components. Guests are built by a nested cargo with its own
//! target directory (`target/plugins`): the outer build holds the lock on
//! `target/`, and the guests' profile and target differ from the host's anyway.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod polyglot;
pub mod types;

/// The WebAssembly target every plugin is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The cargo profile plugins are built with (see the workspace `Cargo.toml`).
pub const PLUGIN_PROFILE: &str = "plugin";

/// The example plugins shipped in `plugins/`.
pub const EXAMPLE_PLUGINS: [&str; 2] = ["stripe-ledger", "github-digest"];

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Installs the `wasm32-wasip2` standard library with rustup when it is missing.
pub fn ensure_wasm_target() -> Result<(), String> {
    let sysroot = Command::new(rustc())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| {
            format!("the {WASM_TARGET} target is missing and rustup cannot be run: {e}")
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {WASM_TARGET}` failed ({status})"
        ))
    }
}

/// Builds the given plugin packages and returns the path of each `.wasm`
/// component, in the order given.
pub fn build_plugins(packages: &[&str]) -> Result<Vec<PathBuf>, String> {
    ensure_wasm_target()?;
    let root = workspace_root();
    let target_dir = root.join("target").join("plugins");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&root)
        .args([
            "build",
            "--locked",
            "--target",
            WASM_TARGET,
            "--profile",
            PLUGIN_PROFILE,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        cmd.args(["--package", package]);
    }
    // A build script or `cargo clippy` sets these for the outer build; they
    // must not leak into the guests' build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build plugins: {e}"))?;
    if !status.success() {
        return Err(format!("building plugins {packages:?} failed ({status})"));
    }
    let out = target_dir.join(WASM_TARGET).join(PLUGIN_PROFILE);
    packages
        .iter()
        .map(|p| {
            let path = out.join(format!("{}.wasm", p.replace('-', "_")));
            if path.exists() {
                Ok(path)
            } else {
                Err(format!("cargo built {p} but {} is missing", path.display()))
            }
        })
        .collect()
}

/// Copies `component` to `dir/<name>.wasm` atomically (temp file + rename),
/// so a host watching `dir` never sees a half-written file.
pub fn install_plugin(component: &Path, dir: &Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dest = dir.join(format!("{name}.wasm"));
    let tmp = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::copy(component, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .map_err(|e| format!("cannot install {}: {e}", dest.display()))?;
    Ok(dest)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

/// Another version of a component: the same code with a custom section
/// appended, so its bytes and sha256 differ.
pub fn variant(component: &[u8], tag: &str) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"hookhost-test-variant";
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    leb128(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}
