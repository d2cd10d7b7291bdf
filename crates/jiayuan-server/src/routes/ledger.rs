//! 台账导入导出 registry ledgers over HTTP: imports (CSV or XLSX as the raw request body),
//! exports (masked, audited, with a purpose) and import templates, through the same host
//! functions as `jiayuan import` / `jiayuan export` ([`jiayuan_host::ledger`]); and exports of
//! a service item's records per kind (`GET /api/items/{plugin}/exports/{kind}`), with the same
//! format, purpose and attachment conventions.
//!
//! An import answers its [`ledger::ImportReport`]: 200 when it was committed or was a clean dry
//! run, 422 when it has problems and nothing was written (problems by row and column, values
//! masked by the host). A file that cannot be read at all (legacy `.xls`, no header row, a broken
//! workbook) is 400 naming the reason. The body may be up to [`MAX_UPLOAD`] bytes (413 beyond,
//! with the error shape); the reader and the import run on the blocking pool, so a large workbook
//! never holds an async worker. An unknown kind is 404 listing the kinds.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use jiayuan_host::ledger::{
    self, ExportFormat, ExportPurpose, ImportError, ImportKind, ImportOptions, RecordExportError,
};
use jiayuan_ledger::LedgerError;

use super::Res;
use super::registry_admin::registry_error;
use crate::error::ApiError;
use crate::extract::{CallerExt, Path, Query};
use crate::openapi::{BadRequest, Forbidden, ImportReport, Internal, LedgerFile, NotFound, Unauthenticated};
use crate::{AppState, privacy};

/// The largest upload an import accepts (64 MiB); larger bodies answer 413.
pub(crate) const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// The content type of an XLSX workbook.
pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The content type of a CSV export.
pub(crate) const CSV: &str = "text/csv; charset=utf-8";

/// Every purpose an export may name, as the API spells them.
const PURPOSES: [ExportPurpose; 5] = [
    ExportPurpose::Reconciliation,
    ExportPurpose::Evaluation,
    ExportPurpose::Reporting,
    ExportPurpose::LawfulRequest,
    ExportPurpose::Reimport,
];

fn kinds_list() -> String {
    ImportKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// The kind named in the path; 404 listing the kinds otherwise (the given name is not echoed).
fn parse_kind(name: &str) -> Res<ImportKind> {
    ImportKind::parse(name).ok_or_else(|| {
        let all = kinds_list();
        ApiError::client(
            StatusCode::NOT_FOUND,
            "unknown_kind",
            format!("没有这种台账；可用：{all}"),
            format!("no such ledger kind; use one of {all}"),
        )
    })
}

/// Runs `work` on the blocking pool, driving its future there: the ledger reader parses
/// synchronously (and waits on its XLSX helper thread), which must not stall an async worker.
async fn off_workers<F, T>(work: impl FnOnce() -> F + Send + 'static) -> Res<T>
where
    F: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work())).await.map_err(|e| ApiError::internal(&e))
}

/// 400 for a file that cannot be read as a ledger at all, naming the reason (never a value:
/// the ledger's errors carry none).
fn unreadable(e: &LedgerError) -> ApiError {
    let (code, zh) = match e {
        LedgerError::LegacyXls => ("legacy_xls", "不支持旧版 .xls 文件，请另存为 .xlsx（Excel 工作簿）后重新上传"),
        LedgerError::NoHeader => ("no_header", "文件没有表头行"),
        LedgerError::Xlsx(_) => ("bad_workbook", "无法读取该 Excel 工作簿"),
        LedgerError::Csv { .. } => ("bad_csv", "无法解析该 CSV 文件"),
        LedgerError::Limit { .. } => ("too_large", "文件超出导入限额"),
        _ => ("unreadable_file", "无法读取该文件"),
    };
    let en = match e {
        LedgerError::Io(_) => "the file could not be read".to_owned(),
        other => other.to_string(),
    };
    ApiError::bad_request("body", code, zh.to_owned(), privacy::scrub(&en))
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::File(e) => unreadable(&e),
        ImportError::Registry(e) => registry_error(e),
        e @ ImportError::Interrupted => ApiError::internal(&e),
    }
}

/// How to run an import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImportQuery {
    /// 试运行 check every row and report, but write nothing (default `false`).
    #[serde(default)]
    dry_run: bool,
    /// Apply the rows without problems even when others have some (default `false`: all or
    /// nothing).
    #[serde(default)]
    valid_rows_only: bool,
}

/// Reads the upload, at most [`MAX_UPLOAD`] bytes (413 beyond).
async fn read_upload(headers: &HeaderMap, body: Body) -> Res<Vec<u8>> {
    let too_large = || {
        ApiError::bad_request(
            "body",
            "too_large",
            format!("上传文件不能超过 {} MiB", MAX_UPLOAD >> 20),
            format!("the upload is larger than {} MiB", MAX_UPLOAD >> 20),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, MAX_UPLOAD).await {
        Ok(bytes) => Ok(Vec::from(bytes)),
        Err(e) => {
            let limit = std::error::Error::source(&e)
                .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some())
                || e.into_inner().downcast_ref::<http_body_util::LengthLimitError>().is_some();
            if limit {
                Err(too_large())
            } else {
                Err(ApiError::bad_request(
                    "body",
                    "unreadable_body",
                    "无法读取上传内容".into(),
                    "the upload could not be read".into(),
                ))
            }
        }
    }
}

/// 导入台账 / Import a ledger
///
/// `POST /api/registry/imports/{kind}?dry_run=&valid_rows_only=`: the body is the file itself,
/// CSV (UTF-8, UTF-16 or GB 18030) or XLSX (any `content-type`; an XLSX is known by its bytes).
/// Rows are applied through the registry service in one transaction, matched by natural key, so
/// importing the same file twice changes nothing; a row naming a resident the caller does not
/// reach is counted as `referred`, neither changed nor described. All or nothing unless
/// `valid_rows_only`; a dry run writes nothing. Accepts `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/registry/imports/{kind}",
    tag = "registry",
    params(
        ("kind" = String, Path, description = "台账类型 / Ledger kind: divisions, firms, estates, grid_cells, \
            assignments, buildings, houses, persons, occupancy or leases", example = "persons"),
        ImportQuery,
    ),
    request_body(
        description = "台账文件（CSV 或 XLSX，至多 64 MiB） / The ledger file (CSV or XLSX, at most 64 MiB)",
        content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), ("application/octet-stream")),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "已导入，或试运行无问题 / Applied, or a dry run without problems", body = ImportReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, description = "文件过大 / The file is larger than 64 MiB", body = crate::error::ErrorBody),
        (status = 422, description = "有问题，未写入（见 problems） / Problems found, nothing written (see `problems`)", body = ImportReport),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn import(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(kind): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Res<Response> {
    let kind = parse_kind(&kind)?;
    let bytes = read_upload(&headers, body).await?;
    let declared_xlsx =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with(XLSX));
    let hint = if declared_xlsx { "upload.xlsx" } else { "" };
    let options = ImportOptions { dry_run: q.dry_run, valid_rows_only: q.valid_rows_only };
    let engine = s.engine.clone();
    let by = caller.name.clone();
    let report = off_workers(move || async move {
        let reader = jiayuan_ledger::Reader::from_bytes(bytes, hint, ledger::sheet_of(kind))?;
        ledger::import(engine.registry(), &caller, kind, reader, options, &|_| {}).await
    })
    .await?
    .map_err(import_error)?;
    if report.committed && matches!(kind, ImportKind::Estates | ImportKind::Assignments) {
        // The engine caches each estate's place (street, community, serving firm).
        s.engine.forget_places();
    }
    let mut report = report;
    for p in &mut report.problems {
        p.reason_zh = privacy::scrub(&p.reason_zh);
        p.reason_en = privacy::scrub(&p.reason_en);
    }
    let status =
        if report.refused > 0 && !report.committed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    tracing::info!(
        kind = kind.as_str(),
        rows = report.rows,
        inserted = report.inserted,
        updated = report.updated,
        unchanged = report.unchanged,
        referred = report.referred,
        refused = report.refused,
        committed = report.committed,
        by = %by,
        "registry import"
    );
    Ok((status, axum::Json(report)).into_response())
}

/// What to export and why.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// `xlsx` (default) or `csv` (UTF-8 with a BOM, for Excel).
    #[param(example = "xlsx")]
    format: Option<String>,
    /// 用途（必填，记入审计） why: reconciliation, evaluation, reporting, lawful_request or reimport.
    #[param(example = "reconciliation")]
    purpose: Option<String>,
    /// Personal fields in clear, for editing and importing again (needs the unmask permission;
    /// audited as such). Default `false`.
    #[serde(default)]
    unmasked: bool,
}

/// The format an export asks for: `xlsx` (the default) or `csv`, with its extension and
/// content type; 400 otherwise (the given name is not echoed).
fn export_format(format: Option<&str>) -> Res<(ExportFormat, &'static str, &'static str)> {
    match format {
        None | Some("xlsx") => Ok((ExportFormat::Xlsx, "xlsx", XLSX)),
        Some("csv") => Ok((ExportFormat::Csv, "csv", CSV)),
        Some(_) => Err(ApiError::bad_request(
            "format",
            "bad_format",
            "导出格式应为 xlsx 或 csv".into(),
            "format must be xlsx or csv".into(),
        )),
    }
}

/// The purpose an export names; 400 listing the purposes when it is missing or unknown.
fn export_purpose(purpose: Option<&str>) -> Res<ExportPurpose> {
    purpose.and_then(ExportPurpose::parse).ok_or_else(|| {
        let all = PURPOSES.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
        ApiError::bad_request(
            "purpose",
            "bad_purpose",
            format!("请填写导出用途：{all}"),
            format!("give the purpose of the export: one of {all}"),
        )
    })
}

fn attachment(kind: &str, suffix: &str, ext: &str, content_type: &'static str, bytes: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{kind}-{suffix}.{ext}\"");
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 导出台账 / Export a ledger
///
/// `GET /api/registry/exports/{kind}?format=xlsx|csv&purpose=…&unmasked=false`: the entries of
/// the kind within the caller's reach, every personal field masked, the exporter, time, scope and
/// purpose named in the file; audited before it is handed out. An XLSX export imports again
/// unchanged.
#[utoipa::path(
    get,
    path = "/api/registry/exports/{kind}",
    tag = "registry",
    params(
        ("kind" = String, Path, description = "台账类型 / Ledger kind", example = "estates"),
        ExportQuery,
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (
            status = 200,
            description = "台账文件（附件） / The ledger file (an attachment)",
            headers(("content-disposition" = String, description = "`attachment; filename=\"<kind>-<date>.<ext>\"`")),
            content((LedgerFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (LedgerFile = "text/csv; charset=utf-8")),
        ),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn export(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(kind): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Res<Response> {
    let kind = parse_kind(&kind)?;
    let (format, ext, content_type) = export_format(q.format.as_deref())?;
    let purpose = export_purpose(q.purpose.as_deref())?;
    let engine = s.engine.clone();
    let unmasked = q.unmasked;
    let export = off_workers(move || async move {
        ledger::export(engine.registry(), &caller, kind, format, purpose, unmasked).await
    })
    .await?
    .map_err(import_error)?;
    let today = s.engine.clock().now().shanghai_date().to_string();
    Ok(attachment(kind.as_str(), &today, ext, content_type, export.bytes))
}

/// What to export a plugin's records as, and why.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordExportQuery {
    /// `xlsx` (default) or `csv` (UTF-8 with a BOM, for Excel).
    #[param(example = "csv")]
    format: Option<String>,
    /// 用途（必填，记入审计） why: reconciliation, evaluation, reporting, lawful_request or reimport.
    #[param(example = "reconciliation")]
    purpose: Option<String>,
}

/// 导出记录 / Export a service item's records
///
/// `GET /api/items/{plugin}/exports/{kind}?format=xlsx|csv&purpose=…`: every record of the kind
/// the caller reaches (the listing's scope and item assignment: records outside it are simply
/// absent), one row each; the columns are the record's id, estate, state and times, then the
/// manifest's fields with their Chinese labels as headers. Every personal or sensitive field is
/// masked; the exporter, time, scope and purpose are named in the file, and the export is audited
/// (`records.export`) before it is handed out. An unknown item or kind is 404.
#[utoipa::path(
    get,
    path = "/api/items/{plugin}/exports/{kind}",
    tag = "records",
    operation_id = "export_records",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ("kind" = String, Path, description = "记录类型 / Record kind of the item's manifest", example = "dog"),
        RecordExportQuery,
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (
            status = 200,
            description = "记录文件（附件，已脱敏） / The records file (an attachment, masked)",
            headers(("content-disposition" = String, description = "`attachment; filename=\"<plugin>-<kind>-<date>.<ext>\"`")),
            content((LedgerFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (LedgerFile = "text/csv; charset=utf-8")),
        ),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn export_records(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((plugin, kind)): Path<(String, String)>,
    Query(q): Query<RecordExportQuery>,
) -> Res<Response> {
    let (format, ext, content_type) = export_format(q.format.as_deref())?;
    let purpose = export_purpose(q.purpose.as_deref())?;
    let engine = s.engine.clone();
    let by = caller.name.clone();
    let (p, k) = (plugin.clone(), kind.clone());
    let export =
        off_workers(move || async move { ledger::export_records(&engine, &caller, &p, &k, format, purpose).await })
            .await?
            .map_err(|e| match e {
                RecordExportError::Engine(e) => ApiError::from(e),
                RecordExportError::Export(e) => import_error(e),
            })?;
    tracing::info!(
        plugin,
        kind,
        rows = export.rows,
        format = format.as_str(),
        purpose = purpose.as_str(),
        by = %by,
        "records export"
    );
    let today = s.engine.clock().now().shanghai_date().to_string();
    Ok(attachment(&format!("{plugin}-{kind}"), &today, ext, content_type, export.bytes))
}

/// 导入模板 / An import template
///
/// `GET /api/registry/templates/{kind}`: the XLSX template of a kind — headers in Chinese, a
/// notes row, drop-downs for choices.
#[utoipa::path(
    get,
    path = "/api/registry/templates/{kind}",
    tag = "registry",
    params(("kind" = String, Path, description = "台账类型 / Ledger kind", example = "persons")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (
            status = 200,
            description = "导入模板（附件） / The template (an attachment)",
            content((LedgerFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
        ),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn template(Path(kind): Path<String>) -> Res<Response> {
    let kind = parse_kind(&kind)?;
    let bytes = off_workers(move || async move { jiayuan_ledger::template(ledger::sheet_of(kind)) })
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(attachment(kind.as_str(), "template", "xlsx", XLSX, bytes))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::Value;

    use crate::testkit::TestApp;

    const DIVISIONS: &str =
        "区划代码,名称,生效日期\n440303000000,罗湖区,2019-01-01\n440303004000,翠竹街道,2019-01-01\n";

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("a JSON body")
    }

    #[tokio::test]
    async fn imports_answer_their_report_and_reimports_change_nothing() {
        let app = TestApp::start().await;
        let path = "/api/registry/imports/divisions";
        let (status, _, body) = app.send_bytes("POST", path, DIVISIONS.into(), &[("content-type", "text/csv")]).await;
        let report = json(&body);
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!((report["inserted"].as_u64(), report["committed"].as_bool()), (Some(2), Some(true)), "{report}");
        // Any content type: the bytes decide.
        let (status, _, body) = app.send_bytes("POST", path, DIVISIONS.into(), &[]).await;
        let report = json(&body);
        assert_eq!(
            (status, report["unchanged"].as_u64(), report["inserted"].as_u64()),
            (StatusCode::OK, Some(2), Some(0))
        );

        // Problems, nothing written: 422 with the report.
        let bad = format!("{DIVISIONS}44030300400,短,2019-01-01\n440303004008,翠竹社区,2019-01-01\n");
        let (status, _, body) = app.send_bytes("POST", path, bad.clone().into(), &[]).await;
        let report = json(&body);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{report}");
        assert_eq!((report["refused"].as_u64(), report["committed"].as_bool()), (Some(1), Some(false)), "{report}");
        assert_eq!(report["problems"][0]["row"].as_u64(), Some(4), "{report}");
        // A dry run reports the same, and writes nothing either.
        let (status, _, body) = app.send_bytes("POST", &format!("{path}?dry_run=true"), bad.clone().into(), &[]).await;
        assert_eq!((status, json(&body)["dry_run"].as_bool()), (StatusCode::UNPROCESSABLE_ENTITY, Some(true)));
        // The valid rows only.
        let (status, _, body) = app.send_bytes("POST", &format!("{path}?valid_rows_only=true"), bad.into(), &[]).await;
        let report = json(&body);
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!((report["inserted"].as_u64(), report["refused"].as_u64()), (Some(1), Some(1)), "{report}");

        // Idempotency-Key: the retry replays the first answer.
        let key = [("idempotency-key", "import-1")];
        let (first, _, a) = app.send_bytes("POST", path, DIVISIONS.into(), &key).await;
        let (again, headers, b) = app.send_bytes("POST", path, DIVISIONS.into(), &key).await;
        assert_eq!((first, again), (StatusCode::OK, StatusCode::OK));
        assert_eq!(a, b);
        assert_eq!(headers.get(crate::idempotency::REPLAYED).and_then(|v| v.to_str().ok()), Some("true"));
    }

    #[tokio::test]
    async fn unreadable_files_unknown_kinds_and_large_bodies_are_refused_with_the_error_shape() {
        let app = TestApp::start().await;
        let (status, _, body) =
            app.send_bytes("POST", "/api/registry/imports/pets9876543210", DIVISIONS.into(), &[]).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!((status, json(&body)["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_kind")));
        assert!(text.contains("divisions") && text.contains("leases"), "the kinds are listed: {text}");
        assert!(!text.contains("pets"), "the path is not echoed: {text}");

        let path = "/api/registry/imports/persons";
        let xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1legacy".to_vec();
        let (status, _, body) = app.send_bytes("POST", path, xls, &[]).await;
        let body = json(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["violations"][0]["code"], "legacy_xls", "{body}");
        assert!(body["error"]["message_en"].as_str().is_some_and(|m| m.contains(".xlsx")), "{body}");

        let (status, _, body) = app.send_bytes("POST", path, Vec::new(), &[]).await;
        assert_eq!(
            (status, json(&body)["error"]["violations"][0]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("no_header"))
        );

        let huge = vec![b'a'; super::MAX_UPLOAD + 1];
        let (status, _, body) = app.send_bytes("POST", path, huge, &[]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json(&body)["error"]["violations"][0]["code"], "too_large");
    }

    #[tokio::test]
    async fn exports_are_attachments_with_a_purpose_and_templates_are_workbooks() {
        let app = TestApp::start().await;
        let (status, _, _) = app.send_bytes("POST", "/api/registry/imports/divisions", DIVISIONS.into(), &[]).await;
        assert_eq!(status, StatusCode::OK);

        let (status, headers, body) = app
            .send_bytes("GET", "/api/registry/exports/divisions?format=csv&purpose=reconciliation", Vec::new(), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], super::CSV);
        let disposition = headers["content-disposition"].to_str().expect("ascii");
        assert!(
            disposition.starts_with("attachment; filename=\"divisions-20") && disposition.ends_with(".csv\""),
            "{disposition}"
        );
        assert!(String::from_utf8_lossy(&body).contains("罗湖区"));

        let (status, headers, body) =
            app.send_bytes("GET", "/api/registry/exports/grid-cells?purpose=reporting", Vec::new(), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], super::XLSX);
        assert!(headers["content-disposition"].to_str().expect("ascii").contains("grid_cells-"));
        assert!(body.starts_with(b"PK"), "an XLSX workbook");

        for query in ["", "?purpose=curiosity", "?purpose=reporting&format=pdf"] {
            let (status, _, body) =
                app.send_bytes("GET", &format!("/api/registry/exports/estates{query}"), Vec::new(), &[]).await;
            let body = json(&body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert!(!body.to_string().contains("curiosity") && !body.to_string().contains("pdf"), "{body}");
        }
        let (_, _, body) = app.send_bytes("GET", "/api/registry/exports/estates", Vec::new(), &[]).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(text.contains("reconciliation") && text.contains("lawful_request"), "the purposes are listed: {text}");

        let (status, headers, body) = app.send_bytes("GET", "/api/registry/templates/persons", Vec::new(), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], super::XLSX);
        assert!(body.starts_with(b"PK"));
        let (status, _, _) = app.send_bytes("GET", "/api/registry/templates/nothing", Vec::new(), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn record_exports_need_a_purpose_and_a_loaded_item() {
        let app = TestApp::start().await;
        for query in ["", "?purpose=curiosity", "?purpose=reporting&format=pdf", "?purpose=reporting&unmasked=true"] {
            let path = format!("/api/items/dog-licensing/exports/dog{query}");
            let (status, _, body) = app.send_bytes("GET", &path, Vec::new(), &[]).await;
            let body = json(&body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert!(!body.to_string().contains("curiosity") && !body.to_string().contains("pdf"), "{body}");
        }
        let (_, _, body) = app.send_bytes("GET", "/api/items/dog-licensing/exports/dog", Vec::new(), &[]).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(text.contains("reconciliation") && text.contains("lawful_request"), "the purposes are listed: {text}");
        // No plugin is loaded here: an unknown item is 404, like every item route.
        let (status, _, body) = app
            .send_bytes("GET", "/api/items/dog-licensing/exports/dog?purpose=reporting&format=csv", Vec::new(), &[])
            .await;
        let body = json(&body);
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_item")), "{body}");
    }
}
