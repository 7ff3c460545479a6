//! `hookhost new <name> --lang rust|python|js`: a handler folder that builds
//! as is, with a test in its own language's runner that needs no host.
//!
//! The Python and JavaScript folders carry a copy of their SDK (`hookhost/`)
//! and of the WIT contract (`wit/handler.wit`), so they build and test
//! offline with nothing but their language's toolchain.

use anyhow::{Context, bail};
use std::path::Path;

/// A handler's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    #[value(alias = "javascript")]
    Js,
}

/// Writes a handler for `name` in `lang` into `dir` (absent or empty);
/// `sdk` is the Rust SDK's dependency line (see [`sdk_dependency`]).
pub fn create(name: &str, dir: &Path, lang: Lang, sdk: Option<&str>) -> anyhow::Result<()> {
    if !crate::model::valid_plugin_name(name) {
        bail!("{name:?} is not a plugin name: use lowercase letters, digits and '-'");
    }
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let files = match lang {
        Lang::Rust => rust(
            name,
            sdk.context("a Rust handler needs the SDK's location")?,
        ),
        Lang::Python => fill(name, PYTHON),
        Lang::Js => fill(name, JS),
    };
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// How to build and test what [`create`] wrote, for the user.
pub fn next_steps(name: &str, dir: &Path, lang: Lang) -> String {
    let dir = dir.display();
    match lang {
        Lang::Rust => format!(
            "created {dir}\ntest it:  cd {dir} && cargo test\nbuild it: cargo build --release --target wasm32-wasip2 && cp target/wasm32-wasip2/release/{}.wasm {name}.wasm\ncheck it: hookhost test {name}.wasm cases",
            name.replace('-', "_")
        ),
        Lang::Python => format!(
            "created {dir}\ntest it:  cd {dir} && python -m pytest\nbuild it: componentize-py -d wit -w handler componentize app -o {name}.wasm\ncheck it: hookhost test {name}.wasm cases"
        ),
        Lang::Js => format!(
            "created {dir}\nset up:   cd {dir} && npm install\ntest it:  npm test\nbuild it: npm run build\ncheck it: hookhost test {name}.wasm cases"
        ),
    }
}

/// The WIT the host speaks, copied into Python and JavaScript folders.
const WIT: (&str, &str) = ("wit/handler.wit", include_str!("../../wit/handler.wit"));

/// Golden cases for `hookhost test`, the same for every language.
const CASES: [(&str, &str); 4] = [
    (
        "cases/first-order.json",
        include_str!("../templates/cases/first-order.json"),
    ),
    (
        "cases/first-order.expected.json",
        include_str!("../templates/cases/first-order.expected.json"),
    ),
    (
        "cases/bad-amount.json",
        include_str!("../templates/cases/bad-amount.json"),
    ),
    (
        "cases/bad-amount.expected.json",
        include_str!("../templates/cases/bad-amount.expected.json"),
    ),
];

const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    (".gitignore", include_str!("../templates/rust/gitignore")),
    CASES[0],
    CASES[1],
    CASES[2],
    CASES[3],
];

const PYTHON: &[(&str, &str)] = &[
    ("app.py", include_str!("../templates/python/app.py")),
    (
        "test_app.py",
        include_str!("../templates/python/test_app.py"),
    ),
    ("README.md", include_str!("../templates/python/README.md")),
    (".gitignore", include_str!("../templates/python/gitignore")),
    WIT,
    CASES[0],
    CASES[1],
    CASES[2],
    CASES[3],
    (
        "hookhost/__init__.py",
        include_str!("../../sdk/python/hookhost/__init__.py"),
    ),
    (
        "hookhost/_host.py",
        include_str!("../../sdk/python/hookhost/_host.py"),
    ),
    (
        "hookhost/testing.py",
        include_str!("../../sdk/python/hookhost/testing.py"),
    ),
];

const JS: &[(&str, &str)] = &[
    ("handler.js", include_str!("../templates/js/handler.js")),
    (
        "handler.test.js",
        include_str!("../templates/js/handler.test.js"),
    ),
    ("package.json", include_str!("../templates/js/package.json")),
    ("README.md", include_str!("../templates/js/README.md")),
    (".gitignore", include_str!("../templates/js/gitignore")),
    WIT,
    CASES[0],
    CASES[1],
    CASES[2],
    CASES[3],
    (
        "hookhost/package.json",
        include_str!("../../sdk/js/package.json"),
    ),
    ("hookhost/index.js", include_str!("../../sdk/js/index.js")),
    (
        "hookhost/index.d.ts",
        include_str!("../../sdk/js/index.d.ts"),
    ),
    (
        "hookhost/testing.js",
        include_str!("../../sdk/js/testing.js"),
    ),
    (
        "hookhost/testing.d.ts",
        include_str!("../../sdk/js/testing.d.ts"),
    ),
    (
        "hookhost/register.js",
        include_str!("../../sdk/js/register.js"),
    ),
    ("hookhost/loader.js", include_str!("../../sdk/js/loader.js")),
    (
        "hookhost/fake/host.js",
        include_str!("../../sdk/js/fake/host.js"),
    ),
    (
        "hookhost/fake/kv.js",
        include_str!("../../sdk/js/fake/kv.js"),
    ),
    (
        "hookhost/fake/log.js",
        include_str!("../../sdk/js/fake/log.js"),
    ),
    (
        "hookhost/fake/emit.js",
        include_str!("../../sdk/js/fake/emit.js"),
    ),
    (
        "hookhost/fake/config.js",
        include_str!("../../sdk/js/fake/config.js"),
    ),
    (
        "hookhost/fake/http.js",
        include_str!("../../sdk/js/fake/http.js"),
    ),
    (
        "hookhost/fake/outbox.js",
        include_str!("../../sdk/js/fake/outbox.js"),
    ),
];

/// `files` with the plugin's name put in.
fn fill(name: &str, files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(path, text)| ((*path).to_owned(), text.replace("__NAME__", name)))
        .collect()
}

/// A Rust handler crate: Cargo.toml, src/lib.rs using the SDK with a test.
fn rust(name: &str, sdk: &str) -> Vec<(String, String)> {
    let crate_name = name.replace('-', "_");
    let mut files = fill(name, RUST);
    for (_, text) in &mut files {
        *text = text
            .replace("__SDK__", sdk)
            .replace("__CRATE__", &crate_name);
    }
    files
}

/// The SDK dependency line for a scaffold: `explicit`, else this checkout's
/// SDK when the binary was built from one.
pub fn sdk_dependency(explicit: Option<&Path>) -> anyhow::Result<String> {
    let local = explicit.map(Path::to_path_buf).or_else(|| {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        here.join("Cargo.toml").exists().then_some(here)
    });
    let Some(path) = local else {
        bail!("cannot find the hookhost SDK: pass --sdk <path to plugin-sdk>");
    };
    let path = path
        .canonicalize()
        .with_context(|| format!("no SDK at {}", path.display()))?;
    Ok(format!(
        "{{ path = {} }}",
        toml::Value::String(path.display().to_string())
    ))
}
