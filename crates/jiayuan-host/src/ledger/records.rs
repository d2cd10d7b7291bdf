//! Exports of a plugin's records: one sheet per record kind, its columns generated from the
//! manifest (the field labels, Chinese first), every `Personal` or `Sensitive` field through the
//! one masking function of the ledger writer, audited like registry exports.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use jiayuan_domain::Sensitivity;
use jiayuan_ledger::{CellKind, Column, Sheet, Value};
use jiayuan_plugin_api::{FieldType, RecordKind};
use jiayuan_schema::projection::Viewer;

use super::{Export, ExportFormat, ExportPurpose, ImportError, Sink, scope_text};
use crate::access::{self, Action, Caller, Target};
use crate::engine::{Engine, EngineError, ListRequest};
use crate::registry::RegistryError;

/// Why a record export failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordExportError {
    /// The engine refused (unknown item or kind, out of scope) or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The role may not export, writing the file failed, or the audit failed.
    #[error(transparent)]
    Export(#[from] ImportError),
}

/// The columns every record sheet starts with.
const FIXED: [(&str, &str, &str); 5] = [
    ("id", "记录编号", "Record id"),
    ("place", "位置", "Place"),
    ("state", "状态", "State"),
    ("created_at", "创建时间", "Created"),
    ("updated_at", "更新时间", "Updated"),
];

/// (plugin, kind, audience).
type SheetKey = (String, String, String);

/// The sheet of one record kind as one audience sees it — only the fields it may see, values
/// already projected by the engine (so the sheet masks nothing again) — built once per (plugin,
/// kind, audience) and kept for the life of the process (a handful per loaded plugin: the writer
/// takes `'static` sheets).
fn sheet_for(plugin: &str, kind: &RecordKind, viewer: &Viewer<'_>) -> &'static Sheet {
    static SHEETS: OnceLock<Mutex<HashMap<SheetKey, &'static Sheet>>> = OnceLock::new();
    let sheets = SHEETS.get_or_init(Default::default);
    let mut sheets = sheets.lock().unwrap_or_else(|p| p.into_inner());
    let audience = viewer.audience.map_or_else(|| "system".to_owned(), ToString::to_string);
    let key = (plugin.to_owned(), kind.id.clone(), audience);
    if let Some(sheet) = sheets.get(&key) {
        return sheet;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let mut columns: Vec<Column> = FIXED
        .iter()
        .map(|(key, zh, en)| Column {
            key,
            zh,
            en,
            required: false,
            kind: CellKind::Text { max_chars: 64 },
            sensitivity: Sensitivity::Public,
            note_zh: "",
            note_en: "",
        })
        .collect();
    for f in kind.fields.iter().filter(|f| viewer.sees(f)) {
        let cell = match &f.ty {
            FieldType::Integer { min, max } => CellKind::Integer { min: *min, max: *max },
            FieldType::Decimal { min, max } => CellKind::Decimal { min: *min, max: *max },
            FieldType::Bool => CellKind::Bool,
            FieldType::Date => CellKind::Date,
            FieldType::Digits { len } => CellKind::Code { min_len: *len as usize, max_len: *len as usize },
            // The option's Chinese label goes into the file (the writer maps the value to it).
            FieldType::Choice { options } => CellKind::Choice(Box::leak(
                options
                    .iter()
                    .map(|o| jiayuan_ledger::Choice {
                        value: leak(&o.value),
                        zh: leak(&o.label.zh),
                        en: leak(&o.label.en),
                    })
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            )),
            _ => CellKind::Text { max_chars: 4000 },
        };
        columns.push(Column {
            key: leak(&f.name),
            zh: leak(&f.label.zh),
            en: leak(&f.label.en),
            required: false,
            kind: cell,
            // Masked already, by the one projection.
            sensitivity: Sensitivity::Public,
            note_zh: "",
            note_en: "",
        });
    }
    let sheet: &'static Sheet = Box::leak(Box::new(Sheet {
        name_zh: leak(&kind.label.zh),
        name_en: leak(&kind.label.en),
        columns: Box::leak(columns.into_boxed_slice()),
    }));
    sheets.insert(key, sheet);
    sheet
}

/// One JSON value as a cell of `kind`.
fn cell(kind: CellKind, v: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    match (kind, v) {
        (_, J::Null) => None,
        (CellKind::Bool, J::Bool(b)) => Some(Value::Bool(*b)),
        (CellKind::Integer { .. }, J::Number(n)) => n.as_i64().map(Value::Integer),
        (CellKind::Decimal { .. }, J::Number(n)) => n.as_f64().map(Value::Decimal),
        (CellKind::Date, J::String(s)) => s.parse().ok().map(Value::Date).or_else(|| Some(Value::Text(s.clone()))),
        (CellKind::Choice(options), J::String(s)) => Some(
            options.iter().find(|o| o.value == s).map_or_else(|| Value::Text(s.clone()), |o| Value::Choice(o.value)),
        ),
        (_, J::String(s)) => Some(Value::Text(s.clone())),
        (_, J::Array(items)) => Some(Value::Text(
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect::<Vec<_>>().join(","),
        )),
        (_, other) => Some(Value::Text(other.to_string())),
    }
}

/// Exports the records of `kind` of `plugin` that the caller reaches (every page, in id order),
/// masked, with the exporter, time, scope and purpose in the file, and audits the export.
pub async fn export_records(
    engine: &Engine,
    caller: &Caller,
    plugin: &str,
    kind: &str,
    format: ExportFormat,
    purpose: ExportPurpose,
) -> Result<Export, RecordExportError> {
    access::authorize(caller, Action::Export, Target::default())
        .map_err(|d| ImportError::Registry(RegistryError::Denied(d)))?;
    let handle = engine.plugins().handle(plugin).ok_or_else(|| EngineError::UnknownPlugin(plugin.to_owned()))?;
    let manifest = handle.manifest();
    let viewer = crate::engine::viewer_of(caller);
    let record_kind = manifest
        .kind(kind)
        .filter(|k| viewer.sees_kind(k))
        .ok_or_else(|| EngineError::UnknownKind { plugin: plugin.to_owned(), kind: kind.to_owned() })?;
    let sheet = sheet_for(plugin, record_kind, &viewer);
    let registry = engine.registry();
    let provenance = jiayuan_ledger::Provenance {
        exporter: caller.name.clone(),
        at: registry.now().to_rfc3339_shanghai(),
        scope: scope_text(caller),
        purpose: purpose.as_str().to_owned(),
    };
    let mut sink = Sink::new(format, sheet, provenance, false).map_err(ImportError::from)?;
    let mut rows = 0u64;
    let mut after = None;
    loop {
        let page = engine
            .list(
                caller,
                plugin,
                ListRequest { kind: Some(kind.to_owned()), after, limit: Some(200), ..ListRequest::default() },
            )
            .await?;
        for r in &page.records {
            let mut values = vec![
                Some(Value::Text(r.id.to_string())),
                Some(Value::Text(r.place.to_string())),
                Some(Value::Text(r.state.clone())),
                Some(Value::Text(r.created_at.clone())),
                Some(Value::Text(r.updated_at.clone())),
            ];
            for (f, column) in record_kind.fields.iter().filter(|f| viewer.sees(f)).zip(&sheet.columns[FIXED.len()..]) {
                values.push(r.data.get(&f.name).and_then(|v| cell(column.kind, v)));
            }
            sink.push(&values).map_err(ImportError::from)?;
            rows += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let bytes = sink.finish().map_err(ImportError::from)?;
    let mut write = registry.begin(caller).await.map_err(ImportError::from)?;
    write.audit(
        "records.export",
        &format!("{plugin}/export/{kind}"),
        serde_json::json!({"plugin": plugin, "kind": kind, "scope": scope_text(caller), "rows": rows,
                           "purpose": purpose.as_str(), "format": format.as_str()}),
    );
    write.commit().await.map_err(ImportError::from)?;
    Ok(Export { bytes, rows })
}
