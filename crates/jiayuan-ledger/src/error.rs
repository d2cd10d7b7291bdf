//! 错误 the errors that stop reading or writing a ledger file. Their texts never contain a cell
//! value: per-cell trouble is a [`crate::Problem`], not an error.

/// Why a ledger file cannot be read or written (as a whole).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Reading or writing the file failed.
    #[error("ledger file io failed: {0}")]
    Io(#[from] std::io::Error),
    /// 旧版 .xls the legacy binary Excel format.
    #[error("legacy .xls workbooks are not read; save the file as .xlsx (Excel 工作簿) and upload it again")]
    LegacyXls,
    /// The file has no header row.
    #[error("the file has no header row (表头)")]
    NoHeader,
    /// The workbook could not be opened or parsed.
    #[error("the workbook could not be read: {0}")]
    Xlsx(&'static str),
    /// The CSV could not be parsed at a line.
    #[error("the csv file could not be parsed near line {line}")]
    Csv {
        /// Line of the file.
        line: u64,
    },
    /// A limit of [`crate::ReaderLimits`] was exceeded.
    #[error("the file exceeds the limit of {limit} {what}")]
    Limit {
        /// What was counted (`rows`, `columns`, `bytes in one record`, `decompressed bytes`…).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A row pushed to an export does not have one value per column.
    #[error("an export row has {got} values for {expected} columns")]
    RowWidth {
        /// Values given.
        got: usize,
        /// Columns of the sheet.
        expected: usize,
    },
    /// Writing the workbook failed.
    #[error("the workbook could not be written: {0}")]
    XlsxWrite(String),
}

impl From<rust_xlsxwriter::XlsxError> for LedgerError {
    fn from(e: rust_xlsxwriter::XlsxError) -> LedgerError {
        // Writer errors name limits and sheet names, not cell values: a string too long for a
        // cell is reported as a length, but to be safe only the variant's kind is kept.
        let text = match e {
            rust_xlsxwriter::XlsxError::MaxStringLengthExceeded => "a text exceeds 32,767 characters".to_owned(),
            rust_xlsxwriter::XlsxError::RowColumnLimitError => "row or column beyond the sheet's limits".to_owned(),
            rust_xlsxwriter::XlsxError::IoError(e) => format!("io: {e}"),
            other => format!("{other:?}").chars().take_while(|c| c.is_alphanumeric()).collect(),
        };
        LedgerError::XlsxWrite(text)
    }
}
