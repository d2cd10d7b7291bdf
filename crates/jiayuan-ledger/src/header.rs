//! 表头 header rows: matching a file's header cells to a [`Sheet`]'s columns, in any order, by
//! Chinese or English name, with the problems of unknown, duplicate and missing columns.

use crate::cell::{half_width, is_blank, trim_cell};
use crate::problem::Problem;
use crate::sheet::Sheet;

/// 说明行标记 the marker starting the first cell of a template's notes row; a row right after
/// the header whose first cell starts with it is skipped on import.
pub const NOTES_MARKER: &str = "【说明 Notes】";

/// A header text reduced for comparison: half-width, no white space, no `*` required marks,
/// ASCII lower-case.
fn reduce(s: &str) -> String {
    half_width(s).chars().filter(|c| !is_blank(*c) && *c != '*' && *c != '＊').map(|c| c.to_ascii_lowercase()).collect()
}

/// The ways a header cell may name a column: whole, or split into a Chinese and an English part
/// (`中文 English`, `中文(English)`, `中文（English）`, `中文 / English`).
fn candidates(header: &str) -> Vec<String> {
    let whole = half_width(header);
    let mut out = vec![reduce(&whole)];
    let t = whole.trim_matches(|c: char| is_blank(c) || c == '*');
    let t = t.strip_suffix(')').unwrap_or(t);
    if let Some((a, b)) = t.split_once(['(', '/']) {
        out.push(reduce(a));
        out.push(reduce(b));
    } else if let Some(i) =
        t.char_indices().find(|&(i, c)| c.is_ascii_alphabetic() && !t[..i].is_ascii()).map(|(i, _)| i)
    {
        out.push(reduce(&t[..i]));
        out.push(reduce(&t[i..]));
    }
    out.retain(|c| !c.is_empty());
    out
}

/// The result of matching a header row.
#[derive(Debug)]
pub(crate) struct Header {
    /// For each file column: the sheet column index it fills, and its header as written.
    pub(crate) by_file_column: Vec<Option<(usize, String)>>,
    /// Problems found (unknown, duplicate, missing).
    pub(crate) problems: Vec<Problem>,
}

/// Matches the header cells of row `row` to `sheet`.
pub(crate) fn match_header(row: u64, cells: &[String], sheet: &'static Sheet) -> Header {
    let reduced: Vec<(String, String)> = sheet.columns.iter().map(|c| (reduce(c.zh), reduce(c.en))).collect();
    let mut seen: Vec<Option<String>> = vec![None; sheet.columns.len()];
    let mut by_file_column = Vec::with_capacity(cells.len());
    let mut problems = Vec::new();
    for cell in cells {
        let written = trim_cell(cell).to_owned();
        if written.is_empty() {
            by_file_column.push(None);
            continue;
        }
        let cands = candidates(&written);
        let found = cands.iter().find_map(|cand| reduced.iter().position(|(zh, en)| zh == cand || en == cand));
        match found {
            None => {
                problems.push(Problem::header(
                    row,
                    &written,
                    None,
                    "unknown_header",
                    format!("不认识的列名「{written}」，请使用模板的列名"),
                    format!("unknown column `{written}`; use the template's headers"),
                ));
                by_file_column.push(None);
            }
            Some(i) if seen[i].is_some() => {
                let first = seen[i].clone().unwrap_or_default();
                problems.push(Problem::header(
                    row,
                    &written,
                    Some(sheet.columns[i].key),
                    "duplicate_header",
                    format!("列「{}」出现了两次（「{first}」和「{written}」）", sheet.columns[i].zh),
                    format!("column `{}` appears twice (`{first}` and `{written}`)", sheet.columns[i].en),
                ));
                by_file_column.push(None);
            }
            Some(i) => {
                seen[i] = Some(written.clone());
                by_file_column.push(Some((i, written)));
            }
        }
    }
    for (i, c) in sheet.columns.iter().enumerate() {
        if c.required && seen[i].is_none() {
            problems.push(Problem::header(
                row,
                c.zh,
                Some(c.key),
                "missing_column",
                format!("缺少必填列「{}」", c.zh),
                format!("the required column `{}` ({}) is missing", c.en, c.zh),
            ));
        }
    }
    Header { by_file_column, problems }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::{CellKind, Column};
    use jiayuan_domain::Sensitivity;

    const fn column(key: &'static str, zh: &'static str, en: &'static str, required: bool) -> Column {
        Column {
            key,
            zh,
            en,
            required,
            kind: CellKind::Text { max_chars: 10 },
            sensitivity: Sensitivity::Public,
            note_zh: "",
            note_en: "",
        }
    }
    static SHEET: Sheet = Sheet {
        name_zh: "居民",
        name_en: "Residents",
        columns: &[
            column("name", "姓名", "Name", true),
            column("id_number", "身份证号码", "ID number", true),
            column("phone", "联系电话", "Phone", false),
        ],
    };

    fn keys(cells: &[&str]) -> (Vec<Option<&'static str>>, Vec<&'static str>) {
        let cells: Vec<String> = cells.iter().map(|s| s.to_string()).collect();
        let h = match_header(1, &cells, &SHEET);
        (
            h.by_file_column.iter().map(|m| m.as_ref().map(|(i, _)| SHEET.columns[*i].key)).collect(),
            h.problems.iter().map(|p| p.rule).collect(),
        )
    }

    #[test]
    fn headers_match_in_many_spellings() {
        let (k, p) = keys(&["*身份证号码", " 姓名 Name ", "联系电话（Phone）", ""]);
        assert_eq!(k, vec![Some("id_number"), Some("name"), Some("phone"), None]);
        assert!(p.is_empty(), "{p:?}");
        let (k, p) = keys(&["id number", "NAME", "联系　电话 / Phone"]);
        assert_eq!(k, vec![Some("id_number"), Some("name"), Some("phone")]);
        assert!(p.is_empty(), "{p:?}");
        let (k, _) = keys(&["姓名(Name)", "ＩＤ　ｎｕｍｂｅｒ", "*Phone*"]);
        assert_eq!(k, vec![Some("name"), Some("id_number"), Some("phone")]);
    }

    #[test]
    fn unknown_duplicate_and_missing_columns_are_problems() {
        let (k, p) = keys(&["姓名", "Name", "备注"]);
        assert_eq!(k, vec![Some("name"), None, None]);
        assert_eq!(p, vec!["duplicate_header", "unknown_header", "missing_column"]);
    }
}
