//! Handler types generated from the contracts' JSON Schemas (`contracts/`).
//!
//! The host checks a topic's bodies against its contract before it stores
//! them, so a handler can read them as the contract's type. Each language
//! gets that type from the same schema with its own well-kept generator:
//!
//! - Rust: `typify::import_types!` at build time (nothing to commit).
//! - Python: `datamodel-codegen` (PyPI `datamodel-code-generator`, pinned
//!   in [`DATAMODEL_CODEGEN`]) writes a `TypedDict`; `mypy --strict` checks
//!   the handler against it.
//! - JavaScript: `json2ts` (npm `json-schema-to-typescript`, pinned in
//!   [`JSON2TS`]) writes a `.d.ts` interface; `tsc --checkJs` checks the
//!   handler's JSDoc against it.
//!
//! The Python and TypeScript files are committed beside the handler;
//! `cargo xtask types` writes them again after a schema changes, and the
//! polyglot tests fail while a committed file differs from what its schema
//! generates.

use super::polyglot::BuildError;
use super::workspace_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The datamodel-code-generator release the Python types are generated with.
pub const DATAMODEL_CODEGEN: &str = "0.97.0";
/// The json-schema-to-typescript release the TypeScript types are generated with.
pub const JSON2TS: &str = "16.0.0";
/// The mypy release the Python examples are checked with.
pub const MYPY: &str = "2.4.1";
/// The TypeScript release the JavaScript examples are checked with.
pub const TYPESCRIPT: &str = "5.9.3";

/// The language a types file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A module of `TypedDict`s.
    Python,
    /// A `.d.ts` of interfaces, for JSDoc in JavaScript or for TypeScript.
    TypeScript,
}

/// A types file generated from a contract's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Types {
    /// The JSON Schema, relative to the workspace root.
    pub schema: &'static str,
    /// The generated file, relative to the workspace root.
    pub out: &'static str,
    pub lang: Lang,
    /// The handler file that reads the type, checked against it.
    pub handler: &'static str,
}

/// The Python and JavaScript examples' types.
pub const EXAMPLES: [Types; 2] = [
    Types {
        schema: "contracts/shop-order.schema.json",
        out: "plugins/order-tally-py/contracts.py",
        lang: Lang::Python,
        handler: "plugins/order-tally-py/app.py",
    },
    Types {
        schema: "contracts/form-lead.schema.json",
        out: "plugins/lead-router-js/contracts.d.ts",
        lang: Lang::TypeScript,
        handler: "plugins/lead-router-js/handler.js",
    },
];

impl Lang {
    fn generator(self) -> &'static str {
        match self {
            Self::Python => "datamodel-codegen",
            Self::TypeScript => "json2ts",
        }
    }

    fn install_hint(self) -> String {
        match self {
            Self::Python => {
                format!("pip install datamodel-code-generator=={DATAMODEL_CODEGEN} mypy=={MYPY}")
            }
            Self::TypeScript => {
                format!("npm install json-schema-to-typescript@{JSON2TS} typescript@{TYPESCRIPT}")
            }
        }
    }

    /// The generator and the type checker, each as a command that succeeds
    /// when the tool is installed (`json2ts` has no `--version`).
    fn tools(self) -> [(&'static str, &'static [&'static str]); 2] {
        match self {
            Self::Python => [
                ("datamodel-codegen", &["--version"]),
                ("python3", &["-m", "mypy", "--version"]),
            ],
            Self::TypeScript => [("json2ts", &["--help"]), ("tsc", &["--version"])],
        }
    }
}

/// Whether `lang`'s generator and type checker are installed.
pub fn toolchain(lang: Lang) -> Result<(), BuildError> {
    for (program, args) in lang.tools() {
        let found = Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            let tool = args
                .get(1)
                .filter(|_| program == "python3")
                .unwrap_or(&program);
            return Err(BuildError::Missing(format!(
                "{tool} is not installed: {}",
                lang.install_hint()
            )));
        }
    }
    Ok(())
}

/// The text `types.schema` generates, as `cargo xtask types` writes it.
pub fn generate(types: &Types) -> Result<String, BuildError> {
    toolchain(types.lang)?;
    let root = workspace_root();
    let schema = root.join(types.schema);
    let dir = root.join("target").join("types");
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let name = Path::new(types.out)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = dir.join(format!("{}-{name}", std::process::id()));
    let mut cmd = Command::new(types.lang.generator());
    match types.lang {
        // Run from the schema's folder: the header names the file only.
        Lang::Python => {
            cmd.current_dir(schema.parent().unwrap_or(&root))
                .arg("--input")
                .arg(schema.file_name().unwrap_or_default())
                .args([
                    "--input-file-type",
                    "jsonschema",
                    "--output-model-type",
                    "typing.TypedDict",
                    "--target-python-version",
                    "3.11",
                    "--disable-timestamp",
                    "--use-schema-description",
                    "--use-field-description",
                    "--formatters",
                    "builtin",
                    "--output",
                ])
                .arg(&out);
        }
        // Closed interfaces: a misspelt field is a type error, although the
        // contract lets a sender add fields the handler does not read.
        Lang::TypeScript => {
            cmd.arg("--input")
                .arg(&schema)
                .arg("--output")
                .arg(&out)
                .args(["--unknownAny", "--additionalProperties=false"]);
        }
    }
    run(cmd, types.lang.generator())?;
    let text = std::fs::read_to_string(&out).map_err(|e| {
        BuildError::Failed(format!(
            "{} wrote nothing for {}: {e}",
            types.lang.generator(),
            types.schema
        ))
    });
    let _ = std::fs::remove_file(&out);
    text
}

/// Type-checks `handler` (a file in a folder holding its generated types)
/// with `mypy --strict` or `tsc --checkJs --strict`, against this
/// repository's SDK. Returns the checker's complaint when it fails.
pub fn check(handler: &Path, lang: Lang) -> Result<(), BuildError> {
    toolchain(lang)?;
    let root = workspace_root();
    let dir = handler.parent().unwrap_or(&root);
    let file = handler.file_name().unwrap_or_default();
    let mut cmd = match lang {
        Lang::Python => {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "mypy", "--strict", "--cache-dir=/dev/null"])
                .env("MYPYPATH", root.join("sdk/python"))
                .arg(file);
            cmd
        }
        Lang::TypeScript => {
            let mut cmd = Command::new("tsc");
            cmd.args([
                "--noEmit",
                "--allowJs",
                "--checkJs",
                "--strict",
                "--target",
                "es2022",
                "--module",
                "nodenext",
                "--moduleResolution",
                "nodenext",
            ])
            .arg(file);
            cmd
        }
    };
    cmd.current_dir(dir).env("PYTHONDONTWRITEBYTECODE", "1");
    run(cmd, if lang == Lang::Python { "mypy" } else { "tsc" })
}

/// Writes every example's types again (`cargo xtask types`); returns the
/// files that changed.
pub fn write_examples() -> Result<Vec<PathBuf>, BuildError> {
    let mut changed = Vec::new();
    for types in &EXAMPLES {
        let text = generate(types)?;
        let path = workspace_root().join(types.out);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text)
                .map_err(|e| BuildError::Failed(format!("cannot write {}: {e}", path.display())))?;
            changed.push(path);
        }
    }
    Ok(changed)
}

fn run(mut cmd: Command, tool: &str) -> Result<(), BuildError> {
    let output = cmd
        .output()
        .map_err(|e| BuildError::Failed(format!("cannot run {tool}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed(format!(
            "{tool} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
