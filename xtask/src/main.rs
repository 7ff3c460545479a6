//! `cargo xtask <task>`: developer tasks.
//!
//! - `cargo xtask plugins`: build the example plugins into `plugins/`.
//! - `cargo xtask run [serve flags…]`: the same, then run the host (release
//!   build) on `./data` with `./plugins`.
//! - `cargo xtask types`: write the Python and TypeScript examples' types
//!   again from their contracts' JSON Schemas (`contracts/`).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "plugins" => build_examples().map(|_| ()),
        "run" => build_examples().and_then(|_| run_host(&rest)),
        "types" => write_types(),
        _ => Err(
            "usage: cargo xtask plugins | cargo xtask run [serve flags…] | cargo xtask types"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("xtask: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn build_examples() -> Result<(), String> {
    let built = xtask::build_plugins(&xtask::EXAMPLE_PLUGINS)?;
    let dir = xtask::workspace_root().join("plugins");
    for (name, path) in xtask::EXAMPLE_PLUGINS.iter().zip(built) {
        xtask::install_plugin(&path, &dir, name)?;
    }
    // The Python and JavaScript examples need their own toolchains; without
    // them the Rust examples still run.
    for guest in &xtask::polyglot::EXAMPLES {
        match xtask::polyglot::build(guest) {
            Ok(path) => {
                xtask::install_plugin(&path, &dir, guest.name)?;
            }
            Err(xtask::polyglot::BuildError::Missing(why)) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("xtask: skipping the {} example: {why}", guest.name);
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn write_types() -> Result<(), String> {
    let changed = xtask::types::write_examples().map_err(|e| e.to_string())?;
    #[allow(clippy::print_stderr)]
    {
        for path in &changed {
            eprintln!("xtask: wrote {}", path.display());
        }
        if changed.is_empty() {
            eprintln!("xtask: the examples' types match their contracts");
        }
    }
    Ok(())
}

fn run_host(serve_args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(xtask::workspace_root())
        .args(["run", "--release", "--package", "hookhost", "--", "serve"])
        .args(serve_args)
        .status()
        .map_err(|e| format!("cannot run the host: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the host exited with {status}"))
    }
}
