//! The ledger sheet of every registry kind: its columns (Chinese and English headers, whether
//! required, type, sensitivity, notes). Imports read them, templates and exports write them.

use jiayuan_domain::Sensitivity;
use jiayuan_ledger::{CellKind, Choice, Column, Sheet};

/// The registry kinds that can be imported and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// 行政区划 divisions (versioned).
    Divisions,
    /// 网格 grid cells.
    GridCells,
    /// 小区 estates.
    Estates,
    /// 物业企业 firms.
    Firms,
    /// 服务委托 service assignments.
    Assignments,
    /// 楼栋 buildings.
    Buildings,
    /// 房屋 houses.
    Houses,
    /// 人员 persons (with their residence, optionally).
    Persons,
    /// 居住关系 occupancy.
    Occupancy,
    /// 租赁 leases.
    Leases,
}

impl ImportKind {
    /// Every kind, in the order an installation imports them.
    pub const ALL: [ImportKind; 10] = [
        ImportKind::Divisions,
        ImportKind::Firms,
        ImportKind::Estates,
        ImportKind::GridCells,
        ImportKind::Assignments,
        ImportKind::Buildings,
        ImportKind::Houses,
        ImportKind::Persons,
        ImportKind::Occupancy,
        ImportKind::Leases,
    ];

    /// The snake_case name (CLI and API).
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Divisions => "divisions",
            ImportKind::GridCells => "grid_cells",
            ImportKind::Estates => "estates",
            ImportKind::Firms => "firms",
            ImportKind::Assignments => "assignments",
            ImportKind::Buildings => "buildings",
            ImportKind::Houses => "houses",
            ImportKind::Persons => "persons",
            ImportKind::Occupancy => "occupancy",
            ImportKind::Leases => "leases",
        }
    }

    /// Parses the name (`grid-cells` is accepted for `grid_cells`).
    pub fn parse(s: &str) -> Option<ImportKind> {
        let s = s.replace('-', "_");
        ImportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

const fn col(key: &'static str, zh: &'static str, en: &'static str, required: bool, kind: CellKind) -> Column {
    Column { key, zh, en, required, kind, sensitivity: Sensitivity::Public, note_zh: "", note_en: "" }
}

const fn personal(mut c: Column) -> Column {
    c.sensitivity = Sensitivity::Personal;
    c
}

const fn note(mut c: Column, zh: &'static str, en: &'static str) -> Column {
    c.note_zh = zh;
    c.note_en = en;
    c
}

const TEXT: CellKind = CellKind::Text { max_chars: 200 };
const NAME: CellKind = CellKind::Text { max_chars: 100 };
const DIVISION: CellKind = CellKind::Code { min_len: 12, max_len: 12 };
const ESTATE_CODE: CellKind = CellKind::Text { max_chars: 32 };

const GRID_KINDS: &[Choice] = &[
    Choice { value: "basic", zh: "基础网格", en: "Basic" },
    Choice { value: "dedicated", zh: "专属网格", en: "Dedicated" },
];
const ESTATE_KINDS: &[Choice] = &[
    Choice { value: "estate", zh: "住宅小区", en: "Estate" },
    Choice { value: "urban_village", zh: "城中村", en: "Urban village" },
    Choice { value: "building_group", zh: "楼栋群", en: "Building group" },
];
const MANAGEMENT: &[Choice] = &[
    Choice { value: "property_managed", zh: "物业管理", en: "Property managed" },
    Choice { value: "unmanaged", zh: "无物业", en: "Unmanaged" },
    Choice { value: "owner_self_managed", zh: "业主自管", en: "Owner self-managed" },
    Choice { value: "fallback_state_operator", zh: "兜底国企", en: "Fallback state operator" },
];
const ONBOARDING: &[Choice] = &[
    Choice { value: "surveyed", zh: "已摸排", en: "Surveyed" },
    Choice { value: "targeted", zh: "列入目标", en: "Targeted" },
    Choice { value: "negotiating", zh: "协商中", en: "Negotiating" },
    Choice { value: "owner_vote", zh: "业主表决", en: "Owner vote" },
    Choice { value: "agreed", zh: "已同意", en: "Agreed" },
    Choice { value: "contract_signed", zh: "已签约", en: "Contract signed" },
    Choice { value: "onboarded", zh: "已进驻", en: "Onboarded" },
    Choice { value: "refused", zh: "拒绝", en: "Refused" },
    Choice { value: "deferred", zh: "暂缓", en: "Deferred" },
];
const FIRM_KINDS: &[Choice] = &[
    Choice { value: "property_firm", zh: "物业服务企业", en: "Property firm" },
    Choice { value: "fallback_state_operator", zh: "兜底国企", en: "Fallback state operator" },
];
const HOUSE_USES: &[Choice] = &[
    Choice { value: "self_occupied", zh: "自住", en: "Self-occupied" },
    Choice { value: "rented", zh: "出租", en: "Rented" },
    Choice { value: "vacant", zh: "空置", en: "Vacant" },
    Choice { value: "commercial", zh: "商用", en: "Commercial" },
    Choice { value: "dormitory", zh: "宿舍", en: "Dormitory" },
];
const DOC_KINDS: &[Choice] = &[
    Choice { value: "resident_id", zh: "居民身份证", en: "Resident ID" },
    Choice { value: "hk_mo_tw_residence_permit", zh: "港澳台居民居住证", en: "HK/MO/TW residence permit" },
    Choice { value: "home_return_permit", zh: "港澳居民来往内地通行证", en: "Home-return permit" },
    Choice {
        value: "taiwan_compatriot_permit", zh: "台湾居民来往大陆通行证", en: "Taiwan compatriot permit"
    },
    Choice {
        value: "foreign_permanent_resident", zh: "外国人永久居留身份证", en: "Foreign permanent resident ID"
    },
    Choice { value: "passport", zh: "护照", en: "Passport" },
];
const SEXES: &[Choice] =
    &[Choice { value: "male", zh: "男", en: "Male" }, Choice { value: "female", zh: "女", en: "Female" }];
const HUKOU: &[Choice] = &[
    Choice { value: "shenzhen", zh: "深圳户籍", en: "Shenzhen" },
    Choice { value: "non_shenzhen", zh: "非深户籍", en: "Non-Shenzhen" },
    Choice { value: "hk_mo_tw", zh: "港澳台", en: "HK/MO/TW" },
    Choice { value: "foreign", zh: "外籍", en: "Foreign" },
];
const RELATIONS: &[Choice] = &[
    Choice { value: "owner", zh: "业主", en: "Owner" },
    Choice { value: "head", zh: "户主", en: "Head" },
    Choice { value: "spouse", zh: "配偶", en: "Spouse" },
    Choice { value: "child", zh: "子女", en: "Child" },
    Choice { value: "parent", zh: "父母", en: "Parent" },
    Choice { value: "relative", zh: "其他亲属", en: "Relative" },
    Choice { value: "tenant", zh: "租客", en: "Tenant" },
    Choice { value: "employee", zh: "员工宿舍", en: "Employee" },
    Choice { value: "other", zh: "其他", en: "Other" },
];

const DOC_NUMBER: Column = note(
    personal(col("doc_number", "证件号码", "Document number", true, CellKind::Code { min_len: 8, max_len: 18 })),
    "身份证 18 位（末位可为 X）；请设为文本格式",
    "18 characters for a resident ID (last may be X); format the column as Text",
);

static DIVISIONS: Sheet = Sheet {
    name_zh: "行政区划",
    name_en: "Divisions",
    columns: &[
        note(col("code", "区划代码", "Code", true, DIVISION), "12 位统计用区划代码", "12-digit statistical code"),
        col("name_zh", "名称", "Name", true, NAME),
        col("valid_from", "生效日期", "Valid from", true, CellKind::Date),
        col("valid_to", "失效日期", "Valid to", false, CellKind::Date),
    ],
};

static GRID_CELLS: Sheet = Sheet {
    name_zh: "网格",
    name_en: "Grid cells",
    columns: &[
        note(
            col("code", "网格编码", "Code", true, CellKind::Code { min_len: 15, max_len: 15 }),
            "15 位：社区代码 12 位 + 序号 3 位",
            "15 digits: community code 12 + sequence 3",
        ),
        col("name", "网格名称", "Name", true, NAME),
        col("kind", "网格类型", "Kind", true, CellKind::Choice(GRID_KINDS)),
        note(col("estate_code", "小区编码", "Estate code", false, ESTATE_CODE), "专属网格填写", "for dedicated cells"),
        col("valid_from", "生效日期", "Valid from", true, CellKind::Date),
        col("valid_to", "失效日期", "Valid to", false, CellKind::Date),
    ],
};

static ESTATES: Sheet = Sheet {
    name_zh: "小区",
    name_en: "Estates",
    columns: &[
        note(
            col("code", "小区编码", "Estate code", true, ESTATE_CODE),
            "区里分配的稳定编码",
            "the district's stable code",
        ),
        col("name", "小区名称", "Name", true, NAME),
        col("kind", "类型", "Kind", true, CellKind::Choice(ESTATE_KINDS)),
        note(col("community", "社区代码", "Community code", true, DIVISION), "12 位", "12 digits"),
        col("address", "地址", "Address", false, TEXT),
        col("management", "管理状态", "Management", true, CellKind::Choice(MANAGEMENT)),
        col("onboarding", "引入物业阶段", "Onboarding stage", false, CellKind::Choice(ONBOARDING)),
        col("households", "户数", "Households", true, CellKind::Integer { min: 0, max: 1_000_000 }),
    ],
};

static FIRMS: Sheet = Sheet {
    name_zh: "物业企业",
    name_en: "Firms",
    columns: &[
        note(
            col("credit_code", "统一社会信用代码", "Credit code", true, CellKind::Code { min_len: 18, max_len: 18 }),
            "18 位（GB 32100）",
            "18 characters (GB 32100)",
        ),
        col("name", "企业名称", "Name", true, NAME),
        col("kind", "企业类型", "Kind", true, CellKind::Choice(FIRM_KINDS)),
        personal(col("legal_representative", "法定代表人", "Legal representative", false, NAME)),
        personal(col("contact_phone", "联系电话", "Contact phone", false, CellKind::Code { min_len: 11, max_len: 11 })),
        note(
            col("credit_code_override", "校验位例外原因", "Check-character override", false, TEXT),
            "校验位不符但确属在用代码时填写",
            "when a code in use fails its check character",
        ),
    ],
};

static ASSIGNMENTS: Sheet = Sheet {
    name_zh: "服务委托",
    name_en: "Service assignments",
    columns: &[
        col("estate_code", "小区编码", "Estate code", true, ESTATE_CODE),
        col(
            "firm_credit_code",
            "企业统一社会信用代码",
            "Firm credit code",
            true,
            CellKind::Code { min_len: 18, max_len: 18 },
        ),
        col("from", "开始日期", "From", true, CellKind::Date),
        col("to", "结束日期", "To", false, CellKind::Date),
        col("contract_ref", "合同编号", "Contract reference", false, TEXT),
    ],
};

static BUILDINGS: Sheet = Sheet {
    name_zh: "楼栋",
    name_en: "Buildings",
    columns: &[
        col("estate_code", "小区编码", "Estate code", true, ESTATE_CODE),
        col("name", "楼栋", "Building", true, NAME),
        col("floors", "层数", "Floors", true, CellKind::Integer { min: 1, max: 200 }),
        note(
            col("height_m", "高度（米）", "Height (m)", true, CellKind::Decimal { min: 0.1, max: 700.0 }),
            "住宅 27 米以上为高层",
            "residential above 27 m is high-rise",
        ),
        col("elevator", "有无电梯", "Elevator", true, CellKind::Bool),
    ],
};

static HOUSES: Sheet = Sheet {
    name_zh: "房屋",
    name_en: "Houses",
    columns: &[
        col("estate_code", "小区编码", "Estate code", true, ESTATE_CODE),
        col("building", "楼栋", "Building", true, NAME),
        col("room", "房号", "Room", true, NAME),
        col("area_m2", "面积（平方米）", "Area (m²)", true, CellKind::Decimal { min: 0.0, max: 100_000.0 }),
        col("use", "用途", "Use", true, CellKind::Choice(HOUSE_USES)),
        note(
            col(
                "address_code",
                "标准地址编码",
                "Standard-address code",
                false,
                CellKind::Code { min_len: 25, max_len: 25 },
            ),
            "25 位，请设为文本格式",
            "25 digits; format the column as Text",
        ),
    ],
};

static PERSONS: Sheet = Sheet {
    name_zh: "人员",
    name_en: "Persons",
    columns: &[
        personal(col("name", "姓名", "Name", true, NAME)),
        col("doc_kind", "证件类型", "Document kind", false, CellKind::Choice(DOC_KINDS)),
        DOC_NUMBER,
        col("sex", "性别", "Sex", false, CellKind::Choice(SEXES)),
        personal(col("birth_date", "出生日期", "Birth date", false, CellKind::Date)),
        col("hukou", "户籍", "Hukou", true, CellKind::Choice(HUKOU)),
        personal(col("phone", "手机号码", "Mobile phone", false, CellKind::Code { min_len: 11, max_len: 14 })),
        note(
            col("estate_code", "小区编码", "Estate code", false, ESTATE_CODE),
            "居住地址（可选）",
            "residence (optional)",
        ),
        col("building", "楼栋", "Building", false, NAME),
        col("room", "房号", "Room", false, NAME),
        col("relation", "与户主关系", "Relation", false, CellKind::Choice(RELATIONS)),
        col("moved_in", "入住日期", "Moved in", false, CellKind::Date),
        col("moved_out", "迁出日期", "Moved out", false, CellKind::Date),
        col("primary", "主要居所", "Primary residence", false, CellKind::Bool),
    ],
};

static OCCUPANCY: Sheet = Sheet {
    name_zh: "居住关系",
    name_en: "Occupancy",
    columns: &[
        col("doc_kind", "证件类型", "Document kind", false, CellKind::Choice(DOC_KINDS)),
        DOC_NUMBER,
        col("estate_code", "小区编码", "Estate code", true, ESTATE_CODE),
        col("building", "楼栋", "Building", true, NAME),
        col("room", "房号", "Room", true, NAME),
        col("relation", "与户主关系", "Relation", true, CellKind::Choice(RELATIONS)),
        col("from", "入住日期", "From", true, CellKind::Date),
        col("to", "迁出日期", "To", false, CellKind::Date),
        col("primary", "主要居所", "Primary residence", false, CellKind::Bool),
    ],
};

static LEASES: Sheet = Sheet {
    name_zh: "租赁",
    name_en: "Leases",
    columns: &[
        col("estate_code", "小区编码", "Estate code", true, ESTATE_CODE),
        col("building", "楼栋", "Building", true, NAME),
        col("room", "房号", "Room", true, NAME),
        col("landlord_doc_kind", "出租人证件类型", "Landlord document kind", false, CellKind::Choice(DOC_KINDS)),
        note(
            personal(col(
                "landlord_doc_number",
                "出租人证件号码",
                "Landlord document number",
                true,
                CellKind::Code { min_len: 8, max_len: 18 },
            )),
            "出租人即申报义务人",
            "the landlord is the duty-to-report party",
        ),
        col("from", "起租日期", "From", true, CellKind::Date),
        col("to", "止租日期", "To", false, CellKind::Date),
        col("contract_ref", "合同或备案编号", "Contract reference", false, TEXT),
    ],
};

/// The sheet of a kind.
pub fn sheet_of(kind: ImportKind) -> &'static Sheet {
    match kind {
        ImportKind::Divisions => &DIVISIONS,
        ImportKind::GridCells => &GRID_CELLS,
        ImportKind::Estates => &ESTATES,
        ImportKind::Firms => &FIRMS,
        ImportKind::Assignments => &ASSIGNMENTS,
        ImportKind::Buildings => &BUILDINGS,
        ImportKind::Houses => &HOUSES,
        ImportKind::Persons => &PERSONS,
        ImportKind::Occupancy => &OCCUPANCY,
        ImportKind::Leases => &LEASES,
    }
}
