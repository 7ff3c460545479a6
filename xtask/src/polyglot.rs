//! Guests in Python and JavaScript, built by their own toolchains against
//! the same `wit/` as the Rust guests.
//!
//! - Python: `componentize-py` (PyPI), pinned in [`COMPONENTIZE_PY`].
//! - JavaScript: `componentize-js` (npm `@bytecodealliance/componentize-js`),
//!   pinned in [`COMPONENTIZE_JS`].
//!
//! Components go to `target/polyglot/<name>.wasm` and are rebuilt only when a
//! source file or the WIT is newer.

use super::workspace_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The componentize-py release the guests are built and tested with.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The componentize-js release the guests are built and tested with.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// How a guest is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `module` (without `.py`) defines `class WitWorld`.
    Python { module: &'static str },
    /// `file` exports `describe` and `handle`.
    JavaScript { file: &'static str },
}

/// A guest written in Python or JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    /// The component's name, and the plugin name it is installed as.
    pub name: &'static str,
    /// Its source directory, relative to the workspace root.
    pub dir: &'static str,
    pub lang: Lang,
}

/// The example handlers in Python and JavaScript, shipped in `plugins/`.
pub const EXAMPLES: [Guest; 2] = [
    Guest {
        name: "order-tally",
        dir: "plugins/order-tally-py",
        lang: Lang::Python { module: "app" },
    },
    Guest {
        name: "lead-router",
        dir: "plugins/lead-router-js",
        lang: Lang::JavaScript { file: "handler.js" },
    },
];

/// The sandbox probes the tests run (they loop on request).
pub const PROBES: [Guest; 2] = [
    Guest {
        name: "py-probe",
        dir: "tests/guests/py-probe",
        lang: Lang::Python { module: "app" },
    },
    Guest {
        name: "js-probe",
        dir: "tests/guests/js-probe",
        lang: Lang::JavaScript { file: "probe.js" },
    },
];

/// Why a guest was not built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// Its toolchain is not installed; the message says how to install it.
    Missing(String),
    Failed(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(m) | Self::Failed(m) => f.write_str(m),
        }
    }
}

impl Lang {
    fn tool(self) -> &'static str {
        match self {
            Self::Python { .. } => "componentize-py",
            Self::JavaScript { .. } => "componentize-js",
        }
    }

    fn install_hint(self) -> String {
        match self {
            Self::Python { .. } => format!("pip install componentize-py=={COMPONENTIZE_PY}"),
            Self::JavaScript { .. } => {
                format!("npm install -g @bytecodealliance/componentize-js@{COMPONENTIZE_JS}")
            }
        }
    }
}

/// Whether `lang`'s toolchain is installed.
pub fn toolchain(lang: Lang) -> Result<(), BuildError> {
    let found = Command::new(lang.tool())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        Err(BuildError::Missing(format!(
            "{} is not installed: {}",
            lang.tool(),
            lang.install_hint()
        )))
    }
}

/// Builds `guest` (unless its component is newer than its sources) and
/// returns the component's path.
pub fn build(guest: &Guest) -> Result<PathBuf, BuildError> {
    let root = workspace_root();
    let out_dir = root.join("target").join("polyglot");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", out_dir.display())))?;
    let out = out_dir.join(format!("{}.wasm", guest.name));
    let dir = root.join(guest.dir);
    let sdk = match guest.lang {
        Lang::Python { .. } => root.join("sdk/python/hookhost"),
        Lang::JavaScript { .. } => root.join("sdk/js"),
    };
    let newest_source = newest(&[dir.as_path(), root.join("wit").as_path(), sdk.as_path()]);
    let built = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(source)) = (built, newest_source)
        && built >= source
    {
        return Ok(out);
    }
    toolchain(guest.lang)?;
    // Written beside, then renamed: a half-built component is never used.
    let partial = out_dir.join(format!(".{}.wasm.partial", guest.name));
    let mut cmd = Command::new(guest.lang.tool());
    match guest.lang {
        Lang::Python { module } => {
            cmd.current_dir(&dir)
                .arg("-d")
                .arg(root.join("wit"))
                .args(["-w", "handler", "componentize", module, "-p", ".", "-p"])
                .arg(root.join("sdk/python"))
                .arg("-o")
                .arg(&partial);
        }
        Lang::JavaScript { file } => {
            // componentize-js reads its inputs through a WASI sandbox that
            // sees the working directory: give it paths relative to the root.
            cmd.current_dir(&root)
                .args(["--wit", "wit", "--world-name", "handler", "--out"])
                .arg(&partial)
                .arg(Path::new(guest.dir).join(file));
        }
    }
    let output = cmd
        .output()
        .map_err(|e| BuildError::Failed(format!("cannot run {}: {e}", guest.lang.tool())))?;
    if !output.status.success() || !partial.exists() {
        return Err(BuildError::Failed(format!(
            "{} failed to build {} ({}): {}{}",
            guest.lang.tool(),
            guest.name,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    std::fs::rename(&partial, &out)
        .map_err(|e| BuildError::Failed(format!("cannot move {}: {e}", out.display())))?;
    Ok(out)
}

/// The newest modification time of the files directly in `dirs`.
fn newest(dirs: &[&Path]) -> Option<std::time::SystemTime> {
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max()
}
