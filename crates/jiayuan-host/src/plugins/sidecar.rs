//! The `plugin.toml` sidecar written next to every plugin library by `cargo xtask plugins build`,
//! and the checks the host runs on it (and on the library's bytes) before any plugin code runs.
//!
//! This module owns the format. xtask may not depend on the host, so it writes the same keys by
//! hand; `testdata/plugin.toml` is the golden file both sides test against.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use jiayuan_plugin_api::{API_CRATE_VERSION, API_VERSION, RUSTC_VERSION, TARGET};

use super::LoadError;

/// The sidecar's file name, in `<plugins.dir>/<id>/`.
pub const SIDECAR_FILE: &str = "plugin.toml";

/// The contents of a `plugin.toml` sidecar.
///
/// Keys (all required, no others allowed; keep this list identical in `xtask/src/plugins.rs`):
/// `id`, `version`, `api_version` (integer), `api_crate_version`, `rustc`, `target`, `library`,
/// `sha256`; and, optional, `manifest_path` (written for plugins built out of tree).
///
/// ```toml
/// id = "dog-licensing"
/// version = "0.1.0"
/// api_version = 2
/// api_crate_version = "0.1.0"
/// rustc = "rustc 1.95.0 (59807616e 2026-04-14)"
/// target = "x86_64-unknown-linux-gnu"
/// library = "libjiayuan_plugin_dog_licensing.so"
/// sha256 = "…64 hex digits…"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// Plugin id (the crate name without `jiayuan-plugin-`), as in `export_plugin!`.
    pub id: String,
    /// Plugin version (the crate version).
    pub version: String,
    /// [`API_VERSION`] the plugin was built against.
    pub api_version: u32,
    /// Version of `jiayuan-plugin-api` the plugin was built against.
    pub api_crate_version: String,
    /// `rustc --version` of the compiler that built it.
    pub rustc: String,
    /// Target triple.
    pub target: String,
    /// File name of the library, in the sidecar's directory.
    pub library: String,
    /// Lower-case hex SHA-256 of the library file.
    pub sha256: String,
    /// For a plugin built outside this workspace (`cargo xtask plugins build --manifest-path`):
    /// its `Cargo.toml`, so refusal hints name the command that rebuilds it. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_path: Option<String>,
}

impl Sidecar {
    /// The command that rebuilds this plugin into `out`: with `--manifest-path` for a plugin
    /// built out of tree.
    pub fn rebuild_command(&self, out: &Path) -> String {
        match &self.manifest_path {
            Some(manifest) => {
                format!("cargo xtask plugins build --manifest-path {manifest} --out {}", out.display())
            }
            None => "cargo xtask plugins build".to_owned(),
        }
    }

    /// Parses sidecar text.
    pub fn parse(text: &str) -> Result<Sidecar, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses the sidecar at `path`.
    pub fn read(path: &Path) -> Result<Sidecar, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::Sidecar { path: path.to_owned(), reason: e.to_string() })?;
        Sidecar::parse(&text).map_err(|e| LoadError::Sidecar { path: path.to_owned(), reason: e.message().to_owned() })
    }

    /// The sidecar as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a sidecar holds only strings and integers, which TOML can always represent")
    }

    /// Check 2, first half: the sidecar describes a plugin built like this host (API version, API
    /// crate version, compiler, target).
    pub(crate) fn check_host(&self, path: &Path) -> Result<(), LoadError> {
        let fields: [(&'static str, String, String); 4] = [
            ("api_version", self.api_version.to_string(), API_VERSION.to_string()),
            ("api_crate_version", self.api_crate_version.clone(), API_CRATE_VERSION.to_owned()),
            ("rustc", self.rustc.clone(), RUSTC_VERSION.to_owned()),
            ("target", self.target.clone(), TARGET.to_owned()),
        ];
        for (field, found, expected) in fields {
            if found != expected {
                return Err(LoadError::SidecarMismatch {
                    id: self.id.clone(),
                    path: path.to_owned(),
                    field,
                    found,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Check 2, second half: `bytes` (the library file at `library`) are the file the sidecar was
    /// written for, and their ELF `.comment` (when present) names this host's compiler.
    pub(crate) fn check_library(&self, library: &Path, bytes: &[u8]) -> Result<(), LoadError> {
        let found = sha256_hex(bytes);
        if !found.eq_ignore_ascii_case(&self.sha256) {
            return Err(LoadError::Sha256Mismatch {
                id: self.id.clone(),
                path: library.to_owned(),
                found,
                expected: self.sha256.clone(),
            });
        }
        let expected = expected_comment();
        if let Some(found) = comment_compilers(bytes).into_iter().find(|c| *c != expected) {
            return Err(LoadError::CompilerMismatch { id: self.id.clone(), path: library.to_owned(), found, expected });
        }
        Ok(())
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How rustc names itself in the `.comment` section: `rustc version 1.95.0 (59807616e 2026-04-14)`.
fn expected_comment() -> String {
    format!("rustc version {}", RUSTC_VERSION.strip_prefix("rustc ").unwrap_or(RUSTC_VERSION))
}

/// The `rustc version …` entries of the `.comment` section of a 64-bit little-endian ELF file.
///
/// Empty when the file is not such an ELF file, has no `.comment` section (stripped) or names no
/// Rust compiler; the declaration's own compiler check (check 8) still runs after `dlopen`.
fn comment_compilers(bytes: &[u8]) -> Vec<String> {
    elf_section(bytes, ".comment")
        .map(|data| {
            data.split(|b| *b == 0)
                .filter(|s| s.starts_with(b"rustc version "))
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The contents of the section called `name`, if `bytes` is a well-formed ELF64 LE file with one.
fn elf_section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    const ELFCLASS64: u8 = 2;
    const ELFDATA2LSB: u8 = 1;
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != ELFCLASS64 || *bytes.get(5)? != ELFDATA2LSB {
        return None;
    }
    let shoff = usize::try_from(u64_at(bytes, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(bytes, 0x3a)?);
    let shnum = usize::from(u16_at(bytes, 0x3c)?);
    let shstrndx = usize::from(u16_at(bytes, 0x3e)?);
    if shentsize < 0x40 {
        return None;
    }
    // (name offset, data)
    let section = |i: usize| -> Option<(usize, &'a [u8])> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = usize::try_from(u32_at(bytes, at)?).ok()?;
        let offset = usize::try_from(u64_at(bytes, at.checked_add(0x18)?)?).ok()?;
        let size = usize::try_from(u64_at(bytes, at.checked_add(0x20)?)?).ok()?;
        Some((name, bytes.get(offset..offset.checked_add(size)?)?))
    };
    let (_, names) = section(shstrndx)?;
    (0..shnum).filter_map(section).find_map(|(name_at, data)| {
        let rest = names.get(name_at..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        (&rest[..end] == name.as_bytes()).then_some(data)
    })
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden sidecar: `xtask`'s own test renders a sidecar with its writer and compares it
    /// with this file, so this test proves the host reads what xtask writes.
    const GOLDEN: &str = include_str!("testdata/plugin.toml");

    fn this_host(library: &str, sha256: &str) -> Sidecar {
        Sidecar {
            id: "fixture".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION,
            api_crate_version: API_CRATE_VERSION.into(),
            rustc: RUSTC_VERSION.into(),
            target: TARGET.into(),
            library: library.into(),
            sha256: sha256.into(),
            manifest_path: None,
        }
    }

    #[test]
    fn the_sidecar_xtask_writes_parses() {
        let s = Sidecar::parse(GOLDEN).expect("golden sidecar parses");
        assert_eq!(
            s,
            Sidecar {
                id: "dog-licensing".into(),
                version: "0.1.0".into(),
                api_version: 2,
                api_crate_version: "0.1.0".into(),
                rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
                target: "x86_64-unknown-linux-gnu".into(),
                library: "libjiayuan_plugin_dog_licensing.so".into(),
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
                manifest_path: None,
            }
        );
    }

    #[test]
    fn an_out_of_tree_sidecar_names_the_command_that_rebuilds_it() {
        let golden = Sidecar::parse(GOLDEN).expect("golden sidecar parses");
        assert_eq!(golden.rebuild_command(Path::new("/srv/plugins")), "cargo xtask plugins build");
        let outside = Sidecar::parse(&format!("{GOLDEN}manifest_path = \"/src/x/Cargo.toml\"\n")).expect("parses");
        assert_eq!(
            outside.rebuild_command(Path::new("/srv/plugins")),
            "cargo xtask plugins build --manifest-path /src/x/Cargo.toml --out /srv/plugins"
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_refused() {
        let extra = format!("{GOLDEN}\nsigned_by = \"someone\"\n");
        let err = Sidecar::parse(&extra).expect_err("unknown key");
        assert!(err.to_string().contains("signed_by"), "{err}");
        let missing: String = GOLDEN.lines().filter(|l| !l.starts_with("sha256")).map(|l| format!("{l}\n")).collect();
        let err = Sidecar::parse(&missing).expect_err("missing key");
        assert!(err.to_string().contains("sha256"), "{err}");
    }

    #[test]
    fn a_sidecar_round_trips_through_toml() {
        let s = this_host("libx.so", &sha256_hex(b"x"));
        assert_eq!(Sidecar::parse(&s.to_toml()), Ok(s));
    }

    #[test]
    fn the_host_check_names_the_first_field_that_differs() {
        let path = Path::new("/p/fixture/plugin.toml");
        assert!(this_host("libx.so", "00").check_host(path).is_ok());
        let mut s = this_host("libx.so", "00");
        s.target = "aarch64-unknown-linux-gnu".into();
        s.rustc = "rustc 1.80.0 (forged 2024-01-01)".into();
        match s.check_host(path) {
            Err(LoadError::SidecarMismatch { field: "rustc", found, expected, .. }) => {
                assert_eq!(found, "rustc 1.80.0 (forged 2024-01-01)");
                assert_eq!(expected, RUSTC_VERSION);
            }
            other => panic!("expected a rustc mismatch, got {other:?}"),
        }
        let mut s = this_host("libx.so", "00");
        s.api_version = API_VERSION + 1;
        let err = s.check_host(path).expect_err("api version differs");
        assert!(matches!(err, LoadError::SidecarMismatch { field: "api_version", .. }), "{err:?}");
        assert!(err.to_string().contains("rebuild the plugin with `cargo xtask plugins build`"), "{err}");
    }

    #[test]
    fn sha256_is_the_standard_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn the_library_check_compares_the_digest() {
        let s = this_host("libx.so", &sha256_hex(b"not an elf file"));
        assert!(s.check_library(Path::new("libx.so"), b"not an elf file").is_ok());
        let err = s.check_library(Path::new("libx.so"), b"another file").expect_err("digest differs");
        assert!(matches!(err, LoadError::Sha256Mismatch { ref found, .. } if *found == sha256_hex(b"another file")));
    }

    #[test]
    fn the_comment_section_of_a_rust_binary_names_this_compiler() {
        // The test binary itself was linked by the same rustc as the host.
        let exe = std::env::current_exe().expect("path of the test binary");
        let bytes = std::fs::read(exe).expect("test binary is readable");
        let compilers = comment_compilers(&bytes);
        assert!(!compilers.is_empty(), "no rustc entry in .comment");
        assert!(compilers.iter().all(|c| *c == expected_comment()), "{compilers:?}");
    }

    #[test]
    fn a_foreign_compiler_in_the_comment_section_is_refused() {
        let exe = std::env::current_exe().expect("path of the test binary");
        let mut bytes = std::fs::read(exe).expect("test binary is readable");
        let needle = expected_comment().into_bytes();
        let mut forged = needle.clone();
        let at = forged.iter().position(u8::is_ascii_digit).expect("a version number");
        forged[at] = if forged[at] == b'9' { b'8' } else { b'9' };
        let mut replaced = 0;
        let mut i = 0;
        while let Some(pos) = bytes[i..].windows(needle.len()).position(|w| w == needle.as_slice()) {
            bytes[i + pos..i + pos + needle.len()].copy_from_slice(&forged);
            i += pos + needle.len();
            replaced += 1;
        }
        assert!(replaced > 0);
        let s = this_host("libx.so", &sha256_hex(&bytes));
        match s.check_library(Path::new("libx.so"), &bytes) {
            Err(LoadError::CompilerMismatch { found, expected, .. }) => {
                assert_eq!(found.as_bytes(), forged.as_slice());
                assert_eq!(expected, expected_comment());
            }
            other => panic!("expected a compiler mismatch, got {other:?}"),
        }
    }

    #[test]
    fn files_that_are_not_elf_have_no_comment() {
        assert!(comment_compilers(b"").is_empty());
        assert!(comment_compilers(b"\x7fELF\x02\x01 truncated").is_empty());
        assert!(comment_compilers(b"rustc version 1.0.0 in plain text").is_empty());
    }
}
