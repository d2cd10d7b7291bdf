//! 导入模板 the import template: an XLSX with the header (required columns marked `*`), a
//! notes row, drop-downs for choices and yes/no, text-formatted code columns and an
//! `说明 About` sheet. Re-reading a blank template yields no rows and no problems.

use rust_xlsxwriter::{Color, DataValidation, Format, FormatAlign, Workbook};

use crate::error::LedgerError;
use crate::export::{is_text_column, width, write_about};
use crate::header::NOTES_MARKER;
use crate::sheet::{CellKind, Column, Sheet};

/// The expected format of a column, Chinese and English (`18位` / `18 characters`).
pub fn format_hint(column: &Column) -> (String, String) {
    match column.kind {
        CellKind::Text { max_chars } => (format!("最多 {max_chars} 字"), format!("at most {max_chars} characters")),
        CellKind::Code { min_len, max_len } if min_len == max_len => {
            (format!("{min_len}位，文本格式"), format!("{min_len} characters, as text"))
        }
        CellKind::Code { min_len, max_len } => {
            (format!("{min_len}–{max_len}位，文本格式"), format!("{min_len} to {max_len} characters, as text"))
        }
        CellKind::Date => ("YYYY-MM-DD".to_owned(), "YYYY-MM-DD".to_owned()),
        CellKind::Integer { min, max } => (format!("整数 {min}–{max}"), format!("whole number {min} to {max}")),
        CellKind::Decimal { min, max } => (format!("数字 {min}–{max}"), format!("number {min} to {max}")),
        CellKind::Bool => ("是/否".to_owned(), "yes/no".to_owned()),
        CellKind::Choice(options) => (
            format!("可选：{}", options.iter().map(|o| o.zh).collect::<Vec<_>>().join("、")),
            format!("one of: {}", options.iter().map(|o| o.en).collect::<Vec<_>>().join(", ")),
        ),
    }
}

/// The import template of `sheet`, as XLSX bytes.
pub fn template(sheet: &'static Sheet) -> Result<Vec<u8>, LedgerError> {
    let mut workbook = Workbook::new();
    let text = Format::new().set_num_format("@");
    let bold = Format::new().set_bold().set_align(FormatAlign::Center).set_num_format("@");
    let required = bold.clone().set_font_color(Color::Red);
    let note = Format::new().set_text_wrap().set_font_color(Color::Gray).set_num_format("@");
    let ws = workbook.add_worksheet();
    ws.set_name(sheet.name_zh)?;
    for (i, c) in sheet.columns.iter().enumerate() {
        let col = i as u16;
        ws.set_column_width(col, width(c).max(18.0))?;
        if is_text_column(c) {
            ws.set_column_format(col, &text)?;
        }
        if c.required {
            ws.write_string_with_format(0, col, format!("*{}", c.zh), &required)?;
        } else {
            ws.write_string_with_format(0, col, c.zh, &bold)?;
        }
        let (fmt_zh, fmt_en) = format_hint(c);
        let mut notes = format!("{}（{fmt_zh}）\n{} ({fmt_en})", c.note_zh, c.note_en);
        if i == 0 {
            notes = format!("{NOTES_MARKER}{notes}");
        }
        ws.write_string_with_format(1, col, notes, &note)?;
        let list: Option<Vec<&str>> = match c.kind {
            CellKind::Choice(options) => Some(options.iter().map(|o| o.zh).collect()),
            CellKind::Bool => Some(vec!["是", "否"]),
            _ => None,
        };
        // Excel limits a list to 255 characters; a longer one goes without a drop-down.
        if let Some(list) = list
            && let Ok(validation) = DataValidation::new().allow_list_strings(&list)
        {
            ws.add_data_validation(2, col, 1_048_575, col, &validation)?;
        }
    }
    ws.set_row_height(1, 45)?;
    ws.set_freeze_panes(2, 0)?;
    let lines = [
        ("台账 Ledger", format!("{} {}", sheet.name_zh, sheet.name_en)),
        ("必填 Required", "列名前带 * 的列必须填写 / columns marked * are required".to_owned()),
        (
            "说明行 Notes row",
            format!("第 2 行以「{NOTES_MARKER}」开头，导入时跳过，可保留 / row 2 starts with the marker and is skipped on import"),
        ),
        ("日期 Dates", "YYYY-MM-DD，如 2024-03-01 / e.g. 2024-03-01".to_owned()),
        (
            "编码 Codes",
            "身份证号、信用代码、电话等列已设为文本格式，请勿改为数字 / ID numbers, credit codes and phones are text columns; do not turn them into numbers".to_owned(),
        ),
        ("选项 Choices", "从下拉列表中选择 / pick from the drop-down list".to_owned()),
    ];
    write_about(workbook.add_worksheet(), &lines, &bold)?;
    Ok(workbook.save_to_buffer()?)
}
