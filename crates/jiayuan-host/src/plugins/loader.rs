//! The only `unsafe` code of the host: opening a plugin library and reading its declaration
//! (checks 3–9 of [`LoadError`]). Everything before (allow-list, sidecar, digest) and after
//! (constructor, manifest, ids) is safe code in `registry.rs`.
//!
//! # Never `dlclose`
//!
//! A library, once opened, stays mapped until the process exits: it is opened with
//! `RTLD_NODELETE` and its [`Library`] handle is leaked. Closing it would unmap code that objects
//! it created (the plugin instance, its vtables, futures, thread-local destructors registered by
//! its copy of std) still point into; the prototype showed a SIGSEGV, or a silent no-op when TLS
//! destructors were registered. Reloading a plugin therefore means restarting the host. A library
//! refused after `dlopen` (checks 4–9) stays mapped as well: its initialisers have run by then, and
//! unmapping is exactly what is unsafe. That is why checks 1 and 2 (allow-list, permissions,
//! sidecar, digest) run before `dlopen`.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_void};
use std::path::Path;
use std::ptr;

use jiayuan_plugin_api::export::CreateFn;
use jiayuan_plugin_api::{
    API_CRATE_VERSION, API_VERSION, DECL_ABI_VERSION, DECL_MAGIC, PluginDeclaration, RUSTC_VERSION, TARGET,
    declaration_symbol,
};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use super::LoadError;

/// What checks 5–9 read from a declaration that passed them.
#[derive(Debug)]
pub(crate) struct Declared {
    /// The declaration's plugin id.
    pub(crate) id: String,
    /// The declaration's plugin version.
    pub(crate) version: String,
    /// The declaration's API version (equal to [`API_VERSION`]).
    pub(crate) api_version: u32,
    /// The guarded constructor. Safe to call: checks 5–9 established that it was compiled by this
    /// host's compiler against this host's contract.
    pub(crate) create: CreateFn,
}

/// Checks 3–9 for the library at `path`, which the sidecar says is plugin `id`.
///
/// `plugin` describes the plugin in error messages.
pub(crate) fn open_library(path: &Path, id: &str, plugin: &str) -> Result<Declared, LoadError> {
    // Check 3.
    let flags = RTLD_NOW | RTLD_LOCAL | libc::RTLD_NODELETE;
    // SAFETY: dlopen runs the library's initialisers. The library passed checks 1 and 2: it lies in
    // the configured plugin directory, is on the allow-list, is writable only by its owner, and is
    // byte for byte the file `cargo xtask plugins build` produced with this host's compiler and
    // contract. That is the trust boundary of in-process plugins (see ARCHITECTURE.md).
    let library = unsafe { Library::open(Some(path), flags) }.map_err(|source| LoadError::Open {
        id: id.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    // Leaked on purpose, before anything can fail: never dlclose (see the module documentation).
    let library: &'static Library = Box::leak(Box::new(library));

    // Check 4.
    let symbol = declaration_symbol(id);
    // SAFETY: the symbol is only looked up here, not yet read; treating its address as a data
    // pointer is what `dlsym` returns for data symbols. The library is never unloaded, so the
    // address stays valid for the life of the process.
    let found = unsafe { library.get::<*const c_void>(symbol.as_bytes()) };
    let address = found
        .map_err(|source| LoadError::NotAPlugin { id: id.to_owned(), path: path.to_owned(), symbol, source })?
        .into_raw();
    if address.is_null() {
        return Err(LoadError::BadMagic { plugin: plugin.to_owned(), found: 0, expected: DECL_MAGIC });
    }
    check_declaration(address.cast::<PluginDeclaration>(), Some(plugin))
}

/// Checks 5–9 for a declaration linked into this binary.
pub(crate) fn check_static(declaration: &'static PluginDeclaration) -> Result<Declared, LoadError> {
    check_declaration(ptr::from_ref(declaration), None)
}

/// Checks 5–9, reading the declaration field by field: the header first, and the strings only
/// once magic and layout version proved the layout.
///
/// `plugin` describes a library in error messages; `None` for a statically linked declaration.
fn check_declaration(decl: *const PluginDeclaration, plugin: Option<&str>) -> Result<Declared, LoadError> {
    const STATIC: &str = "statically linked plugin";
    // Check 5.
    // SAFETY: `decl` is non-null and points at an exported declaration symbol (or a `'static`
    // declaration). Every declaration layout starts with the 8-byte magic; it is read unaligned so
    // that even a foreign symbol under our name cannot make this read misaligned.
    let magic = unsafe { ptr::read_unaligned(&raw const (*decl).magic) };
    if magic != DECL_MAGIC {
        return Err(LoadError::BadMagic {
            plugin: plugin.unwrap_or(STATIC).to_owned(),
            found: magic,
            expected: DECL_MAGIC,
        });
    }
    // Check 6.
    // SAFETY: the magic matched, so this is a Jiayuan declaration; every declaration layout
    // version keeps `decl_abi_version` as the `u32` right after the magic.
    let decl_abi = unsafe { ptr::read_unaligned(&raw const (*decl).decl_abi_version) };
    if decl_abi != DECL_ABI_VERSION {
        return Err(LoadError::DeclAbi {
            plugin: plugin.unwrap_or(STATIC).to_owned(),
            found: decl_abi,
            expected: DECL_ABI_VERSION,
        });
    }
    // SAFETY: magic and layout version match, so the memory is a `PluginDeclaration` of this
    // crate's layout, generated by `export_plugin!` (or written with the same type). It lives in
    // a library that is never unloaded, or in this binary, hence `'static`.
    let decl: &'static PluginDeclaration = unsafe { &*decl };

    // SAFETY: the layout is proven, and `export_plugin!` points every string field at a
    // NUL-terminated `'static` literal in the plugin's read-only data (or leaves it null, which
    // `c_string` checks). The same holds for every `c_string` call below.
    let id = unsafe { c_string(decl.plugin_id) };
    let plugin = match (plugin, &id) {
        (Some(library), _) => library.to_owned(),
        (None, Some(id)) => format!("{STATIC} `{id}`"),
        (None, None) => STATIC.to_owned(),
    };

    // Check 7.
    if decl.api_version != API_VERSION {
        return Err(LoadError::ApiVersion { plugin, found: decl.api_version, expected: API_VERSION });
    }
    // Check 8.
    // SAFETY: see above.
    let rustc = unsafe { c_string(decl.rustc_version) };
    if rustc.as_deref() != Some(RUSTC_VERSION) {
        return Err(LoadError::Rustc { plugin, found: shown(rustc), expected: RUSTC_VERSION.to_owned() });
    }
    // Check 9.
    // SAFETY: see above.
    let target = unsafe { c_string(decl.target) };
    if target.as_deref() != Some(TARGET) {
        return Err(LoadError::Build { plugin, field: "target", found: shown(target), expected: TARGET.to_owned() });
    }
    // SAFETY: see above.
    let api_crate = unsafe { c_string(decl.api_crate_version) };
    if api_crate.as_deref() != Some(API_CRATE_VERSION) {
        return Err(LoadError::Build {
            plugin,
            field: "api_crate_version",
            found: shown(api_crate),
            expected: API_CRATE_VERSION.to_owned(),
        });
    }
    if !decl.panic_unwind {
        return Err(LoadError::Build {
            plugin,
            field: "panic_unwind",
            found: "false (panic = \"abort\")".to_owned(),
            expected: "true (panic = \"unwind\")".to_owned(),
        });
    }
    // SAFETY: see above.
    let version = unsafe { c_string(decl.plugin_version) };
    let Some(id) = id else {
        return Err(LoadError::ManifestMismatch {
            plugin,
            field: "declaration id",
            found: "<null>".to_owned(),
            expected: "a plugin id".to_owned(),
        });
    };
    Ok(Declared { id, version: shown(version), api_version: decl.api_version, create: decl.create })
}

/// The text of a NUL-terminated string field; `None` for a null pointer.
///
/// # Safety
///
/// `p` is null or points at a NUL-terminated string that lives for the rest of the process.
unsafe fn c_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// A string field as shown in errors.
fn shown(s: Option<String>) -> String {
    s.unwrap_or_else(|| "<null>".to_owned())
}
