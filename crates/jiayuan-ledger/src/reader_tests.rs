//! Tests of the reader, the exports and the template: round trips, encodings, header spellings,
//! Excel's damage to codes and dates, problems that never show a personal value, streaming.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiayuan_domain::{Date, Sensitivity};
use proptest::prelude::*;

use crate::{
    CellKind, Choice, Column, CsvExport, Format, LedgerError, Problem, Provenance, Reader, ReaderLimits, RowOutcome,
    Sheet, Value, XlsxExport, template,
};

const TENURE: &[Choice] =
    &[Choice { value: "rented", zh: "出租", en: "Rented" }, Choice { value: "own", zh: "自住", en: "Owner-occupied" }];

const fn col(
    key: &'static str,
    zh: &'static str,
    en: &'static str,
    required: bool,
    kind: CellKind,
    sensitivity: Sensitivity,
) -> Column {
    Column { key, zh, en, required, kind, sensitivity, note_zh: "说明", note_en: "note" }
}

static RESIDENTS: Sheet = Sheet {
    name_zh: "居民",
    name_en: "Residents",
    columns: &[
        col("name", "姓名", "Name", true, CellKind::Text { max_chars: 50 }, Sensitivity::Personal),
        col(
            "id_number",
            "身份证号码",
            "ID number",
            true,
            CellKind::Code { min_len: 18, max_len: 18 },
            Sensitivity::Sensitive,
        ),
        col("phone", "联系电话", "Phone", false, CellKind::Text { max_chars: 20 }, Sensitivity::Personal),
        col("born", "出生日期", "Date of birth", false, CellKind::Date, Sensitivity::Personal),
        col("tenure", "居住类型", "Tenure", false, CellKind::Choice(TENURE), Sensitivity::Internal),
        col(
            "household",
            "户内人数",
            "Household size",
            false,
            CellKind::Integer { min: 1, max: 30 },
            Sensitivity::Internal,
        ),
        col("area", "面积", "Area", false, CellKind::Decimal { min: 0.0, max: 10_000.0 }, Sensitivity::Internal),
        col("elderly", "独居老人", "Lives alone", false, CellKind::Bool, Sensitivity::Internal),
        col("remark", "备注", "Remark", false, CellKind::Text { max_chars: 200 }, Sensitivity::Internal),
    ],
};

const ID: &str = "110101199003077777";

fn provenance() -> Provenance {
    Provenance {
        exporter: "luohu-admin".into(),
        at: "2026-03-02T09:30:00+08:00".into(),
        scope: "翠竹街道".into(),
        purpose: "年度核查".into(),
    }
}

fn sample_rows() -> Vec<Vec<Option<Value>>> {
    vec![
        vec![
            Some("张三".into()),
            Some(ID.into()),
            Some("+8613800138000".into()),
            Some(Value::Date(Date::from_ymd(1990, 3, 7).expect("valid"))),
            Some(Value::Choice("rented")),
            Some(Value::Integer(3)),
            Some(Value::Decimal(88.5)),
            Some(Value::Bool(true)),
            Some("=HYPERLINK(\"x\")".into()),
        ],
        vec![
            Some("李四".into()),
            Some("44030319850101001X".into()),
            None,
            None,
            Some(Value::Choice("own")),
            None,
            None,
            Some(Value::Bool(false)),
            Some("-3 @home, \"quoted\"\nsecond line".into()),
        ],
    ]
}

/// All outcomes of a reader, failing the test on an error.
fn outcomes(reader: Reader) -> Vec<RowOutcome> {
    reader.map(|o| o.expect("no reader error")).collect()
}

fn rows(reader: Reader) -> Vec<Vec<Option<Value>>> {
    outcomes(reader)
        .into_iter()
        .map(|o| match o {
            RowOutcome::Row(r) => r.values,
            RowOutcome::Problems { row, problems } => panic!("row {row}: {problems:?}"),
        })
        .collect()
}

fn problems(reader: Reader) -> Vec<Problem> {
    outcomes(reader)
        .into_iter()
        .flat_map(|o| match o {
            RowOutcome::Row(_) => Vec::new(),
            RowOutcome::Problems { problems, .. } => problems,
        })
        .collect()
}

fn csv_reader(text: &str) -> Reader {
    Reader::from_bytes(text.as_bytes().to_vec(), "upload.csv", &RESIDENTS).expect("opens")
}

#[test]
fn xlsx_export_round_trips_exactly() {
    let mut export = XlsxExport::new(&RESIDENTS, provenance()).expect("starts").unmasked();
    for r in sample_rows() {
        export.push_row(&r).expect("row");
    }
    let bytes = export.finish().expect("finishes");
    let reader = Reader::from_bytes(bytes, "export.xlsx", &RESIDENTS).expect("opens");
    assert_eq!(reader.format(), Format::Xlsx);
    assert!(reader.header_problems().is_empty());
    assert!(reader.sha256_hex().is_some_and(|h| h.len() == 64));
    assert_eq!(rows(reader), sample_rows());
}

#[test]
fn csv_export_round_trips_exactly_with_injection_marks() {
    let mut export = CsvExport::new(Vec::new(), &RESIDENTS, &provenance()).expect("starts").unmasked();
    for r in sample_rows() {
        export.push_row(&r).expect("row");
    }
    let bytes = export.finish().expect("finishes");
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    assert!(
        text.starts_with("\u{FEFF}# 导出 Exported: luohu-admin 2026-03-02T09:30:00+08:00 翠竹街道 年度核查\r\n姓名,")
    );
    assert!(text.contains(",'+8613800138000,") && text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{text}");
    let reader = Reader::from_bytes(bytes, "export.csv", &RESIDENTS).expect("opens");
    assert_eq!(reader.encoding(), Some("UTF-8"));
    let outcomes = outcomes(reader);
    let RowOutcome::Row(first) = &outcomes[0] else { panic!("{outcomes:?}") };
    // Line 1 is the provenance comment, line 2 the header.
    assert_eq!(first.number, 3);
    assert_eq!(first.text("phone"), Some("+8613800138000"));
    assert_eq!(first.choice("tenure"), Some("rented"));
    let values: Vec<_> = outcomes
        .into_iter()
        .map(|o| match o {
            RowOutcome::Row(r) => r.values,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, sample_rows());
}

#[test]
fn exports_mask_personal_columns_by_default() {
    let mut export = CsvExport::new(Vec::new(), &RESIDENTS, &provenance()).expect("starts");
    export.push_row(&sample_rows()[0]).expect("row");
    let text = String::from_utf8(export.finish().expect("finishes")).expect("utf-8");
    assert!(!text.contains(ID) && text.contains("**************7777") && text.contains("张*"), "{text}");
    let mut export = XlsxExport::new(&RESIDENTS, provenance()).expect("starts");
    export.push_row(&sample_rows()[0]).expect("row");
    let reader = Reader::from_bytes(export.finish().expect("finishes"), "x.xlsx", &RESIDENTS).expect("opens");
    let p = problems(reader);
    assert_eq!(p.iter().find(|p| p.key == Some("id_number")).map(|p| p.rule), Some("code_chars"));
}

#[test]
fn gb18030_csv_with_chinese_headers() {
    let (bytes, _, _) =
        encoding_rs::GB18030.encode("姓名,身份证号码,居住类型\r\n王五,110101199003077777,自住\r\n\r\n,,\r\n");
    let reader = Reader::from_bytes(bytes.into_owned(), "gb.csv", &RESIDENTS).expect("opens");
    assert_eq!(reader.encoding(), Some("gb18030"));
    let r = rows(reader);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][0], Some(Value::Text("王五".into())));
    assert_eq!(r[0][4], Some(Value::Choice("own")));
}

#[test]
fn utf16_with_bom_tabs_english_headers_mixed_order() {
    let text = "Tenure\tID number\t*Name\r\nRented\t110101199003077777\tJohn\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let reader = Reader::from_bytes(bytes, "unicode.txt", &RESIDENTS).expect("opens");
    let r = rows(reader);
    assert_eq!(r[0][0], Some(Value::Text("John".into())));
    assert_eq!(r[0][1], Some(Value::Text(ID.into())));
    assert_eq!(r[0][4], Some(Value::Choice("rented")));
}

#[test]
fn utf8_bom_semicolons_trailing_column_and_comments() {
    let text =
        "\u{FEFF}# 导出 Exported: x\r\n\r\n姓名 Name;身份证号码（ID number）;\r\n赵六;110101199003077777;\r\n;;\r\n";
    let reader = csv_reader(text);
    assert_eq!(reader.header_row(), 3);
    let o = outcomes(reader);
    assert_eq!(o.len(), 1);
    let RowOutcome::Row(r) = &o[0] else { panic!("{o:?}") };
    assert_eq!((r.number, r.text("name"), r.text("id_number")), (4, Some("赵六"), Some(ID)));
}

#[test]
fn scientific_codes_are_named_by_row_and_column() {
    let reader = csv_reader("姓名,身份证号码\n张三,4.40303E+17\n李四,110101199003077777\n");
    let p = problems(reader);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].row, p[0].column.as_deref(), p[0].rule), (2, Some("身份证号码"), "excel_scientific"));
    assert!(p[0].reason_zh.contains("科学计数法") && p[0].reason_en.contains("scientific notation"));
}

#[test]
fn date_serials_and_formats_in_csv() {
    let reader =
        csv_reader("姓名,身份证号码,出生日期\n甲,110101199003077777,32939\n乙,110101199003077777,07/03/1990\n");
    let p = problems(reader);
    assert_eq!(
        p.iter().map(|p| (p.row, p.rule)).collect::<Vec<_>>(),
        vec![(2, "excel_date_serial"), (3, "date_format")]
    );
    assert!(p[1].reason_en.contains("YYYY-MM-DD"));
}

#[test]
fn blank_required_unknown_choice_and_missing_column() {
    let p = problems(csv_reader("姓名,身份证号码,居住类型\n,110101199003077777,借住\n"));
    assert_eq!(
        p.iter().map(|p| (p.key, p.rule)).collect::<Vec<_>>(),
        vec![(Some("name"), "required"), (Some("tenure"), "not_a_choice")]
    );
    assert!(p[1].reason_zh.contains("出租、自住"));
    let reader = csv_reader("姓名,备注,电话号码\n甲,,1\n");
    let header: Vec<_> = reader.header_problems().iter().map(|p| (p.row, p.rule)).collect();
    assert_eq!(header, vec![(1, "unknown_header"), (1, "missing_column")]);
    // The header problems come first; the rows are still checked for what can be matched.
    let o = outcomes(reader);
    assert!(matches!(&o[0], RowOutcome::Problems { row: 1, problems } if problems.len() == 2), "{o:?}");
    assert!(matches!(&o[1], RowOutcome::Row(r) if r.text("name") == Some("甲")));
}

/// A test workbook written cell by cell.
fn workbook(write: impl FnOnce(&mut rust_xlsxwriter::Worksheet) -> Result<(), rust_xlsxwriter::XlsxError>) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    write(ws).expect("writes");
    wb.save_to_buffer().expect("saves")
}

#[test]
fn xlsx_numbers_in_code_and_date_columns() {
    let bytes = workbook(|ws| {
        ws.write_string(0, 0, "姓名")?;
        ws.write_string(0, 1, "身份证号码")?;
        ws.write_string(0, 2, "出生日期")?;
        ws.write_string(1, 0, "甲")?;
        ws.write_number(1, 1, 110_101_199_003_077_777.0)?;
        ws.write_string(2, 0, "乙")?;
        ws.write_string(2, 1, ID)?;
        ws.write_number(2, 2, 32939.0)?;
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        ws.write_string(3, 0, "丙")?;
        ws.write_string(3, 1, ID)?;
        ws.write_datetime_with_format(3, 2, rust_xlsxwriter::ExcelDateTime::from_ymd(1990, 3, 7)?, &date)?;
        Ok(())
    });
    let o = outcomes(Reader::from_bytes(bytes, "x.xlsx", &RESIDENTS).expect("opens"));
    let rules: Vec<_> = o
        .iter()
        .map(|o| match o {
            RowOutcome::Problems { row, problems } => (*row, problems[0].rule),
            RowOutcome::Row(r) => (r.number, "ok"),
        })
        .collect();
    assert_eq!(rules, vec![(2, "excel_scientific"), (3, "excel_date_serial"), (4, "ok")]);
    let RowOutcome::Row(r) = &o[2] else { panic!() };
    assert_eq!(r.date("born"), Date::from_ymd(1990, 3, 7));
}

#[test]
fn template_reads_back_clean() {
    let bytes = template(&RESIDENTS).expect("template");
    let reader = Reader::from_bytes(bytes, "模板.xlsx", &RESIDENTS).expect("opens");
    assert!(reader.header_problems().is_empty(), "{:?}", reader.header_problems());
    assert!(outcomes(reader).is_empty());
}

#[test]
fn legacy_xls_is_refused_with_a_hint() {
    let e = Reader::from_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest".to_vec(), "old.xls", &RESIDENTS)
        .expect_err("refused");
    assert!(matches!(e, LedgerError::LegacyXls) && e.to_string().contains(".xlsx"));
}

#[test]
fn problems_never_show_a_personal_value() {
    let long = format!("{ID}1");
    let name = format!("{ID}{}", "名".repeat(40));
    let csv = format!("姓名,身份证号码,出生日期\n{name},{long},{ID}\n");
    let found = problems(csv_reader(&csv));
    assert_eq!(found.iter().map(|p| p.rule).collect::<Vec<_>>(), vec!["too_long", "length", "date_format"]);
    let bytes = workbook(|ws| {
        ws.write_string(0, 0, "身份证号码")?;
        ws.write_string(0, 1, "姓名")?;
        ws.write_string(1, 0, format!("{ID}-"))?;
        Ok(())
    });
    let mut all = found;
    all.extend(problems(Reader::from_bytes(bytes, "x.xlsx", &RESIDENTS).expect("opens")));
    assert_eq!(all.len(), 5, "{all:?}");
    for p in &all {
        let shown = format!("{p:?} {p} {} {}", p.reason_zh, p.reason_en);
        assert!(!shown.contains(ID), "{shown}");
        assert!(!shown.contains("199003077"), "{shown}");
    }
}

/// Yields a generated CSV line by line and counts what it handed out.
struct Generated {
    rows: u64,
    next: u64,
    pending: Vec<u8>,
    handed: Arc<AtomicU64>,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            if self.next > self.rows {
                return Ok(0);
            }
            if self.next == 0 {
                self.pending.extend_from_slice("姓名,身份证号码,户内人数\r\n".as_bytes());
            } else {
                write!(self.pending, "居民{},{ID},{}\r\n", self.next, self.next % 30 + 1)?;
            }
            self.next += 1;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.handed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_large_csv_streams() {
    const ROWS: u64 = 200_000;
    let handed = Arc::new(AtomicU64::new(0));
    let source = Generated { rows: ROWS, next: 0, pending: Vec::new(), handed: handed.clone() };
    let mut reader = Reader::from_read(source, None, &RESIDENTS, ReaderLimits::default()).expect("opens");
    let mut count = 0;
    let mut consumed = "姓名,身份证号码,户内人数\r\n".len() as u64;
    let mut most_ahead = 0;
    for o in reader.by_ref() {
        let RowOutcome::Row(r) = o.expect("reads") else { panic!("problem") };
        count += 1;
        assert_eq!(r.number, count + 1);
        assert_eq!(r.integer("household"), Some((count % 30 + 1) as i64));
        consumed += format!("居民{count},{ID},{}\r\n", count % 30 + 1).len() as u64;
        // The reader never holds more than its buffers ahead of the row it yields.
        let ahead = handed.load(Ordering::Relaxed) - consumed;
        most_ahead = most_ahead.max(ahead);
    }
    assert_eq!(count, ROWS);
    assert_eq!(reader.progress().rows_read, ROWS);
    assert!(most_ahead < 512 * 1024, "read {most_ahead} bytes ahead");
    assert!(reader.sha256().is_some(), "hashed once the end was reached");
    assert_eq!(handed.load(Ordering::Relaxed), consumed);
    assert!(consumed > 30 * ROWS, "the file was {consumed} bytes");
}

#[test]
fn a_large_csv_file_streams_from_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.csv");
    let mut file = io::BufWriter::new(std::fs::File::create(&path).expect("creates"));
    writeln!(file, "姓名,身份证号码").expect("writes");
    for i in 0..200_000 {
        writeln!(file, "居民{i},{ID}").expect("writes");
    }
    drop(file);
    let reader = Reader::open(&path, &RESIDENTS).expect("opens");
    let total = reader.progress().total_bytes;
    assert!(reader.progress().bytes_read < 256 * 1024);
    let mut n = 0;
    let mut reader = reader;
    for o in reader.by_ref() {
        assert!(matches!(o, Ok(RowOutcome::Row(_))));
        n += 1;
    }
    assert_eq!(n, 200_000);
    assert_eq!(Some(reader.progress().bytes_read), total);
}

#[test]
fn limits_stop_hostile_files() {
    let limits = ReaderLimits { max_rows: 2, max_record_bytes: 64, ..ReaderLimits::default() };
    let csv = format!("姓名,身份证号码\n甲,{ID}\n乙,{ID}\n丙,{ID}\n");
    let r = Reader::from_bytes_with(csv.into_bytes(), "a.csv", &RESIDENTS, limits).expect("opens");
    let last = r.last().expect("something");
    assert!(matches!(last, Err(LedgerError::Limit { what: "rows", limit: 2 })), "{last:?}");
    let csv = format!("姓名,身份证号码\n\"{}\n", "x\n".repeat(100));
    let r = Reader::from_bytes_with(csv.into_bytes(), "a.csv", &RESIDENTS, limits).expect("opens");
    let last = r.last().expect("something");
    assert!(matches!(last, Err(LedgerError::Limit { what: "bytes in one record", .. })), "{last:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any text without edge whitespace survives a CSV export and import, formulas included.
    #[test]
    fn csv_cells_round_trip(s in "[=+\\-@'#\"a-z张, \\n]{0,12}[a-z张=+'\"]") {
        let mut export = CsvExport::new(Vec::new(), &RESIDENTS, &provenance()).expect("starts").unmasked();
        let mut row = vec![None; RESIDENTS.columns.len()];
        row[0] = Some(Value::Text("名".into()));
        row[1] = Some(Value::Text(ID.into()));
        row[8] = Some(Value::Text(s.clone()));
        export.push_row(&row).expect("row");
        let bytes = export.finish().expect("finishes");
        let back = rows(Reader::from_bytes(bytes, "p.csv", &RESIDENTS).expect("opens"));
        let expected = s.trim_matches(char::is_whitespace).to_owned();
        prop_assert_eq!(back[0][8].clone(), Some(Value::Text(expected)));
    }
}
