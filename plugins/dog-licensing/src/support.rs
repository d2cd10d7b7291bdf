//! Small helpers shared by the hooks: typed views of record data, paged queries.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use jiayuan_domain::EstateId;
use jiayuan_plugin_api::{FieldViolation, HostContext, PluginError, Record, RecordQuery};

/// Records asked for per page; the host caps pages (at 1000 today), so every read pages.
pub(crate) const PAGE: u32 = 500;

/// The data object of a record or call, typed. The host has type-checked it against the
/// manifest, so a failure here is a contract bug, not bad input.
pub(crate) fn typed<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, PluginError> {
    serde_json::from_str(json)
        .map_err(|e| PluginError::Internal(format!("{what} data does not match the manifest: {e}")))
}

/// The data object as a JSON map, to add derived fields to.
pub(crate) fn object(json: &str, what: &str) -> Result<Map<String, Value>, PluginError> {
    typed(json, what)
}

/// Every record matching `query`, reading page by page.
pub(crate) async fn query_all(ctx: &dyn HostContext, mut query: RecordQuery) -> Result<Vec<Record>, PluginError> {
    query.limit = PAGE;
    let mut out: Vec<Record> = Vec::new();
    loop {
        let page = ctx.records().query(&query).await?;
        let Some(last) = page.last().map(|r| r.id) else { break };
        out.extend(page);
        query.after = Some(last);
    }
    Ok(out)
}

/// A violation.
pub(crate) fn violation(field: &str, code: &str, zh: String, en: String) -> FieldViolation {
    FieldViolation::new(field, code, zh, en)
}

/// The estate a dog record sits at: dogs, vaccinations and licences sit at estates only (the
/// manifest says so and the host enforces it), so a missing one is a contract bug.
pub(crate) fn estate_of(estate: Option<EstateId>) -> Result<EstateId, PluginError> {
    estate.ok_or_else(|| PluginError::Internal("a dog record must sit at an estate".into()))
}
