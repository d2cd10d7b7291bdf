//! 表 sheet descriptions: the columns a registry kind's ledger has, and the typed values and rows
//! read from one.

use jiayuan_domain::{Date, Sensitivity};

/// 列 one column of a ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Machine key the host uses (`id_number`).
    pub key: &'static str,
    /// 中文列名 Chinese header (`身份证号码`); exports and templates write it.
    pub zh: &'static str,
    /// English header (`ID number`); accepted on import.
    pub en: &'static str,
    /// 必填 whether every data row must fill it (and the column must be present).
    pub required: bool,
    /// What the cells hold.
    pub kind: CellKind,
    /// 数据分级 how the cells are masked in problems and exports.
    pub sensitivity: Sensitivity,
    /// 说明 note for the template, Chinese.
    pub note_zh: &'static str,
    /// Note for the template, English.
    pub note_en: &'static str,
}

/// 单元格类型 what a column's cells hold, and how they are checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellKind {
    /// 文本 free text of at most `max_chars` characters.
    Text {
        /// Longest accepted value, in characters.
        max_chars: usize,
    },
    /// 编码 a code of digits and letters that Excel must not turn into a number (ID numbers,
    /// credit codes, division codes, phones). Full-width characters are made ASCII, letters
    /// upper-case and spaces removed before the check; only `[0-9A-Z]` is accepted.
    Code {
        /// Shortest accepted code, in characters.
        min_len: usize,
        /// Longest accepted code, in characters.
        max_len: usize,
    },
    /// 日期 a civil date, becoming [`Date`].
    Date,
    /// 整数 a whole number within `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// 小数 a number within `min..=max`.
    Decimal {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// 是否 yes or no: `是/否`, `yes/no`, `true/false`, `1/0`, `Y/N`.
    Bool,
    /// 选项 one of a fixed list, given by value, Chinese or English label.
    Choice(&'static [Choice]),
}

/// 选项 one option of a [`CellKind::Choice`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Machine value (`rented`).
    pub value: &'static str,
    /// Chinese label (`出租`); exports and drop-downs use it.
    pub zh: &'static str,
    /// English label (`Rented`).
    pub en: &'static str,
}

/// 台账表 the description of one registry kind's ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sheet {
    /// Chinese name (`居民`), also the worksheet name of exports.
    pub name_zh: &'static str,
    /// English name (`Residents`).
    pub name_en: &'static str,
    /// The columns, in the order exports and templates write them.
    pub columns: &'static [Column],
}

impl Sheet {
    /// The index of the column with this key.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key == key)
    }
}

/// 值 a typed cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text and codes (codes normalised, see [`CellKind::Code`]).
    Text(String),
    /// A date.
    Date(Date),
    /// A whole number.
    Integer(i64),
    /// A number.
    Decimal(f64),
    /// Yes or no.
    Bool(bool),
    /// The machine value of a [`Choice`].
    Choice(&'static str),
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<Date> for Value {
    fn from(d: Date) -> Value {
        Value::Date(d)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Integer(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// 数据行 one data row read without problems.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 行号 the 1-based row number as the user sees it in Excel (the line number of a CSV).
    pub number: u64,
    /// The values by column index of the [`Sheet`]; `None` for empty or absent cells.
    pub values: Vec<Option<Value>>,
    /// The sheet the row was read with.
    pub sheet: &'static Sheet,
}

impl Row {
    /// The value of the column with this key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.sheet.index_of(key).and_then(|i| self.values.get(i)).and_then(Option::as_ref)
    }

    /// The text or code of the column with this key.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The date of the column with this key.
    pub fn date(&self, key: &str) -> Option<Date> {
        match self.get(key)? {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    /// The whole number of the column with this key.
    pub fn integer(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// The number of the column with this key (integers too).
    pub fn decimal(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Decimal(x) => Some(*x),
            Value::Integer(n) => Some(*n as f64),
            _ => None,
        }
    }

    /// The yes/no of the column with this key.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The choice value of the column with this key.
    pub fn choice(&self, key: &str) -> Option<&'static str> {
        match self.get(key)? {
            Value::Choice(v) => Some(v),
            _ => None,
        }
    }
}
