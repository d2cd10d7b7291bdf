//! 导出 exports: a [`Sheet`]'s rows written as XLSX (constant-memory mode, provenance in the
//! document properties and on a `说明 About` sheet) or as streaming CSV (UTF-8 BOM, CRLF, a `#`
//! provenance line, CSV-injection marks). Both re-import exactly through [`crate::Reader`].
//!
//! Personal and sensitive columns are masked with [`mask`] unless the host, after an audited
//! unmask, asks for clear values with `unmasked()`.

use std::io::{Seek, Write};

use jiayuan_domain::{Timestamp, mask};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook, Worksheet};

use crate::cell::number_text;
use crate::csv_source::escape;
use crate::error::LedgerError;
use crate::sheet::{CellKind, Column, Sheet, Value};

/// 来源 who exported what, when and why; written into every export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// 导出人 the exporting account.
    pub exporter: String,
    /// 导出时间 RFC 3339 in Asia/Shanghai (`2026-03-02T09:30:00+08:00`).
    pub at: String,
    /// 范围 the scope exported (a street, an estate…).
    pub scope: String,
    /// 用途 the purpose given.
    pub purpose: String,
}

impl Provenance {
    fn line(&self) -> String {
        let clean = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
        format!(
            "# 导出 Exported: {} {} {} {}",
            clean(&self.exporter),
            clean(&self.at),
            clean(&self.scope),
            clean(&self.purpose)
        )
    }
}

/// The text a value is exported as: codes and texts as they are, dates `YYYY-MM-DD`, yes/no as
/// `是`/`否`, choices by their Chinese label.
fn value_text(column: &Column, v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Date(d) => d.to_string(),
        Value::Integer(n) => n.to_string(),
        Value::Decimal(x) => number_text(*x),
        Value::Bool(b) => (if *b { "是" } else { "否" }).to_owned(),
        Value::Choice(c) => match column.kind {
            CellKind::Choice(options) => options.iter().find(|o| o.value == *c).map_or(*c, |o| o.zh).to_owned(),
            _ => (*c).to_owned(),
        },
    }
}

/// Column width in Excel's character units.
pub(crate) fn width(column: &Column) -> f64 {
    let header = column.zh.chars().count() * 2 + 4;
    let content = match column.kind {
        CellKind::Text { max_chars } => max_chars.min(30) * 2,
        CellKind::Code { max_len, .. } => max_len + 4,
        CellKind::Date => 12,
        CellKind::Integer { .. } | CellKind::Decimal { .. } => 12,
        CellKind::Bool => 6,
        CellKind::Choice(options) => options.iter().map(|o| o.zh.chars().count() * 2 + 4).max().unwrap_or(8),
    };
    header.max(content).min(60) as f64
}

/// Whether a column's cells are stored as text (so Excel never makes numbers or dates of them).
pub(crate) fn is_text_column(column: &Column) -> bool {
    matches!(column.kind, CellKind::Text { .. } | CellKind::Code { .. } | CellKind::Date)
}

/// Writes the `说明 About` sheet's two-column table.
pub(crate) fn write_about(ws: &mut Worksheet, lines: &[(&str, String)], bold: &Format) -> Result<(), LedgerError> {
    ws.set_name("说明 About")?;
    ws.set_column_width(0, 28)?;
    ws.set_column_width(1, 80)?;
    for (i, (k, v)) in lines.iter().enumerate() {
        ws.write_string_with_format(i as u32, 0, *k, bold)?;
        ws.write_string(i as u32, 1, v)?;
    }
    Ok(())
}

/// 导出为 XLSX an export being written: push rows, then `finish`.
pub struct XlsxExport {
    sheet: &'static Sheet,
    provenance: Provenance,
    workbook: Workbook,
    text: Format,
    bold: Format,
    rows: u32,
    masked: bool,
}

impl std::fmt::Debug for XlsxExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XlsxExport")
            .field("sheet", &self.sheet.name_en)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl XlsxExport {
    /// Starts an export of `sheet`; its header row (Chinese names, bold, frozen) is written.
    pub fn new(sheet: &'static Sheet, provenance: Provenance) -> Result<XlsxExport, LedgerError> {
        let mut workbook = Workbook::new();
        let mut properties = DocProperties::new()
            .set_title(format!("{} {}", sheet.name_zh, sheet.name_en))
            .set_author(&provenance.exporter)
            .set_comment(format!(
                "导出 Exported {} · 范围 scope: {} · 用途 purpose: {}",
                provenance.at, provenance.scope, provenance.purpose
            ));
        if let Some(t) = Timestamp::parse_rfc3339(&provenance.at).and_then(utc_datetime) {
            properties = properties.set_creation_datetime(&t);
        }
        workbook.set_properties(&properties);
        let text = Format::new().set_num_format("@");
        let bold = Format::new().set_bold().set_align(FormatAlign::Center).set_num_format("@");
        let ws = workbook.add_worksheet_with_constant_memory()?;
        ws.set_name(sheet.name_zh)?;
        for (i, c) in sheet.columns.iter().enumerate() {
            let col = i as u16;
            ws.set_column_width(col, width(c))?;
            if is_text_column(c) {
                ws.set_column_format(col, &text)?;
            }
            ws.write_string_with_format(0, col, c.zh, &bold)?;
        }
        ws.set_freeze_panes(1, 0)?;
        Ok(XlsxExport { sheet, provenance, workbook, text, bold, rows: 0, masked: true })
    }

    /// Writes Personal and Sensitive columns in clear. Only after an audited unmask.
    pub fn unmasked(mut self) -> XlsxExport {
        self.masked = false;
        self
    }

    /// Writes one row: one value (or `None`) per column of the sheet, in the sheet's order.
    pub fn push_row(&mut self, values: &[Option<Value>]) -> Result<(), LedgerError> {
        let expected = self.sheet.columns.len();
        if values.len() != expected {
            return Err(LedgerError::RowWidth { got: values.len(), expected });
        }
        if self.rows >= 1_048_575 {
            return Err(LedgerError::Limit { what: "rows in one worksheet", limit: 1_048_575 });
        }
        self.rows += 1;
        let row = self.rows;
        let ws = self.workbook.worksheet_from_index(0)?;
        for (i, (c, v)) in self.sheet.columns.iter().zip(values).enumerate() {
            let Some(v) = v else { continue };
            let col = i as u16;
            if self.masked && c.sensitivity.is_masked() {
                ws.write_string_with_format(row, col, mask(&value_text(c, v), c.sensitivity), &self.text)?;
                continue;
            }
            match v {
                Value::Integer(n) if n.unsigned_abs() < (1 << 53) && !is_text_column(c) => {
                    ws.write_number(row, col, *n as f64)?;
                }
                Value::Decimal(x) if !is_text_column(c) => {
                    ws.write_number(row, col, *x)?;
                }
                _ => {
                    ws.write_string_with_format(row, col, value_text(c, v), &self.text)?;
                }
            }
        }
        Ok(())
    }

    /// Data rows written so far.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    fn close(&mut self) -> Result<(), LedgerError> {
        let p = &self.provenance;
        let lines = [
            ("台账 Ledger", format!("{} {}", self.sheet.name_zh, self.sheet.name_en)),
            ("导出人 Exporter", p.exporter.clone()),
            ("导出时间 Exported at", p.at.clone()),
            ("范围 Scope", p.scope.clone()),
            ("用途 Purpose", p.purpose.clone()),
            ("行数 Rows", self.rows.to_string()),
            (
                "个人信息 Personal data",
                if self.masked {
                    "个人信息已脱敏 personal data masked".to_owned()
                } else {
                    "含未脱敏个人信息（经审计的查看授权）contains unmasked personal data (audited unmask)".to_owned()
                },
            ),
        ];
        let bold = self.bold.clone();
        write_about(self.workbook.add_worksheet(), &lines, &bold)
    }

    /// Finishes the workbook and returns its bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, LedgerError> {
        self.close()?;
        Ok(self.workbook.save_to_buffer()?)
    }

    /// Finishes the workbook into `writer`.
    pub fn finish_to<W: Write + Seek + Send>(mut self, writer: W) -> Result<(), LedgerError> {
        self.close()?;
        Ok(self.workbook.save_to_writer(writer)?)
    }
}

/// An instant as the UTC date-time of the document properties.
fn utc_datetime(t: Timestamp) -> Option<ExcelDateTime> {
    let ms = t.millis();
    let date = jiayuan_domain::Date::from_days_since_epoch(ms.div_euclid(86_400_000) as i32);
    let (y, m, d) = date.ymd();
    let s = ms.rem_euclid(86_400_000) / 1000;
    ExcelDateTime::from_ymd(y as u16, m as u8, d as u8)
        .and_then(|dt| dt.and_hms((s / 3600) as u16, (s / 60 % 60) as u8, (s % 60) as u8))
        .ok()
}

/// 导出为 CSV an export streaming to any writer: UTF-8 BOM, CRLF, the `# 导出 Exported:` line,
/// the Chinese header, then rows; a cell a spreadsheet would run as a formula gets a leading `'`.
pub struct CsvExport<W: Write> {
    sheet: &'static Sheet,
    writer: csv::Writer<W>,
    rows: u64,
    masked: bool,
}

impl<W: Write> std::fmt::Debug for CsvExport<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvExport")
            .field("sheet", &self.sheet.name_en)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write> CsvExport<W> {
    /// Starts an export: writes the BOM, the provenance line and the header.
    pub fn new(mut out: W, sheet: &'static Sheet, provenance: &Provenance) -> Result<CsvExport<W>, LedgerError> {
        out.write_all("\u{FEFF}".as_bytes())?;
        out.write_all(provenance.line().as_bytes())?;
        out.write_all(b"\r\n")?;
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
        writer.write_record(sheet.columns.iter().map(|c| c.zh)).map_err(csv_error)?;
        Ok(CsvExport { sheet, writer, rows: 0, masked: true })
    }

    /// Writes Personal and Sensitive columns in clear. Only after an audited unmask.
    pub fn unmasked(mut self) -> CsvExport<W> {
        self.masked = false;
        self
    }

    /// Writes one row: one value (or `None`) per column of the sheet.
    pub fn push_row(&mut self, values: &[Option<Value>]) -> Result<(), LedgerError> {
        let expected = self.sheet.columns.len();
        if values.len() != expected {
            return Err(LedgerError::RowWidth { got: values.len(), expected });
        }
        let cells = self.sheet.columns.iter().zip(values).map(|(c, v)| match v {
            None => String::new(),
            Some(v) => {
                let t = value_text(c, v);
                let t = if self.masked && c.sensitivity.is_masked() { mask(&t, c.sensitivity) } else { t };
                escape(&t).into_owned()
            }
        });
        self.writer.write_record(cells).map_err(csv_error)?;
        self.rows += 1;
        Ok(())
    }

    /// Data rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and returns the writer.
    pub fn finish(self) -> Result<W, LedgerError> {
        self.writer.into_inner().map_err(|e| LedgerError::Io(std::io::Error::other(e.error().to_string())))
    }
}

fn csv_error(e: csv::Error) -> LedgerError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => LedgerError::Io(io),
        _ => LedgerError::Io(std::io::Error::other("csv write failed")),
    }
}
