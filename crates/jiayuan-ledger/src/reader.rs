//! 导入 the reader: a CSV or XLSX ledger file to typed [`Row`]s, with every problem located by
//! row and column.
//!
//! CSV streams (bounded buffers; see `csv_source`); XLSX streams the worksheet's cells (see
//! `xlsx_source` for what calamine loads whole).

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::cell::{CellAt, RawCell, number_text, parse, trim_cell};
use crate::csv_source::CsvSource;
use crate::error::LedgerError;
use crate::header::{NOTES_MARKER, match_header};
use crate::problem::Problem;
use crate::sheet::{Row, Sheet};
use crate::xlsx_source::XlsxSource;

/// 限额 limits that keep a hostile file from exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Data rows at most (default 1,000,000).
    pub max_rows: u64,
    /// Columns at most (default 200).
    pub max_columns: usize,
    /// Characters in one cell at most (default 4,000); longer cells are a `too_long` problem.
    pub max_cell_chars: usize,
    /// Bytes in one CSV record (or line before the header) at most (default 1 MiB).
    pub max_record_bytes: u64,
    /// Bytes of an XLSX read from a stream into memory (default 256 MiB).
    pub max_file_bytes: u64,
    /// Decompressed bytes of an XLSX's parts, per part and in total (default 2 GiB).
    pub max_decompressed_bytes: u64,
}

impl Default for ReaderLimits {
    fn default() -> ReaderLimits {
        ReaderLimits {
            max_rows: 1_000_000,
            max_columns: 200,
            max_cell_chars: 4_000,
            max_record_bytes: 1 << 20,
            max_file_bytes: 256 << 20,
            max_decompressed_bytes: 2 << 30,
        }
    }
}

/// The kind of file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma (or tab, semicolon) separated text.
    Csv,
    /// An Excel 2007+ workbook.
    Xlsx,
}

/// What one step of the reader yields.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A row without problems.
    Row(Row),
    /// The problems of one row (or of the header row, yielded first).
    Problems {
        /// 1-based row number.
        row: u64,
        /// Every problem of the row, by column.
        problems: Vec<Problem>,
    },
}

/// 进度 how far the reader is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Data rows read so far (with or without problems).
    pub rows_read: u64,
    /// Bytes of the file read so far (an XLSX is read whole at open to hash it).
    pub bytes_read: u64,
    /// Size of the file, when known.
    pub total_bytes: Option<u64>,
    /// Rows the worksheet declares (XLSX only; includes the header).
    pub rows_hint: Option<u64>,
}

#[derive(Debug)]
enum Source {
    Csv(Box<CsvSource>),
    Xlsx(XlsxSource),
}

impl Source {
    fn next_record(&mut self, limits: &ReaderLimits) -> Result<Option<(u64, Vec<RawCell>)>, LedgerError> {
        match self {
            Source::Csv(s) => s.next_record(limits.max_columns),
            Source::Xlsx(s) => s.next_record(),
        }
    }
}

/// 台账读取器 reads a ledger file for a [`Sheet`]: an iterator of [`RowOutcome`]s, header
/// problems first.
#[derive(Debug)]
pub struct Reader {
    sheet: &'static Sheet,
    limits: ReaderLimits,
    source: Source,
    format: Format,
    header_row: u64,
    columns: Vec<Option<(usize, String)>>,
    header_problems: Vec<Problem>,
    header_reported: bool,
    after_header: bool,
    rows_read: u64,
    total_bytes: Option<u64>,
    sha256: Option<[u8; 32]>,
    done: bool,
}

const XLSX_MAGIC: &[u8] = b"PK\x03\x04";
const XLS_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0";

/// Reads up to `n` bytes (fewer only at the end of the stream).
fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn sha256_of(r: &mut impl Read) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

impl Reader {
    /// Opens a file with the default limits.
    pub fn open(path: &Path, sheet: &'static Sheet) -> Result<Reader, LedgerError> {
        Reader::open_with(path, sheet, ReaderLimits::default())
    }

    /// Opens a file: XLSX by its magic bytes, legacy `.xls` refused, anything else CSV.
    pub fn open_with(path: &Path, sheet: &'static Sheet, limits: ReaderLimits) -> Result<Reader, LedgerError> {
        let mut file = File::open(path)?;
        let total = file.metadata()?.len();
        let head = read_head(&mut file, crate::csv_source::SNIFF_BYTES)?;
        if head.starts_with(XLS_MAGIC) {
            return Err(LedgerError::LegacyXls);
        }
        if head.starts_with(XLSX_MAGIC) {
            let mut file = File::open(path)?;
            let sha = sha256_of(&mut file)?;
            let source = XlsxSource::new(BufReader::new(File::open(path)?), sheet, limits)?;
            return Reader::start(sheet, limits, Source::Xlsx(source), Format::Xlsx, Some(total), Some(sha));
        }
        let source = CsvSource::new(head, Box::new(file), limits.max_record_bytes)?;
        Reader::start(sheet, limits, Source::Csv(Box::new(source)), Format::Csv, Some(total), None)
    }

    /// Reads an upload held in memory; `file_name_hint` (the uploaded name) only sharpens the
    /// refusal of a file named `.xlsx` that is not a workbook.
    pub fn from_bytes(bytes: Vec<u8>, file_name_hint: &str, sheet: &'static Sheet) -> Result<Reader, LedgerError> {
        Reader::from_bytes_with(bytes, file_name_hint, sheet, ReaderLimits::default())
    }

    /// [`Reader::from_bytes`] with explicit limits.
    pub fn from_bytes_with(
        bytes: Vec<u8>,
        file_name_hint: &str,
        sheet: &'static Sheet,
        limits: ReaderLimits,
    ) -> Result<Reader, LedgerError> {
        let total = bytes.len() as u64;
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        if bytes.starts_with(XLS_MAGIC) {
            return Err(LedgerError::LegacyXls);
        }
        if bytes.starts_with(XLSX_MAGIC) {
            let source = XlsxSource::new(Cursor::new(bytes), sheet, limits)?;
            return Reader::start(sheet, limits, Source::Xlsx(source), Format::Xlsx, Some(total), Some(sha));
        }
        if file_name_hint.to_ascii_lowercase().ends_with(".xlsx") {
            return Err(LedgerError::Xlsx("the file is named .xlsx but is not an xlsx workbook"));
        }
        let head = bytes[..bytes.len().min(crate::csv_source::SNIFF_BYTES)].to_vec();
        let mut rest = Cursor::new(bytes);
        rest.set_position(head.len() as u64);
        let source = CsvSource::new(head, Box::new(rest), limits.max_record_bytes)?;
        Reader::start(sheet, limits, Source::Csv(Box::new(source)), Format::Csv, Some(total), Some(sha))
    }

    /// Reads any byte stream: a CSV streams from it (hashed as it goes); an XLSX, which needs
    /// random access, is first read into memory up to [`ReaderLimits::max_file_bytes`].
    pub fn from_read(
        mut reader: impl Read + Send + 'static,
        total_bytes: Option<u64>,
        sheet: &'static Sheet,
        limits: ReaderLimits,
    ) -> Result<Reader, LedgerError> {
        let head = read_head(&mut reader, crate::csv_source::SNIFF_BYTES)?;
        if head.starts_with(XLS_MAGIC) {
            return Err(LedgerError::LegacyXls);
        }
        if head.starts_with(XLSX_MAGIC) {
            let mut bytes = head;
            reader.take(limits.max_file_bytes + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > limits.max_file_bytes {
                return Err(LedgerError::Limit { what: "bytes", limit: limits.max_file_bytes });
            }
            return Reader::from_bytes_with(bytes, "", sheet, limits);
        }
        let source = CsvSource::new(head, Box::new(reader), limits.max_record_bytes)?;
        Reader::start(sheet, limits, Source::Csv(Box::new(source)), Format::Csv, total_bytes, None)
    }

    fn start(
        sheet: &'static Sheet,
        limits: ReaderLimits,
        mut source: Source,
        format: Format,
        total_bytes: Option<u64>,
        sha256: Option<[u8; 32]>,
    ) -> Result<Reader, LedgerError> {
        let (header_row, cells) = loop {
            let Some((n, cells)) = source.next_record(&limits)? else {
                return Err(LedgerError::NoHeader);
            };
            let texts: Vec<String> = cells.iter().map(header_text).collect();
            let first = texts.iter().map(|t| trim_cell(t)).find(|t| !t.is_empty());
            match first {
                None => continue,
                Some(t) if t.starts_with('#') => continue,
                Some(_) => break (n, texts),
            }
        };
        let header = match_header(header_row, &cells, sheet);
        Ok(Reader {
            sheet,
            limits,
            source,
            format,
            header_row,
            columns: header.by_file_column,
            header_problems: header.problems,
            header_reported: false,
            after_header: true,
            rows_read: 0,
            total_bytes,
            sha256,
            done: false,
        })
    }

    /// The problems of the header row (unknown, duplicate, missing columns); also yielded first
    /// by the iterator. A host should import nothing from a file with header problems.
    pub fn header_problems(&self) -> &[Problem] {
        &self.header_problems
    }

    /// 1-based row number of the header.
    pub fn header_row(&self) -> u64 {
        self.header_row
    }

    /// The kind of file.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The text encoding of a CSV (`UTF-8`, `GB18030`, `UTF-16LE`…).
    pub fn encoding(&self) -> Option<&'static str> {
        match &self.source {
            Source::Csv(s) => Some(s.encoding.name()),
            Source::Xlsx(_) => None,
        }
    }

    /// SHA-256 of the file's bytes: known at open for an XLSX and for bytes in memory; for a
    /// CSV streamed from a file or reader, once the iterator has reached the end.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.sha256.or_else(|| match &self.source {
            Source::Csv(s) => s.tally.lock().ok().and_then(|t| t.sha256),
            Source::Xlsx(_) => None,
        })
    }

    /// [`Reader::sha256`] as lower-case hex.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256().map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// How far the reader is.
    pub fn progress(&self) -> Progress {
        let (bytes_read, rows_hint) = match &self.source {
            Source::Csv(s) => (s.tally.lock().map(|t| t.bytes).unwrap_or(0), None),
            Source::Xlsx(s) => (self.total_bytes.unwrap_or(0), Some(s.rows_hint)),
        };
        Progress { rows_read: self.rows_read, bytes_read, total_bytes: self.total_bytes, rows_hint }
    }

    fn next_outcome(&mut self) -> Result<Option<RowOutcome>, LedgerError> {
        loop {
            let Some((number, mut cells)) = self.source.next_record(&self.limits)? else {
                return Ok(None);
            };
            let first = cells.iter().map(header_text).find(|t| !trim_cell(t).is_empty());
            let Some(first) = first else { continue };
            if std::mem::take(&mut self.after_header) && trim_cell(&first).starts_with(NOTES_MARKER) {
                continue;
            }
            self.rows_read += 1;
            if self.rows_read > self.limits.max_rows {
                return Err(LedgerError::Limit { what: "rows", limit: self.limits.max_rows });
            }
            let mut values = vec![None; self.sheet.columns.len()];
            let mut problems = Vec::new();
            for (i, mapped) in self.columns.iter().enumerate() {
                let Some((ci, header)) = mapped else { continue };
                let raw = cells.get_mut(i).map_or(RawCell::Empty, |c| std::mem::replace(c, RawCell::Empty));
                let at = CellAt { row: number, header, column: &self.sheet.columns[*ci] };
                match parse(&at, raw, self.limits.max_cell_chars) {
                    Ok(v) => values[*ci] = v,
                    Err(p) => problems.push(p),
                }
            }
            return Ok(Some(if problems.is_empty() {
                RowOutcome::Row(Row { number, values, sheet: self.sheet })
            } else {
                RowOutcome::Problems { row: number, problems }
            }));
        }
    }
}

/// A cell as header text (or as the text a notes marker is looked for in).
fn header_text(c: &RawCell) -> String {
    match c {
        RawCell::Text(s) => s.clone(),
        RawCell::Number(x) => number_text(*x),
        RawCell::Bool(b) => (if *b { "TRUE" } else { "FALSE" }).to_owned(),
        RawCell::DateTime(y, m, d) => format!("{y:04}-{m:02}-{d:02}"),
        RawCell::Empty => String::new(),
        RawCell::Error => "#ERROR".to_owned(),
    }
}

impl Iterator for Reader {
    type Item = Result<RowOutcome, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.header_reported {
            self.header_reported = true;
            if !self.header_problems.is_empty() {
                return Some(Ok(RowOutcome::Problems { row: self.header_row, problems: self.header_problems.clone() }));
            }
        }
        match self.next_outcome() {
            Ok(Some(o)) => Some(Ok(o)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
