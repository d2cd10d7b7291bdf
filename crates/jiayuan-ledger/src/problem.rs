//! 问题 problems: what is wrong with one cell, one row or the header, in Chinese and English,
//! naming the row and the column but never the raw value (only its masked form).

use jiayuan_domain::mask;

use crate::cell::CellAt;

/// 问题 one thing wrong with a ledger file, located by row and column.
///
/// The raw cell value never appears here: [`Problem::masked_value`] is the cell through
/// [`mask`] with the column's sensitivity, and the reasons do not quote the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 行号 1-based row number as the user sees it in Excel (the header row for header problems).
    pub row: u64,
    /// 列 the header as written in the file, or the column's Chinese name; `None` for whole rows.
    pub column: Option<String>,
    /// The column's key, when the problem concerns a known column.
    pub key: Option<&'static str>,
    /// Machine code: `required`, `excel_scientific`, `excel_date_serial`, `date_format`,
    /// `too_long`, `length`, `code_chars`, `not_a_number`, `not_an_integer`, `out_of_range`,
    /// `not_a_choice`, `not_a_bool`, `bad_encoding`, `excel_error`, `unknown_header`,
    /// `missing_column`, `duplicate_header`.
    pub rule: &'static str,
    /// 原因 the reason, Chinese.
    pub reason_zh: String,
    /// The reason, English.
    pub reason_en: String,
    /// 脱敏值 the cell through [`mask`] with the column's sensitivity; `None` for empty cells.
    pub masked_value: Option<String>,
}

impl Problem {
    /// A problem of one cell; `raw` is masked here with the column's sensitivity and never kept
    /// otherwise.
    pub(crate) fn cell(
        at: &CellAt<'_>,
        raw: Option<&str>,
        rule: &'static str,
        reason_zh: impl Into<String>,
        reason_en: impl Into<String>,
    ) -> Problem {
        Problem {
            row: at.row,
            column: Some(at.header.to_owned()),
            key: Some(at.column.key),
            rule,
            reason_zh: reason_zh.into(),
            reason_en: reason_en.into(),
            masked_value: raw.filter(|r| !r.is_empty()).map(|r| mask(r, at.column.sensitivity)),
        }
    }

    /// A problem of the header row (header texts are not personal data).
    pub(crate) fn header(
        row: u64,
        column: &str,
        key: Option<&'static str>,
        rule: &'static str,
        reason_zh: impl Into<String>,
        reason_en: impl Into<String>,
    ) -> Problem {
        Problem {
            row,
            column: Some(column.to_owned()),
            key,
            rule,
            reason_zh: reason_zh.into(),
            reason_en: reason_en.into(),
            masked_value: None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "第 {} 行", self.row)?;
        if let Some(c) = &self.column {
            write!(f, "「{c}」")?;
        }
        write!(f, "：{} / row {}", self.reason_zh, self.row)?;
        if let Some(c) = &self.column {
            write!(f, ", column `{c}`")?;
        }
        write!(f, ": {}", self.reason_en)
    }
}
