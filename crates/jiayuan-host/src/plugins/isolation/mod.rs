//! 隔离 isolation: where a plugin's code runs. Never on the runtime's workers: by default on the
//! plugin's own OS threads in this process ([`threads`]), or, for plugins the district did not
//! write, in a child process of the host. Both speak the same [`remote`] requests for the host's
//! services, answered by the caller on the runtime.

pub(crate) mod child;
pub(crate) mod frame;
pub(crate) mod process;
pub(crate) mod remote;
pub(crate) mod threads;

use jiayuan_plugin_api::{
    CreateCall, HostContext, KpiCall, KpiValue, Outcome, PluginError, ServicePlugin, TransitionCall,
};
use serde::{Deserialize, Serialize};

use super::{Hook, HostGuard};

/// Where a plugin's hooks run (`[plugins.isolation]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// On the plugin's own threads inside the host process (the district's own plugins).
    #[default]
    Threads,
    /// In a child process of the host, killed and restarted when it hangs or dies.
    Process,
}

impl Isolation {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Threads => "threads",
            Isolation::Process => "process",
        }
    }
}

/// One hook call, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HookCall {
    /// [`ServicePlugin::on_create`].
    Create(CreateCall),
    /// [`ServicePlugin::on_transition`].
    Transition(TransitionCall),
    /// [`ServicePlugin::kpis`].
    Kpis(KpiCall),
}

impl HookCall {
    pub(crate) fn hook(&self) -> Hook {
        match self {
            HookCall::Create(_) => Hook::OnCreate,
            HookCall::Transition(_) => Hook::OnTransition,
            HookCall::Kpis(_) => Hook::Kpis,
        }
    }
}

/// What a hook answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum HookAnswer {
    /// From `on_create` or `on_transition`.
    Outcome(Outcome),
    /// From `kpis`.
    Kpis(Vec<KpiValue>),
}

/// A hook's result; a host panic on the plugin's side is a [`PluginError::Host`].
pub(crate) type HookResult = Result<HookAnswer, PluginError>;

/// Runs one hook on the current thread (a plugin thread, or the child's), its services `ctx`
/// behind a [`HostGuard`]. `None` when `cancelled()` held while the hook was waiting.
pub(crate) fn execute(
    plugin: &dyn ServicePlugin,
    ctx: &dyn HostContext,
    call: HookCall,
    cancelled: impl Fn() -> bool,
) -> Option<HookResult> {
    let guard = match HostGuard::new(ctx) {
        Ok(guard) => guard,
        Err(e) => return Some(Err(e)),
    };
    let future = async {
        match call {
            HookCall::Create(c) => plugin.on_create(&guard, c).await.map(HookAnswer::Outcome),
            HookCall::Transition(c) => plugin.on_transition(&guard, c).await.map(HookAnswer::Outcome),
            HookCall::Kpis(c) => plugin.kpis(&guard, c).await.map(HookAnswer::Kpis),
        }
    };
    let result = threads::block_on_unless(future, cancelled)?;
    // A host service panicked on this side: the call failed, whatever the plugin made of it.
    Some(match guard.host_panic() {
        Some(host) if !matches!(result, Err(PluginError::Panicked(_))) => Err(host),
        _ => result,
    })
}
