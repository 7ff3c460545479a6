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
    match guest.lang {
        Lang::Python { module } => compile_python(
            &dir,
            module,
            &root.join("wit"),
            &[dir.as_path(), root.join("sdk/python").as_path()],
            &partial,
        )?,
        // componentize-js reads its inputs through a WASI sandbox that sees
        // the working directory: the root, where the SDK is too.
        Lang::JavaScript { file } => compile_js(
            &root,
            Path::new("wit"),
            &Path::new(guest.dir).join(file),
            &partial,
        )?,
    }
    std::fs::rename(&partial, &out)
        .map_err(|e| BuildError::Failed(format!("cannot move {}: {e}", out.display())))?;
    Ok(out)
}

fn compile_python(
    dir: &Path,
    module: &str,
    wit: &Path,
    python_path: &[&Path],
    out: &Path,
) -> Result<(), BuildError> {
    let mut cmd = Command::new("componentize-py");
    cmd.current_dir(dir)
        .arg("-d")
        .arg(wit)
        .args(["-w", "handler", "componentize", module]);
    for p in python_path {
        cmd.arg("-p").arg(p);
    }
    cmd.arg("-o").arg(out);
    run_tool(cmd, "componentize-py", out)
}

/// `wit` and `entry` are relative to `cwd`, all componentize-js sees.
fn compile_js(cwd: &Path, wit: &Path, entry: &Path, out: &Path) -> Result<(), BuildError> {
    let mut cmd = Command::new("componentize-js");
    cmd.current_dir(cwd)
        .arg("--wit")
        .arg(wit)
        .args(["--world-name", "handler", "--out"])
        .arg(out)
        .arg(entry);
    run_tool(cmd, "componentize-js", out)
}

fn run_tool(mut cmd: Command, tool: &str, out: &Path) -> Result<(), BuildError> {
    let output = cmd
        .output()
        .map_err(|e| BuildError::Failed(format!("cannot run {tool}: {e}")))?;
    if !output.status.success() || !out.exists() {
        return Err(BuildError::Failed(format!(
            "{tool} failed to build {} ({}): {}{}",
            out.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// Runs a handler folder's own tests in its language's runner, with no
/// host: `python3 -m pytest`, or `node --test` with the SDK's module hook
/// (the folder's own copy, else this repository's). Returns their output.
pub fn own_tests(dir: &Path, lang: Lang) -> Result<String, BuildError> {
    let mut cmd = match lang {
        Lang::Python { .. } => {
            let has_pytest = Command::new("python3")
                .args(["-m", "pytest", "--version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !has_pytest {
                return Err(BuildError::Missing(
                    "pytest is not installed: pip install pytest".into(),
                ));
            }
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"]);
            cmd
        }
        Lang::JavaScript { .. } => {
            let has_node = Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !has_node {
                return Err(BuildError::Missing(
                    "node is not installed: install Node.js 20 or later".into(),
                ));
            }
            let own = dir.join("hookhost/register.js");
            let register = if own.exists() {
                own
            } else {
                workspace_root().join("sdk/js/register.js")
            };
            let mut cmd = Command::new("node");
            cmd.arg("--import").arg(url_of(&register)).arg("--test");
            cmd
        }
    };
    // No bytecode left in the sources.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let output = cmd.current_dir(dir).output().map_err(|e| {
        BuildError::Failed(format!("cannot run the tests of {}: {e}", dir.display()))
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(BuildError::Failed(format!(
            "the tests of {} failed ({}):\n{text}",
            dir.display(),
            output.status
        )))
    }
}

/// A `file://` URL for `path`, as `node --import` takes it.
fn url_of(path: &Path) -> String {
    format!("file://{}", path.display())
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
