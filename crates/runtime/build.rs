//! Generates the opcode enum and the serialized form's constants from the tables the Python
//! side reads too (`python/soma/opcodes.tsv`, `python/soma/format.tsv`), so the two languages
//! cannot drift apart: there is one definition, and this is the Rust view of it.
//!
//! Output (in `OUT_DIR`, included by `src/opcodes.rs` and `src/decode.rs`):
//! * `opcodes.rs`: `enum Opcode` (one variant per row, CamelCase of the name), `Opcode::ALL`,
//!   `Opcode::name`, `Opcode::operand_kind`, `Opcode::path_root` (from the `_STORE` / `_REG`
//!   suffix: the naming rule the table follows).
//! * `format.rs`: `pub const NAME: T = value;` per row of format.tsv (`MAGIC` a byte string,
//!   `VERSION` a `u16`, the rest `u8`).

use std::fmt::Write as _;
use std::path::Path;

fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

fn opcodes(table: &Path) -> String {
    let rows = rows(table);
    let mut variants = String::new();
    let mut all = String::new();
    let mut names = String::new();
    let mut kinds = String::new();
    let mut roots = String::new();
    for (i, row) in rows.iter().enumerate() {
        assert!(row.len() >= 4, "opcodes.tsv: malformed row {row:?}");
        let number: usize = row[0].parse().expect("opcodes.tsv: opcode number");
        assert_eq!(number, i, "opcodes.tsv: {} is not numbered {i}", row[1]);
        let (name, kind) = (&row[1], &row[2]);
        let v = camel(name);
        let doc = row[3].replace('\\', "\\\\").replace('"', "\\\"");
        writeln!(variants, "    #[doc = \"{name} {doc}\"]\n    {v} = {number},").unwrap();
        writeln!(all, "        Opcode::{v},").unwrap();
        writeln!(names, "            Opcode::{v} => \"{name}\",").unwrap();
        let kind = match kind.as_str() {
            "const" => "Const",
            "path" => "Path",
            other => panic!("opcodes.tsv: unknown operand kind {other:?}"),
        };
        writeln!(kinds, "            Opcode::{v} => OperandKind::{kind},").unwrap();
        let root = match (kind, name.rsplit('_').next()) {
            ("Path", Some("STORE")) => "Some(Root::Store)",
            ("Path", Some("REG")) => "Some(Root::Register)",
            ("Path", _) => panic!("opcodes.tsv: path opcode {name} must end in _STORE or _REG"),
            _ => "None",
        };
        writeln!(roots, "            Opcode::{v} => {root},").unwrap();
    }
    format!(
        "/// One SOMA instruction kind (docs/bytecode.md), generated from `opcodes.tsv`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum Opcode {{
{variants}}}

impl Opcode {{
    /// Every opcode, in number order.
    pub const ALL: [Opcode; {n}] = [
{all}    ];

    /// The name used by the table and the disassembler.
    pub fn name(self) -> &'static str {{
        match self {{
{names}        }}
    }}

    pub fn operand_kind(self) -> OperandKind {{
        match self {{
{kinds}        }}
    }}

    /// For path opcodes, the root their path must have.
    pub fn path_root(self) -> Option<Root> {{
        match self {{
{roots}        }}
    }}
}}
",
        n = rows.len()
    )
}

fn format_constants(table: &Path) -> String {
    let mut out = String::new();
    for row in rows(table) {
        assert!(row.len() >= 3, "format.tsv: malformed row {row:?}");
        let (name, value, meaning) = (&row[0], &row[1], &row[2]);
        let (ty, value) = match name.as_str() {
            "MAGIC" => (format!("&[u8; {}]", value.len()), format!("b\"{value}\"")),
            "VERSION" => ("u16".to_string(), value.parse::<u16>().expect("format.tsv: VERSION").to_string()),
            _ => ("u8".to_string(), value.parse::<u8>().expect("format.tsv: a byte value").to_string()),
        };
        let meaning = meaning.replace('\\', "\\\\").replace('"', "\\\"");
        writeln!(out, "#[doc = \"{meaning}\"]\npub const {name}: {ty} = {value};").unwrap();
    }
    out
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let python = Path::new(&manifest).join("../../python/soma");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let opcodes_tsv = python.join("opcodes.tsv");
    let format_tsv = python.join("format.tsv");
    println!("cargo:rerun-if-changed={}", opcodes_tsv.display());
    println!("cargo:rerun-if-changed={}", format_tsv.display());
    println!("cargo:rerun-if-changed=build.rs");
    std::fs::write(Path::new(&out).join("opcodes.rs"), opcodes(&opcodes_tsv)).expect("write opcodes.rs");
    std::fs::write(Path::new(&out).join("format.rs"), format_constants(&format_tsv)).expect("write format.rs");
}
