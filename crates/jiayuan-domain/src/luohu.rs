//! Seed divisions of 罗湖区 Luohu district, Shenzhen, as data: the district, its 10 streets and
//! the communities known so far.

use crate::division::{Division, DivisionCode, DivisionLevel};
use crate::time::Date;

/// 统计用区划代码 of 罗湖区.
pub const LUOHU_DISTRICT_CODE: &str = "440303000000";

/// The 10 streets (街道) of Luohu with their 12-digit statistical codes.
const STREETS: [(&str, &str); 10] = [
    ("440303001000", "桂园街道"),
    ("440303002000", "黄贝街道"),
    ("440303003000", "东门街道"),
    ("440303004000", "翠竹街道"),
    ("440303005000", "南湖街道"),
    ("440303006000", "笋岗街道"),
    ("440303007000", "东湖街道"),
    ("440303008000", "莲塘街道"),
    ("440303009000", "东晓街道"),
    ("440303010000", "清水河街道"),
];

/// Communities (社区) seeded so far. 南湖街道罗湖社区's code is from a public source; the 翠竹街道
/// codes are assigned in list order and are illustrative only.
const COMMUNITIES: [(&str, &str); 11] = [
    ("440303004001", "翠达社区"),
    ("440303004002", "木头龙社区"),
    ("440303004003", "新村社区"),
    ("440303004004", "水贝社区"),
    ("440303004005", "翠岭社区"),
    ("440303004006", "翠平社区"),
    ("440303004007", "愉天社区"),
    ("440303004008", "翠竹社区"),
    ("440303004009", "民新社区"),
    ("440303004010", "翠宁社区"),
    ("440303005015", "罗湖社区"),
];

/// The seed divisions of Luohu, parents before children, all in force from 2019-01-01:
///
/// - 罗湖区 `440303000000`;
/// - its 10 streets, `440303001000` 桂园街道 to `440303010000` 清水河街道;
/// - the 10 communities of 翠竹街道 (翠达, 木头龙, 新村, 水贝, 翠岭, 翠平, 愉天, 翠竹, 民新, 翠宁) with
///   codes `440303004001`–`440303004010`, and 南湖街道罗湖社区 `440303005015`.
///
/// The 翠竹街道 community codes are **illustrative**: they are assigned in list order, not taken
/// from the 国家统计局 table. Production data must load the communities (about 83 in Luohu, with
/// their real codes and validity) from the official table; this list is for demos and tests.
pub fn luohu_divisions() -> Vec<Division> {
    let valid_from = Date::from_ymd(2019, 1, 1).expect("2019-01-01 is a date");
    let code = |c: &str| DivisionCode::parse(c).expect("the seed table holds 12-digit codes");
    let district = Division {
        code: code(LUOHU_DISTRICT_CODE),
        level: DivisionLevel::District,
        name_zh: "罗湖区".to_owned(),
        parent: None,
        valid_from,
        valid_to: None,
    };
    let below = |(c, name): &(&str, &str), level| {
        let code = code(c);
        Division { parent: code.parent(), code, level, name_zh: (*name).to_owned(), valid_from, valid_to: None }
    };
    std::iter::once(district)
        .chain(STREETS.iter().map(|s| below(s, DivisionLevel::Street)))
        .chain(COMMUNITIES.iter().map(|c| below(c, DivisionLevel::Community)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn hierarchy_is_consistent() {
        let all = luohu_divisions();
        assert_eq!(all.len(), 1 + 10 + 11);
        let by_code: HashMap<&str, &Division> = all.iter().map(|d| (d.code.as_str(), d)).collect();
        assert_eq!(by_code.len(), all.len(), "codes are unique");
        let names: HashSet<&str> = all.iter().map(|d| d.name_zh.as_str()).collect();
        assert_eq!(names.len(), all.len(), "names are unique");
        let district = DivisionCode::parse(LUOHU_DISTRICT_CODE).expect("valid code");
        for d in &all {
            assert_eq!(d.code.level(), d.level, "{}", d.name_zh);
            assert_eq!(d.parent, d.code.parent(), "{}", d.name_zh);
            assert!(d.code.is_within(&district), "{}", d.name_zh);
            if let Some(p) = &d.parent {
                let parent = by_code.get(p.as_str()).expect("parent is seeded");
                assert!(parent.valid_from <= d.valid_from);
            }
            assert_eq!(d.valid_from, Date::from_ymd(2019, 1, 1).expect("valid date"));
            assert_eq!(d.valid_to, None);
        }
    }

    #[test]
    fn known_rows() {
        let all = luohu_divisions();
        let name = |c: &str| all.iter().find(|d| d.code.as_str() == c).map(|d| d.name_zh.as_str());
        assert_eq!(name("440303000000"), Some("罗湖区"));
        assert_eq!(name("440303001000"), Some("桂园街道"));
        assert_eq!(name("440303010000"), Some("清水河街道"));
        assert_eq!(name("440303005015"), Some("罗湖社区"));
        let cuizhu = DivisionCode::parse("440303004000").expect("valid code");
        let communities: Vec<&str> = all
            .iter()
            .filter(|d| d.level == DivisionLevel::Community && d.code.is_within(&cuizhu))
            .map(|d| d.name_zh.as_str())
            .collect();
        assert_eq!(
            communities,
            [
                "翠达社区",
                "木头龙社区",
                "新村社区",
                "水贝社区",
                "翠岭社区",
                "翠平社区",
                "愉天社区",
                "翠竹社区",
                "民新社区",
                "翠宁社区"
            ]
        );
        assert_eq!(all.iter().filter(|d| d.level == DivisionLevel::Street).count(), 10);
    }
}
