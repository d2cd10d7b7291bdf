//! XLSX sources: a worksheet streamed cell by cell with calamine's cell reader, on a helper
//! thread that owns the workbook (the cell reader borrows it) and hands rows over a bounded
//! channel, so at most a few dozen rows wait in memory.
//!
//! What is not streamed: calamine loads the shared-strings table, styles and workbook parts
//! whole at open. Before it does, [`guard_zip`] checks every part's declared size and really
//! decompresses (into nothing) each part that is loaded whole, refusing past the limit.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{DataRef, Reader as _, Xlsx};

use crate::cell::{RawCell, half_width};
use crate::error::LedgerError;
use crate::reader::ReaderLimits;
use crate::sheet::Sheet;

/// How many rows may wait between the helper thread and the reader.
const ROWS_IN_FLIGHT: usize = 64;

enum Msg {
    Start { rows_hint: u64 },
    Row(u64, Vec<RawCell>),
    End,
    Err(LedgerError),
}

/// A worksheet being read row by row.
#[derive(Debug)]
pub(crate) struct XlsxSource {
    rx: Receiver<Msg>,
    ended: bool,
    /// Rows the worksheet declares (its dimension), for a progress bar.
    pub(crate) rows_hint: u64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Start { .. } => "Start",
            Msg::Row(..) => "Row",
            Msg::End => "End",
            Msg::Err(_) => "Err",
        })
    }
}

impl XlsxSource {
    /// Opens the workbook in `rs` and starts streaming its worksheet for `sheet` (the one named
    /// like the sheet's Chinese or English name, else the first).
    pub(crate) fn new<RS>(rs: RS, sheet: &'static Sheet, limits: ReaderLimits) -> Result<XlsxSource, LedgerError>
    where
        RS: Read + Seek + Send + 'static,
    {
        let (tx, rx) = sync_channel(ROWS_IN_FLIGHT);
        std::thread::Builder::new().name("ledger-xlsx".into()).spawn(move || {
            if let Err(e) = run(rs, sheet, &limits, &tx) {
                let _ = tx.send(Msg::Err(e));
            }
        })?;
        match rx.recv() {
            Ok(Msg::Start { rows_hint }) => Ok(XlsxSource { rx, ended: false, rows_hint }),
            Ok(Msg::Err(e)) => Err(e),
            _ => Err(LedgerError::Xlsx("the workbook reader stopped unexpectedly")),
        }
    }

    /// The next non-empty row: its 1-based row number and its cells by column.
    pub(crate) fn next_record(&mut self) -> Result<Option<(u64, Vec<RawCell>)>, LedgerError> {
        if self.ended {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Msg::Row(n, cells)) => Ok(Some((n, cells))),
            Ok(Msg::End) => {
                self.ended = true;
                Ok(None)
            }
            Ok(Msg::Err(e)) => {
                self.ended = true;
                Err(e)
            }
            Ok(Msg::Start { .. }) | Err(_) => {
                self.ended = true;
                Err(LedgerError::Xlsx("the workbook reader stopped unexpectedly"))
            }
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    let r = |s: &str| half_width(s).chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    r(a) == r(b)
}

fn run<RS: Read + Seek>(
    mut rs: RS,
    sheet: &'static Sheet,
    limits: &ReaderLimits,
    tx: &SyncSender<Msg>,
) -> Result<(), LedgerError> {
    guard_zip(&mut rs, limits)?;
    rs.seek(SeekFrom::Start(0))?;
    let mut workbook: Xlsx<RS> =
        Xlsx::new(rs).map_err(|_| LedgerError::Xlsx("not a valid xlsx workbook (or a protected one)"))?;
    let names = workbook.sheet_names();
    let name = names
        .iter()
        .find(|n| same_name(n, sheet.name_zh) || same_name(n, sheet.name_en))
        .or(names.first())
        .cloned()
        .ok_or(LedgerError::Xlsx("the workbook has no worksheet"))?;
    let mut cells =
        workbook.worksheet_cells_reader(&name).map_err(|_| LedgerError::Xlsx("the worksheet could not be read"))?;
    let d = cells.dimensions();
    let rows_hint = u64::from(d.end.0.saturating_sub(d.start.0)) + 1;
    if tx.send(Msg::Start { rows_hint }).is_err() {
        return Ok(());
    }
    let mut current: Option<u32> = None;
    let mut row: Vec<RawCell> = Vec::new();
    while let Some(cell) = cells.next_cell().map_err(|_| LedgerError::Xlsx("a worksheet cell could not be read"))? {
        let (r, c) = cell.get_position();
        let value = convert(cell.get_value());
        if value == RawCell::Empty {
            continue;
        }
        if c as usize >= limits.max_columns {
            return Err(LedgerError::Limit { what: "columns", limit: limits.max_columns as u64 });
        }
        if current != Some(r) {
            if let Some(prev) = current
                && tx.send(Msg::Row(u64::from(prev) + 1, std::mem::take(&mut row))).is_err()
            {
                return Ok(());
            }
            current = Some(r);
        }
        if row.len() <= c as usize {
            row.resize(c as usize + 1, RawCell::Empty);
        }
        row[c as usize] = value;
    }
    if let Some(prev) = current
        && tx.send(Msg::Row(u64::from(prev) + 1, row)).is_err()
    {
        return Ok(());
    }
    let _ = tx.send(Msg::End);
    Ok(())
}

fn convert(v: &DataRef<'_>) -> RawCell {
    match v {
        DataRef::Int(i) => RawCell::Number(*i as f64),
        DataRef::Float(x) => RawCell::Number(*x),
        DataRef::String(s) => RawCell::Text(s.clone()),
        DataRef::SharedString(s) => RawCell::Text((*s).to_owned()),
        DataRef::Bool(b) => RawCell::Bool(*b),
        DataRef::DateTime(dt) if dt.is_datetime() => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            RawCell::DateTime(i32::from(y), u32::from(m), u32::from(d))
        }
        DataRef::DateTime(dt) => RawCell::Number(dt.as_f64()),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => RawCell::Text(s.clone()),
        DataRef::Error(_) => RawCell::Error,
        DataRef::Empty => RawCell::Empty,
    }
}

/// The zip-bomb guard: refuses a workbook with too many parts, a part declaring more than the
/// limit, or a part calamine loads whole (anything but the worksheets, which stream) that
/// really decompresses to more than the limit.
fn guard_zip<RS: Read + Seek>(rs: &mut RS, limits: &ReaderLimits) -> Result<(), LedgerError> {
    let bad = |_| LedgerError::Xlsx("not a valid xlsx (zip) file");
    let mut zip = zip::ZipArchive::new(&mut *rs).map_err(bad)?;
    if zip.len() > 10_000 {
        return Err(LedgerError::Limit { what: "parts in the workbook", limit: 10_000 });
    }
    let limit = limits.max_decompressed_bytes;
    let over = LedgerError::Limit { what: "decompressed bytes", limit };
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(bad)?;
        total = total.saturating_add(part.size());
        if part.size() > limit || total > limit {
            return Err(over);
        }
        if !part.name().map_err(bad)?.starts_with("xl/worksheets/") {
            let n = io::copy(&mut (&mut part).take(limit + 1), &mut io::sink())
                .map_err(|_| LedgerError::Xlsx("a part of the workbook could not be decompressed"))?;
            if n > limit {
                return Err(over);
            }
        }
    }
    Ok(())
}
