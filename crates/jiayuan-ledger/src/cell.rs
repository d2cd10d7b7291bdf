//! 单元格 cell parsing: from what a CSV or XLSX cell holds to a typed [`Value`], or a
//! [`Problem`] naming the row, the column and the rule (never the raw value).

#![allow(
    clippy::result_large_err,
    reason = "a cell's problem is its parse result, returned by value to the row being assembled"
)]

use jiayuan_domain::Date;

use crate::problem::Problem;
use crate::sheet::{CellKind, Column, Value};

/// What a file's cell holds before it is checked against its column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawCell {
    /// Nothing.
    Empty,
    /// Text (all of a CSV's cells).
    Text(String),
    /// An XLSX number.
    Number(f64),
    /// An XLSX date or date-time, as (year, month, day).
    DateTime(i32, u32, u32),
    /// An XLSX boolean.
    Bool(bool),
    /// An XLSX error value (`#N/A`, `#VALUE!`…).
    Error,
}

/// Where a cell is: its row, its header as written, its column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CellAt<'a> {
    /// 1-based row number.
    pub(crate) row: u64,
    /// The header as written in the file.
    pub(crate) header: &'a str,
    /// The column it was matched to.
    pub(crate) column: &'static Column,
}

/// The hint for codes Excel turned into numbers.
const SCIENTIFIC_ZH: &str = "Excel 把长数字变成了科学计数法，请把该列设为文本格式后重新填写";
const SCIENTIFIC_EN: &str =
    "Excel turned a long number into scientific notation; format the column as Text and re-enter it";

/// Full-width ASCII (U+FF01–U+FF5E) to ASCII and the ideographic space to a space.
pub(crate) fn half_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

/// Whitespace as a cell's edges may carry it: Unicode white space (incl. U+3000 and NBSP) and
/// a stray byte-order mark.
pub(crate) fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

/// The cell without its edge whitespace.
pub(crate) fn trim_cell(s: &str) -> &str {
    s.trim_matches(is_blank)
}

/// A number as Excel shows it in a General cell: integral values without `.0`.
pub(crate) fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 { format!("{}", x as i64) } else { format!("{x}") }
}

/// `4.40303E+17`, `4.40303e17`, `440303000000.0`: what Excel leaves of a long code.
fn looks_scientific(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if let Some((mantissa, exp)) = s.split_once(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
        return !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && !exp.is_empty()
            && exp.bytes().all(|b| b.is_ascii_digit());
    }
    match s.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && !frac.is_empty()
                && frac.bytes().all(|b| b == b'0')
        }
        None => false,
    }
}

/// Parses one cell for its column. `Ok(None)` is an empty optional cell.
pub(crate) fn parse(at: &CellAt<'_>, raw: RawCell, max_cell_chars: usize) -> Result<Option<Value>, Problem> {
    let column = at.column;
    let text = match raw {
        RawCell::Empty => return empty(at),
        RawCell::Error => {
            return Err(Problem::cell(
                at,
                None,
                "excel_error",
                "单元格是 Excel 错误值（如 #N/A），请填写实际内容",
                "the cell holds an Excel error value (such as #N/A); enter the actual content",
            ));
        }
        RawCell::Bool(b) => match column.kind {
            CellKind::Bool => return Ok(Some(Value::Bool(b))),
            _ => (if b { "TRUE" } else { "FALSE" }).to_owned(),
        },
        RawCell::DateTime(y, m, d) => match column.kind {
            CellKind::Date => {
                return Date::from_ymd(y, m, d).map(|d| Some(Value::Date(d))).ok_or_else(|| date_format(at, None));
            }
            CellKind::Code { .. } => {
                return Err(Problem::cell(
                    at,
                    None,
                    "code_chars",
                    "Excel 把该编码当成了日期，请把该列设为文本格式后重新填写",
                    "Excel took this code for a date; format the column as Text and re-enter it",
                ));
            }
            _ => format!("{y:04}-{m:02}-{d:02}"),
        },
        RawCell::Number(x) => return number(at, x),
        RawCell::Text(s) => s,
    };
    let t = trim_cell(&text);
    if t.is_empty() {
        return empty(at);
    }
    let chars = t.chars().count();
    if chars > max_cell_chars {
        return Err(Problem {
            masked_value: None,
            ..Problem::cell(
                at,
                None,
                "too_long",
                format!("内容超过 {max_cell_chars} 个字符的上限"),
                format!("the cell exceeds the limit of {max_cell_chars} characters"),
            )
        });
    }
    if t.contains('\u{FFFD}') {
        return Err(Problem::cell(
            at,
            Some(t),
            "bad_encoding",
            "内容含有无法识别的字符，请把文件另存为 UTF-8 编码的 CSV 或 .xlsx",
            "the cell has characters that could not be decoded; save the file as UTF-8 CSV or .xlsx",
        ));
    }
    match column.kind {
        CellKind::Text { max_chars } => {
            if chars > max_chars {
                Err(Problem::cell(
                    at,
                    Some(t),
                    "too_long",
                    format!("不能超过 {max_chars} 个字符（现有 {chars} 个）"),
                    format!("at most {max_chars} characters ({chars} given)"),
                ))
            } else {
                Ok(Some(Value::Text(t.to_owned())))
            }
        }
        CellKind::Code { min_len, max_len } => code(at, t, min_len, max_len),
        CellKind::Date => date(at, t),
        CellKind::Integer { min, max } => {
            let n = half_width(t);
            match n.parse::<i64>() {
                Ok(v) => integer_in_range(at, Some(t), v, min, max),
                Err(_) => match n.parse::<f64>() {
                    Ok(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9e15 => {
                        integer_in_range(at, Some(t), x as i64, min, max)
                    }
                    Ok(x) if x.is_finite() => Err(not_an_integer(at, Some(t))),
                    _ => Err(not_a_number(at, Some(t))),
                },
            }
        }
        CellKind::Decimal { min, max } => match half_width(t).parse::<f64>() {
            Ok(x) if x.is_finite() => decimal_in_range(at, Some(t), x, min, max),
            _ => Err(not_a_number(at, Some(t))),
        },
        CellKind::Bool => {
            let b = half_width(t).to_ascii_lowercase();
            match b.as_str() {
                "是" | "yes" | "true" | "1" | "y" => Ok(Some(Value::Bool(true))),
                "否" | "no" | "false" | "0" | "n" => Ok(Some(Value::Bool(false))),
                _ => Err(Problem::cell(
                    at,
                    Some(t),
                    "not_a_bool",
                    "请填写「是」或「否」",
                    "enter yes or no (是/否, yes/no, true/false, 1/0, Y/N)",
                )),
            }
        }
        CellKind::Choice(choices) => {
            let c = half_width(t);
            let c = c.trim();
            choices
                .iter()
                .find(|o| {
                    o.value.eq_ignore_ascii_case(c) || o.zh.eq_ignore_ascii_case(c) || o.en.eq_ignore_ascii_case(c)
                })
                .map(|o| Some(Value::Choice(o.value)))
                .ok_or_else(|| {
                    let zh: Vec<&str> = choices.iter().map(|o| o.zh).collect();
                    let en: Vec<&str> = choices.iter().map(|o| o.en).collect();
                    Problem::cell(
                        at,
                        Some(t),
                        "not_a_choice",
                        format!("不是可选项，可选：{}", zh.join("、")),
                        format!("not one of the options: {}", en.join(", ")),
                    )
                })
        }
    }
}

fn empty(at: &CellAt<'_>) -> Result<Option<Value>, Problem> {
    if at.column.required {
        Err(Problem::cell(at, None, "required", "必填项，不能为空", "required; the cell must not be empty"))
    } else {
        Ok(None)
    }
}

/// An XLSX number cell.
fn number(at: &CellAt<'_>, x: f64) -> Result<Option<Value>, Problem> {
    let shown = number_text(x);
    match at.column.kind {
        CellKind::Code { min_len, max_len } => {
            if x.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&x) {
                code(at, &shown, min_len, max_len)
            } else {
                Err(Problem::cell(at, Some(&shown), "excel_scientific", SCIENTIFIC_ZH, SCIENTIFIC_EN))
            }
        }
        CellKind::Date => Err(serial(at, &shown)),
        CellKind::Integer { min, max } if x.fract() == 0.0 && x.abs() < 9e15 => {
            integer_in_range(at, Some(&shown), x as i64, min, max)
        }
        CellKind::Integer { .. } => Err(not_an_integer(at, Some(&shown))),
        CellKind::Decimal { min, max } => decimal_in_range(at, Some(&shown), x, min, max),
        CellKind::Bool if x == 1.0 => Ok(Some(Value::Bool(true))),
        CellKind::Bool if x == 0.0 => Ok(Some(Value::Bool(false))),
        _ => parse(at, RawCell::Text(shown), usize::MAX),
    }
}

fn code(at: &CellAt<'_>, t: &str, min_len: usize, max_len: usize) -> Result<Option<Value>, Problem> {
    let c: String = half_width(t).chars().filter(|c| !is_blank(*c)).map(|c| c.to_ascii_uppercase()).collect();
    if looks_scientific(&c) {
        return Err(Problem::cell(at, Some(t), "excel_scientific", SCIENTIFIC_ZH, SCIENTIFIC_EN));
    }
    if !c.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return Err(Problem::cell(
            at,
            Some(t),
            "code_chars",
            "只能包含数字和大写字母",
            "only digits and capital letters are allowed",
        ));
    }
    let n = c.len();
    if n < min_len || n > max_len {
        let (zh, en) = if min_len == max_len {
            (format!("应为 {min_len} 位（现有 {n} 位）"), format!("must have {min_len} characters ({n} given)"))
        } else {
            (
                format!("应为 {min_len}–{max_len} 位（现有 {n} 位）"),
                format!("must have {min_len} to {max_len} characters ({n} given)"),
            )
        };
        return Err(Problem::cell(at, Some(t), "length", zh, en));
    }
    Ok(Some(Value::Text(c)))
}

fn serial(at: &CellAt<'_>, shown: &str) -> Problem {
    Problem::cell(
        at,
        Some(shown),
        "excel_date_serial",
        "Excel 把日期变成了序列号数字，请把该列设为文本或日期格式，按 YYYY-MM-DD 填写",
        "Excel turned the date into a serial number; format the column as Text or Date and enter YYYY-MM-DD",
    )
}

fn date_format(at: &CellAt<'_>, raw: Option<&str>) -> Problem {
    Problem::cell(
        at,
        raw,
        "date_format",
        "日期格式不对，应为 YYYY-MM-DD（如 2024-03-01）",
        "not a valid date; expected YYYY-MM-DD (e.g. 2024-03-01)",
    )
}

/// `YYYY-MM-DD`, `YYYY/M/D`, `YYYY.M.D`, `YYYYMMDD`, `YYYY年M月D日`, optionally followed by a
/// time of day (ignored).
fn date(at: &CellAt<'_>, t: &str) -> Result<Option<Value>, Problem> {
    let s = half_width(t);
    let s = s.trim();
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() == 5 && s.parse::<u32>().is_ok_and(|n| (20_000..=80_000).contains(&n)) {
            return Err(serial(at, t));
        }
        if s.len() == 8 {
            let (y, m, d) = (s[..4].parse::<i32>(), s[4..6].parse::<u32>(), s[6..].parse::<u32>());
            if let (Ok(y), Ok(m), Ok(d)) = (y, m, d) {
                return Date::from_ymd(y, m, d).map(|d| Some(Value::Date(d))).ok_or_else(|| date_format(at, Some(t)));
            }
        }
        return Err(date_format(at, Some(t)));
    }
    // A trailing time of day (`2024-03-01 00:00:00`, `2024-03-01T08:00`) is dropped.
    let s = match s.split_once([' ', 'T']) {
        Some((d, time)) if !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'.') => d,
        _ => s,
    };
    let s = s.strip_suffix('日').unwrap_or(s);
    let parts: Vec<&str> = s.split(['-', '/', '.', '年', '月']).collect();
    let ok = parts.len() == 3
        && parts[0].len() == 4
        && (1..=2).contains(&parts[1].len())
        && (1..=2).contains(&parts[2].len())
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok && let (Ok(y), Ok(m), Ok(d)) = (parts[0].parse::<i32>(), parts[1].parse::<u32>(), parts[2].parse::<u32>()) {
        return Date::from_ymd(y, m, d).map(|d| Some(Value::Date(d))).ok_or_else(|| date_format(at, Some(t)));
    }
    Err(date_format(at, Some(t)))
}

fn integer_in_range(at: &CellAt<'_>, raw: Option<&str>, v: i64, min: i64, max: i64) -> Result<Option<Value>, Problem> {
    if (min..=max).contains(&v) {
        Ok(Some(Value::Integer(v)))
    } else {
        Err(out_of_range(at, raw, &min.to_string(), &max.to_string()))
    }
}

fn decimal_in_range(at: &CellAt<'_>, raw: Option<&str>, x: f64, min: f64, max: f64) -> Result<Option<Value>, Problem> {
    if x >= min && x <= max {
        Ok(Some(Value::Decimal(x)))
    } else {
        Err(out_of_range(at, raw, &number_text(min), &number_text(max)))
    }
}

fn out_of_range(at: &CellAt<'_>, raw: Option<&str>, min: &str, max: &str) -> Problem {
    Problem::cell(
        at,
        raw,
        "out_of_range",
        format!("应在 {min} 到 {max} 之间"),
        format!("must be between {min} and {max}"),
    )
}

fn not_a_number(at: &CellAt<'_>, raw: Option<&str>) -> Problem {
    Problem::cell(
        at,
        raw,
        "not_a_number",
        "应为数字（不要加千位分隔符）",
        "must be a number (without thousands separators)",
    )
}

fn not_an_integer(at: &CellAt<'_>, raw: Option<&str>) -> Problem {
    Problem::cell(at, raw, "not_an_integer", "应为整数", "must be a whole number")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::Choice;
    use jiayuan_domain::Sensitivity;

    const CHOICES: &[Choice] = &[
        Choice { value: "rented", zh: "出租", en: "Rented" },
        Choice { value: "own", zh: "自住", en: "Owner-occupied" },
    ];

    fn col(kind: CellKind) -> &'static Column {
        Box::leak(Box::new(Column {
            key: "k",
            zh: "列",
            en: "Col",
            required: true,
            kind,
            sensitivity: Sensitivity::Personal,
            note_zh: "",
            note_en: "",
        }))
    }

    fn run(kind: CellKind, raw: RawCell) -> Result<Option<Value>, Problem> {
        parse(&CellAt { row: 7, header: "列", column: col(kind) }, raw, 4000)
    }

    fn rule(kind: CellKind, text: &str) -> &'static str {
        run(kind, RawCell::Text(text.to_owned())).expect_err(text).rule
    }

    const CODE: CellKind = CellKind::Code { min_len: 18, max_len: 18 };

    #[test]
    fn codes_are_normalised_and_checked() {
        assert_eq!(
            run(CODE, RawCell::Text("１１０１０１ 19900307777x".into())),
            Ok(Some(Value::Text("11010119900307777X".into())))
        );
        assert_eq!(rule(CODE, "4.40303E+17"), "excel_scientific");
        assert_eq!(rule(CODE, "4.40303e17"), "excel_scientific");
        assert_eq!(rule(CODE, "440303000000.0"), "excel_scientific");
        assert_eq!(rule(CODE, "1101011990-03077777"), "code_chars");
        assert_eq!(rule(CODE, "1101011990"), "length");
        assert_eq!(run(CODE, RawCell::Number(1.1010119900307778e17)).expect_err("number").rule, "excel_scientific");
        let short = CellKind::Code { min_len: 6, max_len: 12 };
        assert_eq!(run(short, RawCell::Number(440303.0)), Ok(Some(Value::Text("440303".into()))));
    }

    #[test]
    fn dates_in_the_shapes_people_type() {
        let d = Some(Value::Date(Date::from_ymd(2024, 3, 1).expect("valid")));
        for ok in
            ["2024-03-01", "2024/3/1", "2024.3.1", "20240301", "2024年3月1日", "２０２４-03-01", "2024-03-01 00:00:00"]
        {
            assert_eq!(run(CellKind::Date, RawCell::Text(ok.into())), Ok(d.clone()), "{ok}");
        }
        assert_eq!(run(CellKind::Date, RawCell::DateTime(2024, 3, 1)), Ok(d));
        assert_eq!(rule(CellKind::Date, "45352"), "excel_date_serial");
        assert_eq!(run(CellKind::Date, RawCell::Number(45352.0)).expect_err("serial").rule, "excel_date_serial");
        for bad in ["2024-02-30", "03/01/2024", "1 March 2024", "2024-3", "12345"] {
            assert_eq!(rule(CellKind::Date, bad), "date_format", "{bad}");
        }
    }

    #[test]
    fn numbers_bools_choices_and_blanks() {
        let int = CellKind::Integer { min: 0, max: 200 };
        assert_eq!(run(int, RawCell::Text("１２".into())), Ok(Some(Value::Integer(12))));
        assert_eq!(rule(int, "201"), "out_of_range");
        assert_eq!(rule(int, "1,200"), "not_a_number");
        assert_eq!(rule(int, "1.5"), "not_an_integer");
        let dec = CellKind::Decimal { min: 0.0, max: 1000.0 };
        assert_eq!(run(dec, RawCell::Text("88.5".into())), Ok(Some(Value::Decimal(88.5))));
        assert_eq!(rule(dec, "NaN"), "not_a_number");
        assert_eq!(rule(dec, "-1"), "out_of_range");
        for (t, b) in [("是", true), ("否", false), ("YES", true), ("n", false), ("1", true), ("False", false)] {
            assert_eq!(run(CellKind::Bool, RawCell::Text(t.into())), Ok(Some(Value::Bool(b))), "{t}");
        }
        assert_eq!(rule(CellKind::Bool, "maybe"), "not_a_bool");
        let choice = CellKind::Choice(CHOICES);
        for t in ["出租", "rented", "RENTED", " Rented "] {
            assert_eq!(run(choice, RawCell::Text(t.into())), Ok(Some(Value::Choice("rented"))), "{t}");
        }
        let p = run(choice, RawCell::Text("空置".into())).expect_err("not a choice");
        assert_eq!(p.rule, "not_a_choice");
        assert!(p.reason_zh.contains("出租、自住") && p.reason_en.contains("Rented, Owner-occupied"), "{p:?}");
        assert_eq!(rule(CellKind::Text { max_chars: 3 }, "　\u{a0} "), "required");
        assert_eq!(rule(CellKind::Text { max_chars: 3 }, "张三丰李"), "too_long");
        assert_eq!(rule(CellKind::Text { max_chars: 30 }, "张\u{FFFD}"), "bad_encoding");
    }

    #[test]
    fn problems_mask_personal_values() {
        let p = run(CODE, RawCell::Text("1101011990030777770".into())).expect_err("too long");
        assert_eq!(p.rule, "length");
        assert_eq!(p.masked_value.as_deref(), Some("***************7770"));
        assert_eq!((p.row, p.column.as_deref(), p.key), (7, Some("列"), Some("k")));
        assert!(!format!("{p:?}{p}").contains("1101011990030777770"));
    }
}
