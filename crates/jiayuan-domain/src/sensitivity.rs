//! 数据分级 sensitivity classes and the one masking function.
//!
//! Every field the registry or a plugin manifest declares carries a [`Sensitivity`]. Whatever is
//! shown to a person, written to a log or exported goes through [`mask`] unless an audited unmask
//! was granted.

use serde::{Deserialize, Serialize};

/// How sensitive a field is (PIPL; see ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// 公开 may be published (e.g. an estate's name).
    Public,
    /// 内部 for staff of the platform only.
    Internal,
    /// 个人信息 personal information (name, phone, ID number).
    Personal,
    /// 敏感个人信息 sensitive personal information (PIPL art. 28: specific identity, health,
    /// location tracks, minors' data).
    Sensitive,
}

impl Sensitivity {
    /// Whether values of this class are masked by default.
    pub fn is_masked(self) -> bool {
        matches!(self, Sensitivity::Personal | Sensitivity::Sensitive)
    }
}

/// The one masking function.
///
/// Public and internal values pass unchanged. Personal and sensitive values keep only what a
/// person needs to recognise them, and never a prefix (an identity number's first digits name
/// the place of birth, a choice's first letter names the option):
/// - codes and numbers (letters and digits with at least one digit: identity numbers, phones,
///   chip numbers, document numbers): at most the last 4 characters, and none at all when the
///   value is shorter than 8, e.g. `440524188001010014` → `**************0014`,
///   `13812345678` → `*******5678`;
/// - anything else (names): the first character, the surname, the rest starred
///   (`张三丰` → `张**`); a single character becomes `*`.
///
/// Masking counts characters, not bytes, so Chinese names mask correctly; the length is kept.
pub fn mask(value: &str, sensitivity: Sensitivity) -> String {
    if !sensitivity.is_masked() {
        return value.to_owned();
    }
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let code_like = chars.iter().any(char::is_ascii_digit)
        && chars.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' ' | '(' | ')' | '+'));
    if code_like {
        let kept = if n >= 8 { 4 } else { 0 };
        return std::iter::repeat_n('*', n - kept).chain(chars[n - kept..].iter().copied()).collect();
    }
    match n {
        0 => String::new(),
        1 => "*".to_owned(),
        _ => std::iter::once(chars[0]).chain(std::iter::repeat_n('*', n - 1)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_by_shape() {
        assert_eq!(mask("440524188001010014", Sensitivity::Sensitive), "**************0014");
        assert_eq!(mask("13812345678", Sensitivity::Personal), "*******5678");
        assert_eq!(mask("E1234567", Sensitivity::Personal), "****4567");
        assert_eq!(mask("1234567", Sensitivity::Personal), "*******");
        assert_eq!(mask("张三丰", Sensitivity::Personal), "张**");
        assert_eq!(mask("王", Sensitivity::Personal), "*");
        assert_eq!(mask("翠竹苑", Sensitivity::Public), "翠竹苑");
        assert_eq!(mask("内部备注", Sensitivity::Internal), "内部备注");
    }

    proptest! {
        #[test]
        fn masked_value_keeps_length_and_hides_the_middle(s in "\\PC{0,40}") {
            let m = mask(&s, Sensitivity::Sensitive);
            prop_assert_eq!(m.chars().count(), s.chars().count());
            let n = s.chars().count();
            if n >= 2 {
                // At most 4 characters of the original survive, never the whole value.
                let kept = m.chars().zip(s.chars()).filter(|(a, b)| a == b && *a != '*').count();
                prop_assert!(kept <= 4.min(n - 1).max(1));
            }
        }
    }
}
