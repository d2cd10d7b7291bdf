//! The exported declaration and the plugin-side panic guard.
//!
//! A panic raised inside a cdylib belongs to the cdylib's copy of std; if it unwinds into the host
//! the process aborts. So every entry point is wrapped, *inside the plugin*, by [`PanicGuard`],
//! which turns a panic into [`PluginError::Panicked`]. `export_plugin!` does the wrapping; plugin
//! authors never write any of this by hand.

use std::any::Any;
use std::ffi::c_char;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::PluginError;
use crate::host::HostContext;
use crate::manifest::Manifest;
use crate::plugin::{CreateCall, KpiCall, KpiValue, Outcome, ServicePlugin, TransitionCall};

/// Version of the plugin contract (traits and types of this crate). Any change to them bumps it:
/// trait objects cannot evolve compatibly, so the host accepts only an exact match.
/// 2: the registry types plugins read (estates, buildings, houses, grid cells) gained fields with
/// registry administration.
/// 3: the contract's second edition — audiences and need-to-know, actors as audiences with
/// guards, records at places with two times, data minimisation of person reads, and
/// `#[non_exhaustive]` manifest, call and outcome structs with builders (so later additions of
/// the edition do not break plugin sources; see docs/writing-a-plugin.md, "Migrating").
pub const API_VERSION: u32 = 3;
/// Version of the layout of [`PluginDeclaration`] itself. Its fields are never reordered.
pub const DECL_ABI_VERSION: u32 = 1;
/// The first eight bytes of every declaration.
pub const DECL_MAGIC: u64 = u64::from_le_bytes(*b"JIAYUAN\x01");
/// Prefix of the one symbol a plugin exports; the plugin id follows it
/// (`JIAYUAN_PLUGIN_DECLARATION__dog-licensing`). Ids in the name let several plugins be linked
/// statically into one binary, as tests do.
pub const DECL_SYMBOL_PREFIX: &str = "JIAYUAN_PLUGIN_DECLARATION__";
/// `rustc --version` of the compiler that built this crate.
pub const RUSTC_VERSION: &str = env!("JIAYUAN_RUSTC_VERSION");
/// Target triple this crate was built for.
pub const TARGET: &str = env!("JIAYUAN_TARGET");
/// This crate's version.
pub const API_CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub const RUSTC_VERSION_NUL: &str = concat!(env!("JIAYUAN_RUSTC_VERSION"), "\0");
#[doc(hidden)]
pub const TARGET_NUL: &str = concat!(env!("JIAYUAN_TARGET"), "\0");
#[doc(hidden)]
pub const API_CRATE_VERSION_NUL: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The symbol name a plugin with this id exports.
pub fn declaration_symbol(plugin_id: &str) -> String {
    format!("{DECL_SYMBOL_PREFIX}{plugin_id}")
}

/// Constructor exported by a plugin. Rust ABI on purpose: it is called only after every field
/// before it was checked, which proves host and plugin were built by the same compiler against the
/// same contract.
pub type CreateFn = fn() -> Result<Box<dyn ServicePlugin>, PluginError>;

/// The one exported item of a plugin: data only, `#[repr(C)]`, readable before any plugin code runs.
///
/// Field order is fixed by [`DECL_ABI_VERSION`]; new fields go at the end together with a bump.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDeclaration {
    /// [`DECL_MAGIC`].
    pub magic: u64,
    /// [`DECL_ABI_VERSION`].
    pub decl_abi_version: u32,
    /// [`API_VERSION`] the plugin was built against.
    pub api_version: u32,
    /// NUL-terminated `rustc --version`.
    pub rustc_version: *const c_char,
    /// NUL-terminated target triple.
    pub target: *const c_char,
    /// NUL-terminated version of this crate.
    pub api_crate_version: *const c_char,
    /// `cfg!(panic = "unwind")` of the plugin; required, or the guard cannot work.
    pub panic_unwind: bool,
    /// NUL-terminated plugin id.
    pub plugin_id: *const c_char,
    /// NUL-terminated plugin version.
    pub plugin_version: *const c_char,
    /// The constructor, already wrapped in the panic guard.
    pub create: CreateFn,
}

// SAFETY: every pointer in a declaration points at a `'static` NUL-terminated string literal in the
// plugin's read-only data; nothing is ever written through them, so sharing between threads is sound.
#[allow(unsafe_code)]
unsafe impl Sync for PluginDeclaration {}

/// Runs a plugin constructor under the guard and wraps the instance in [`PanicGuard`].
#[doc(hidden)]
pub fn guarded_create<P, F>(ctor: F) -> Result<Box<dyn ServicePlugin>, PluginError>
where
    P: ServicePlugin + 'static,
    F: FnOnce() -> P,
{
    match catch_unwind(AssertUnwindSafe(ctor)) {
        Ok(p) => Ok(Box::new(PanicGuard(p))),
        Err(payload) => Err(PluginError::Panicked(panic_message(&*payload))),
    }
}

/// Wraps a plugin so that none of its panics leave it. Generic, so it is compiled into the plugin
/// and catches with the plugin's own std.
#[derive(Debug)]
pub struct PanicGuard<P>(pub P);

#[async_trait]
impl<P: ServicePlugin> ServicePlugin for PanicGuard<P> {
    fn manifest(&self) -> Manifest {
        catch_unwind(AssertUnwindSafe(|| self.0.manifest())).unwrap_or_else(|payload| {
            let message = format!("manifest panicked: {}", panic_message(&*payload));
            Manifest::new("", "清单读取失败", &message, "")
        })
    }

    async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError> {
        guard(self.0.on_create(ctx, call)).await
    }

    async fn on_transition(&self, ctx: &dyn HostContext, call: TransitionCall) -> Result<Outcome, PluginError> {
        guard(self.0.on_transition(ctx, call)).await
    }

    async fn kpis(&self, ctx: &dyn HostContext, call: KpiCall) -> Result<Vec<KpiValue>, PluginError> {
        guard(self.0.kpis(ctx, call)).await
    }
}

/// A hook's future, as `async_trait` boxes it.
type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PluginError>> + Send + 'a>>;

/// Polls `fut`, turning a panic in any poll into [`PluginError::Panicked`].
fn guard<'a, T: 'a>(fut: HookFuture<'a, T>) -> CatchUnwind<'a, T> {
    CatchUnwind { inner: Some(fut) }
}

struct CatchUnwind<'a, T> {
    inner: Option<HookFuture<'a, T>>,
}

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, PluginError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.inner.as_mut() else {
            return Poll::Ready(Err(PluginError::Panicked("polled after a panic".to_owned())));
        };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                // Drop the poisoned future here, inside the plugin, never in the host.
                self.inner = None;
                Poll::Ready(Err(PluginError::Panicked(panic_message(&*payload))))
            }
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Exports a plugin: generates its declaration (the one exported symbol) with the panic guard.
///
/// ```text
/// jiayuan_plugin_api::export_plugin!(id: "dog-licensing", create: DogLicensing::new());
/// ```
///
/// It also defines `pub static DECLARATION`, which the host's static registration (used by tests)
/// reads through exactly the same checks as a loaded library.
#[macro_export]
macro_rules! export_plugin {
    (id: $id:literal, create: $ctor:expr $(,)?) => {
        /// This plugin's declaration; exported as `JIAYUAN_PLUGIN_DECLARATION__<id>`.
        #[allow(unsafe_code)]
        #[unsafe(export_name = concat!("JIAYUAN_PLUGIN_DECLARATION__", $id))]
        pub static DECLARATION: $crate::PluginDeclaration = $crate::PluginDeclaration {
            magic: $crate::DECL_MAGIC,
            decl_abi_version: $crate::DECL_ABI_VERSION,
            api_version: $crate::API_VERSION,
            rustc_version: $crate::export::RUSTC_VERSION_NUL.as_ptr().cast(),
            target: $crate::export::TARGET_NUL.as_ptr().cast(),
            api_crate_version: $crate::export::API_CRATE_VERSION_NUL.as_ptr().cast(),
            panic_unwind: cfg!(panic = "unwind"),
            plugin_id: concat!($id, "\0").as_ptr().cast(),
            plugin_version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
            create: {
                fn __jiayuan_create()
                -> ::std::result::Result<::std::boxed::Box<dyn $crate::ServicePlugin>, $crate::PluginError> {
                    $crate::export::guarded_create(|| $ctor)
                }
                __jiayuan_create
            },
        };
    };
}
