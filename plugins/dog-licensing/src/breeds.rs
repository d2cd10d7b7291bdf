//! 禁养犬 banned (dangerous) breeds, as versioned lists. The list in force on a day decides.
//!
//! Banned breeds may not be kept in residential, commercial or industrial areas of Shenzhen
//! (《深圳市养犬管理条例》); the list is set and published by the market-supervision authority
//! (formerly 畜牧兽医). Keeping one is punished by 城管 with confiscation and a fine of 5,000 yuan.
//!
//! This is data to verify: the breeds are those of domain.md §3.6 (from press summaries, not the
//! gazette), and the cut-over date between the two lists is approximate (中华田园犬 was delisted in
//! 2020; reported on 2020-09-01).

use jiayuan_domain::Date;

use crate::law::CivilDate;

/// A breed on a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breed {
    /// Stable code, snake_case.
    pub code: &'static str,
    /// Chinese name as published.
    pub name_zh: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Other names people write on forms.
    pub aliases: &'static [&'static str],
}

/// One version of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BannedBreedList {
    /// Version label.
    pub version: &'static str,
    /// Division code of the jurisdiction (深圳市 440300).
    pub jurisdiction: &'static str,
    /// First day in force.
    pub valid_from: CivilDate,
    /// Last day in force (`None`: still in force).
    pub valid_to: Option<CivilDate>,
    /// Where it comes from.
    pub legal_basis: &'static str,
    /// The banned breeds.
    pub breeds: &'static [Breed],
}

const fn b(
    code: &'static str,
    name_zh: &'static str,
    name_en: &'static str,
    aliases: &'static [&'static str],
) -> Breed {
    Breed { code, name_zh, name_en, aliases }
}

/// The 25 breeds of the current list.
const CURRENT_25: [Breed; 25] = [
    b("tibetan_mastiff", "西藏獒犬", "Tibetan Mastiff", &["藏獒"]),
    b("american_pit_bull_terrier", "比特斗牛梗", "American Pit Bull Terrier", &["比特犬", "比特"]),
    b("dogo_argentino", "阿根廷杜高", "Dogo Argentino", &["杜高犬", "阿根廷杜高犬"]),
    b("fila_brasileiro", "巴西非拉", "Fila Brasileiro", &["巴西菲勒", "巴西獒"]),
    b("tosa", "日本土佐", "Tosa", &["土佐犬", "日本土佐犬"]),
    b("central_asian_shepherd", "中亚牧羊犬", "Central Asian Shepherd Dog", &[]),
    b("chuandong", "川东犬(重庆犬)", "Chuandong Hound (Chongqing Dog)", &["川东犬", "重庆犬"]),
    b("borzoi", "苏俄牧羊犬", "Borzoi", &["苏俄猎狼犬"]),
    b("bull_terrier", "牛头梗", "Bull Terrier", &[]),
    b("english_mastiff", "英国马士提夫", "English Mastiff", &["马士提夫", "英国獒犬"]),
    b("cane_corso", "意大利卡斯罗", "Cane Corso", &["卡斯罗", "卡斯罗犬"]),
    b("great_dane", "大丹犬", "Great Dane", &["大丹"]),
    b("caucasian_shepherd", "俄罗斯高加索", "Caucasian Shepherd Dog", &["高加索犬", "高加索"]),
    b("neapolitan_mastiff", "意大利扭玻利顿", "Neapolitan Mastiff", &["那不勒斯獒", "那不勒斯獒犬"]),
    b("staffordshire_bull_terrier", "斯塔福梗", "Staffordshire Bull Terrier", &["斯塔福郡斗牛梗"]),
    b("afghan_hound", "阿富汗猎犬", "Afghan Hound", &[]),
    b("pointer", "波音达", "Pointer", &["波音达猎犬", "指示犬"]),
    b("weimaraner", "威玛猎犬", "Weimaraner", &["威玛犬"]),
    b("setter", "雪达犬", "Setter", &["塞特犬"]),
    b("bloodhound", "寻血猎犬", "Bloodhound", &[]),
    b("basenji", "巴仙吉", "Basenji", &["巴仙吉犬", "贝生吉犬"]),
    b("akita", "秋田犬", "Akita", &["秋田"]),
    b("newfoundland", "纽芬兰犬", "Newfoundland", &[]),
    b("bedlington_terrier", "贝林登梗", "Bedlington Terrier", &[]),
    b("kerry_blue_terrier", "凯丽蓝梗", "Kerry Blue Terrier", &["凯利蓝梗"]),
];

/// The 27 breeds of the superseded list: the current 25 plus 英国斗牛犬 and 中华田园犬.
const FORMER_27: [Breed; 27] = {
    let mut all = [CURRENT_25[0]; 27];
    let mut i = 0;
    while i < 25 {
        all[i] = CURRENT_25[i];
        i += 1;
    }
    all[25] = b("english_bulldog", "英国斗牛犬", "English Bulldog", &["斗牛犬"]);
    all[26] = b("chinese_rural_dog", "中华田园犬", "Chinese Rural Dog", &["田园犬", "土狗"]);
    all
};

/// Every version of Shenzhen's banned-breed list, oldest first.
pub const BANNED_BREED_LISTS: [BannedBreedList; 2] = [
    BannedBreedList {
        version: "SZ-27",
        jurisdiction: "440300",
        valid_from: CivilDate::new(2007, 1, 1),
        valid_to: Some(CivilDate::new(2020, 8, 31)),
        legal_basis: "《深圳市养犬管理条例》及市主管部门公布的禁养犬只品种目录（27种，含英国斗牛犬、中华田园犬；起止日期待核实）",
        breeds: &FORMER_27,
    },
    BannedBreedList {
        version: "SZ-25",
        jurisdiction: "440300",
        valid_from: CivilDate::new(2020, 9, 1),
        valid_to: None,
        legal_basis: "《深圳市养犬管理条例》及市场监管部门公布的禁养犬只品种目录（25种，中华田园犬解禁；生效日期待核实）",
        breeds: &CURRENT_25,
    },
];

/// The list in force on `day`, if any.
pub fn list_in_force(day: Date) -> Option<&'static BannedBreedList> {
    BANNED_BREED_LISTS.iter().find(|l| l.valid_from.date() <= day && l.valid_to.is_none_or(|to| day <= to.date()))
}

/// Text as compared: no whitespace, ASCII lower case, full-width parentheses as ASCII.
fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

impl BannedBreedList {
    /// The banned breed that `breed` (a code, Chinese or English name, or alias) denotes.
    pub fn find(&self, breed: &str) -> Option<&'static Breed> {
        let wanted = normalise(breed);
        self.breeds.iter().find(|b| {
            [b.code, b.name_zh, b.name_en].iter().chain(b.aliases.iter()).any(|name| normalise(name) == wanted)
        })
    }
}

/// The list in force on `day` and the banned breed `breed` denotes on it.
pub fn banned_on(day: Date, breed: &str) -> Option<(&'static BannedBreedList, &'static Breed)> {
    let list = list_in_force(day)?;
    list.find(breed).map(|b| (list, b))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn day(s: &str) -> Date {
        s.parse().expect("valid test date")
    }

    #[test]
    fn the_lists_are_consistent_data() {
        assert_eq!(BANNED_BREED_LISTS[1].breeds.len(), 25);
        assert_eq!(BANNED_BREED_LISTS[0].breeds.len(), 27);
        for list in &BANNED_BREED_LISTS {
            let codes: HashSet<_> = list.breeds.iter().map(|b| b.code).collect();
            assert_eq!(codes.len(), list.breeds.len(), "{} has duplicate codes", list.version);
            assert!(!list.legal_basis.is_empty());
        }
        // The versions follow each other without gap or overlap.
        let [old, new] = &BANNED_BREED_LISTS;
        assert_eq!(old.valid_to.map(|d| d.date().add_days(1)), Some(new.valid_from.date()));
    }

    #[test]
    fn the_list_in_force_decides() {
        assert_eq!(list_in_force(day("2020-08-31")).map(|l| l.version), Some("SZ-27"));
        assert_eq!(list_in_force(day("2020-09-01")).map(|l| l.version), Some("SZ-25"));
        assert_eq!(list_in_force(day("2006-12-31")), None);
        assert!(banned_on(day("2019-05-01"), "中华田园犬").is_some());
        assert!(banned_on(day("2026-03-02"), "中华田园犬").is_none());
        assert!(banned_on(day("2026-03-02"), "英国斗牛犬").is_none());
    }

    #[test]
    fn breeds_are_found_by_code_name_and_alias() {
        let today = day("2026-03-02");
        for text in ["藏獒", "西藏獒犬", "tibetan_mastiff", " Tibetan  Mastiff "] {
            assert_eq!(banned_on(today, text).map(|(_, b)| b.code), Some("tibetan_mastiff"), "{text}");
        }
        assert_eq!(banned_on(today, "川东犬（重庆犬）").map(|(_, b)| b.code), Some("chuandong"));
        for allowed in ["柯基", "金毛寻回犬", "泰迪", "中华田园犬", "牛头"] {
            assert!(banned_on(today, allowed).is_none(), "{allowed}");
        }
    }
}
