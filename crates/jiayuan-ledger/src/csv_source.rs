//! CSV sources: encoding detection and streaming decoding (UTF-8 with or without BOM, UTF-16
//! with BOM, else GB 18030), `#` comment lines before the header, delimiter detection, the
//! record-size guard, and the CSV-injection mark our exporter adds.
//!
//! Nothing here holds more than a few buffers of the file: the raw bytes go through a
//! [`BufRead`]-sized window, the decoder's buffers and one record.

use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::sync::{Arc, Mutex};

use encoding_rs::{CoderResult, Encoding, GB18030, UTF_8};
use sha2::{Digest, Sha256};

use crate::cell::RawCell;
use crate::error::LedgerError;

/// How much of the file decides its encoding.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// What has been read of the raw file: bytes and their running hash.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) bytes: u64,
    pub(crate) hasher: Sha256,
    pub(crate) sha256: Option<[u8; 32]>,
}

/// The raw file, counted and hashed as it is read.
struct Hashing<R> {
    inner: R,
    tally: Arc<Mutex<Tally>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut t) = self.tally.lock() {
            t.bytes += n as u64;
            t.hasher.update(&buf[..n]);
            if n == 0 && !buf.is_empty() && t.sha256.is_none() {
                let h = std::mem::take(&mut t.hasher);
                t.sha256 = Some(h.finalize().into());
            }
        }
        Ok(n)
    }
}

/// Bytes in some encoding to UTF-8, streaming; malformed input becomes U+FFFD (reported per
/// cell as `bad_encoding`). The decoder removes a byte-order mark.
struct Decoding<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    eof: bool,
    done: bool,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
}

impl<R: Read> Decoding<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Decoding<R> {
        Decoding {
            inner,
            decoder: encoding.new_decoder(),
            input: vec![0; 16 * 1024],
            in_start: 0,
            in_end: 0,
            eof: false,
            done: false,
            output: vec![0; 64 * 1024],
            out_start: 0,
            out_end: 0,
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                let n = self.inner.read(&mut self.input)?;
                self.in_start = 0;
                self.in_end = n;
                self.eof = n == 0;
            }
            let (result, read, written, _) =
                self.decoder.decode_to_utf8(&self.input[self.in_start..self.in_end], &mut self.output, self.eof);
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            if self.eof && result == CoderResult::InputEmpty && self.in_start == self.in_end {
                self.done = true;
            }
        }
    }
}

/// The record-size guard and line-end normaliser between the decoder and the CSV parser.
///
/// It follows the CSV quoting (a `"` opens a quoted field only at a field's start) to count the
/// bytes of the current record, failing past the limit so one hostile record cannot fill
/// memory; and it turns a carriage return outside quotes into a space (trimmed away with the
/// cell), so the parser sees `\n` line ends only and its line numbers are the file's lines.
/// A lone `\r` as a line end (classic Mac OS) is therefore not a line end.
struct Guard<R> {
    inner: R,
    delimiter: u8,
    state: Quoting,
    in_record: u64,
    limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Unquoted { at_start: bool },
    Quoted,
    QuoteInQuoted,
}

/// The marker error of [`Guard`].
#[derive(Debug)]
struct RecordTooLong(u64);

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too long")
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &mut buf[..n] {
            self.state = match (self.state, *b) {
                (Quoting::Unquoted { at_start: true }, b'"') => Quoting::Quoted,
                (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
                (Quoting::Quoted, _) => Quoting::Quoted,
                (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
                (_, b'\n') => {
                    self.in_record = 0;
                    Quoting::Unquoted { at_start: true }
                }
                (_, b'\r') => {
                    *b = b' ';
                    Quoting::Unquoted { at_start: false }
                }
                (_, c) if c == self.delimiter => Quoting::Unquoted { at_start: true },
                _ => Quoting::Unquoted { at_start: false },
            };
            self.in_record += 1;
            if self.in_record > self.limit {
                return Err(io::Error::other(RecordTooLong(self.limit)));
            }
        }
        Ok(n)
    }
}

/// The encoding of a file from its first bytes: a BOM, else UTF-8 if the bytes are valid UTF-8
/// (a character cut at the end of the window is fine), else GB 18030.
pub(crate) fn sniff_encoding(head: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => GB18030,
    }
}

/// The delimiter of a header line: comma, tab or semicolon, whichever occurs most (comma on a tie).
fn sniff_delimiter(line: &str) -> u8 {
    let count = |c: char| line.chars().filter(|&x| x == c).count();
    let (comma, tab, semi) = (count(','), count('\t'), count(';'));
    if tab > comma && tab >= semi {
        b'\t'
    } else if semi > comma && semi > tab {
        b';'
    } else {
        b','
    }
}

/// Undoes the exporter's CSV-injection mark: a `'` before `= + - @ \t \r` or before another `'`.
pub(crate) fn unescape(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => s,
    }
}

/// Marks a cell that a spreadsheet would run as a formula (and one starting with `'`, so the
/// mark can be undone exactly) with a leading `'`.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) { format!("'{s}").into() } else { s.into() }
}

type Stream = Guard<io::Chain<Cursor<Vec<u8>>, BufReader<Decoding<Hashing<Box<dyn Read + Send>>>>>>;

/// A CSV file being read record by record.
pub(crate) struct CsvSource {
    records: csv::Reader<Stream>,
    record: csv::StringRecord,
    /// Lines before the header (comments and blank lines), to turn record lines into file lines.
    skipped_lines: u64,
    pub(crate) tally: Arc<Mutex<Tally>>,
    pub(crate) encoding: &'static Encoding,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource").field("encoding", &self.encoding.name()).finish_non_exhaustive()
    }
}

impl CsvSource {
    /// Opens a CSV stream whose first bytes `head` have already been read from `rest`.
    pub(crate) fn new(
        head: Vec<u8>,
        rest: Box<dyn Read + Send>,
        max_record_bytes: u64,
    ) -> Result<CsvSource, LedgerError> {
        let encoding = sniff_encoding(&head);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let raw =
            Hashing { inner: Box::new(Cursor::new(head).chain(rest)) as Box<dyn Read + Send>, tally: tally.clone() };
        let mut text = BufReader::with_capacity(64 * 1024, Decoding::new(raw, encoding));
        // Comment and blank lines before the header.
        let mut skipped_lines = 0;
        let header_line = loop {
            let mut line = Vec::new();
            let n = (&mut text).take(max_record_bytes + 1).read_until(b'\n', &mut line).map_err(io_error)?;
            if n == 0 {
                return Err(LedgerError::NoHeader);
            }
            if n as u64 > max_record_bytes {
                return Err(LedgerError::Limit { what: "bytes in one record", limit: max_record_bytes });
            }
            let s = String::from_utf8_lossy(&line);
            let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
            if t.is_empty() || t.starts_with('#') {
                skipped_lines += 1;
                continue;
            }
            break line;
        };
        let delimiter = sniff_delimiter(&String::from_utf8_lossy(&header_line));
        let stream = Guard {
            inner: Cursor::new(header_line).chain(text),
            delimiter,
            state: Quoting::Unquoted { at_start: true },
            in_record: 0,
            limit: max_record_bytes,
        };
        let records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(64 * 1024)
            .from_reader(stream);
        Ok(CsvSource { records, record: csv::StringRecord::new(), skipped_lines, tally, encoding })
    }

    /// The next record: its file line number and its cells.
    pub(crate) fn next_record(&mut self, max_columns: usize) -> Result<Option<(u64, Vec<RawCell>)>, LedgerError> {
        match self.records.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line()) + self.skipped_lines;
                let mut cells = Vec::with_capacity(self.record.len());
                for (i, field) in self.record.iter().enumerate() {
                    if i >= max_columns {
                        if field.trim().is_empty() {
                            continue;
                        }
                        return Err(LedgerError::Limit { what: "columns", limit: max_columns as u64 });
                    }
                    cells.push(if field.is_empty() {
                        RawCell::Empty
                    } else {
                        RawCell::Text(unescape(field).to_owned())
                    });
                }
                Ok(Some((line, cells)))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line()) + self.skipped_lines;
                match e.into_kind() {
                    csv::ErrorKind::Io(io) => Err(io_error(io)),
                    _ => Err(LedgerError::Csv { line }),
                }
            }
        }
    }
}

/// An io error, or the guard's limit.
fn io_error(e: io::Error) -> LedgerError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<RecordTooLong>()) {
        Some(RecordTooLong(limit)) => LedgerError::Limit { what: "bytes in one record", limit: *limit },
        None => LedgerError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_sniffed() {
        assert_eq!(sniff_encoding(b"\xEF\xBB\xBFname"), UTF_8);
        assert_eq!(sniff_encoding(b"\xFF\xFEn\0"), encoding_rs::UTF_16LE);
        assert_eq!(sniff_encoding("姓名".as_bytes()), UTF_8);
        // A character cut at the end of the window is still UTF-8.
        assert_eq!(sniff_encoding(&"姓名".as_bytes()[..5]), UTF_8);
        let (gb, _, _) = GB18030.encode("姓名,身份证号码");
        assert_eq!(sniff_encoding(&gb), GB18030);
    }

    #[test]
    fn delimiters_and_injection_marks() {
        assert_eq!(sniff_delimiter("姓名\t身份证号码\t电话"), b'\t');
        assert_eq!(sniff_delimiter("姓名;身份证号码"), b';');
        assert_eq!(sniff_delimiter("姓名,身份证号码"), b',');
        for s in ["=1+1", "+8613800000000", "-3", "@x", "\tx", "'quoted", "'=x", "plain", ""] {
            assert_eq!(unescape(&escape(s)), s);
        }
        assert_eq!(escape("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(unescape("'abc"), "'abc");
    }

    #[test]
    fn decoding_streams_across_small_reads() {
        struct OneByte(Vec<u8>, usize);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 >= self.0.len() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[self.1];
                self.1 += 1;
                Ok(1)
            }
        }
        let (gb, _, _) = GB18030.encode("罗湖区,翠竹街道\r\n");
        let mut out = String::new();
        Decoding::new(OneByte(gb.into_owned(), 0), GB18030).read_to_string(&mut out).expect("decodes");
        assert_eq!(out, "罗湖区,翠竹街道\r\n");
        let mut out = String::new();
        Decoding::new(OneByte(b"a\xFFb".to_vec(), 0), UTF_8).read_to_string(&mut out).expect("decodes");
        assert_eq!(out, "a\u{FFFD}b");
    }
}
