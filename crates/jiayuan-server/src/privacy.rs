//! 个人信息保护 masking of personal data on its way out of the API.
//!
//! Record data is not masked here: every record answer is made by the host's one projection
//! (`jiayuan_schema::projection`, applied by the engine) for the caller's audience. Here:
//! - registry answers mask what the registry marks personal (a firm's contact phone and legal
//!   representative, [`firm_view`]);
//! - every error body and every logged error cause is scrubbed of identity-number- and
//!   phone-shaped digit runs ([`scrub`]), and values that serde or axum quote back from a
//!   malformed request are masked ([`redact_echoed`]).
//!
//! Unmasking is a separate, audited request: [`UnmaskRequest`] carries a typed reason
//! ([`UnmaskReason`]) and an optional short note; the route needs the unmask permission, and the
//! audit event (who, what, why, which fields; never the values) commits before the clear answer.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use jiayuan_domain::{EstateId, PropertyFirm, Sensitivity, Timestamp, mask};
use jiayuan_store::{AuditTarget, NewAudit};

use crate::error::ApiError;

/// A firm as the registry endpoint shows it: the 法定代表人 legal representative and the contact
/// phone are personal information and masked.
pub(crate) fn firm_view(f: &PropertyFirm) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "credit_code": f.credit_code,
        "credit_code_override": f.credit_code_override,
        "kind": f.kind,
        "legal_representative": f.legal_representative.as_deref().map(|v| mask(v, Sensitivity::Personal)),
        "contact_phone": f.contact_phone.as_deref().map(|v| mask(v, Sensitivity::Personal)),
    })
}

/// Fewest consecutive digits [`scrub`] treats as an identifier: landline numbers have 7 or 8,
/// mobiles 11, identity numbers 15 or 18. Dates, record ids and limits stay readable.
const MIN_ID_DIGITS: usize = 7;

/// Masks every identifier-shaped run in free text: at least [`MIN_ID_DIGITS`] consecutive ASCII
/// digits, together with the ASCII letters glued to them (`44030319900304123X`, `E12345678`).
///
/// For error bodies and logged causes, whose text may echo input from anywhere (a choice value,
/// an unknown field name, a unique key). Applied on top of, never instead of, field masking.
pub fn scrub(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_alphanumeric() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        if longest_digit_run(&token) >= MIN_ID_DIGITS {
            out.push_str(&mask(&token, Sensitivity::Sensitive));
        } else {
            out.push_str(&token);
        }
    }
    out
}

fn longest_digit_run(token: &str) -> usize {
    token.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0)
}

/// Masks the input values that serde and axum quote back in their rejection texts: string
/// literals (`invalid type: string "…"`) and the names after `unknown variant` / `unknown field`.
/// Then [`scrub`]s the rest.
pub fn redact_echoed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        let (before, after_open) = rest.split_at(open);
        let after_open = &after_open[1..];
        let Some(close) = after_open.find(quote) else {
            // An unterminated quote: mask whatever follows it.
            out.push_str(before);
            out.push(quote);
            out.push_str(&mask(after_open, Sensitivity::Sensitive));
            rest = "";
            break;
        };
        let inner = &after_open[..close];
        let echoes_input = quote == '"' || before.ends_with("unknown variant ") || before.ends_with("unknown field ");
        out.push_str(before);
        out.push(quote);
        out.push_str(&if echoes_input { mask(inner, Sensitivity::Sensitive) } else { inner.to_owned() });
        out.push(quote);
        rest = &after_open[close + 1..];
    }
    out.push_str(rest);
    scrub(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_identifier_runs_only() {
        assert_eq!(scrub("`13812345678` is not one of a, b"), "`*******5678` is not one of a, b");
        assert_eq!(scrub("id 44030319900304123X taken"), "id **************123X taken");
        assert_eq!(scrub("estate 12 on 2026-11-30, limit 1..=200"), "estate 12 on 2026-11-30, limit 1..=200");
    }

    #[test]
    fn redacts_what_serde_echoes() {
        let text = r#"data.name: invalid type: string "张三丰", expected i64; unknown variant `13812345678`, expected one of `resident_id`, `passport`"#;
        let red = redact_echoed(text);
        assert!(!red.contains("张三丰") && !red.contains("13812345678"), "{red}");
        assert!(red.contains("`resident_id`") && red.contains("data.name"), "{red}");
    }
}

/// 查看原因 why someone needs personal data in clear. PIPL asks that processing be necessary for
/// a stated purpose: each unmask names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnmaskReason {
    /// 联系当事人 contacting the person about this matter.
    ContactPerson,
    /// 办理业务 handling this record's case (inspection, mediation, licensing).
    CaseHandling,
    /// 更正数据 checking or correcting the data.
    DataCorrection,
    /// 依法调取 a lawful request by police, court or another authority.
    LawfulRequest,
}

/// Longest note accepted with an unmask.
pub const MAX_UNMASK_NOTE_CHARS: usize = 200;

/// The body of an unmask request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmaskRequest {
    /// Why.
    pub reason: UnmaskReason,
    /// A short note (case number, whom it was requested by); digit runs shaped like identity
    /// or phone numbers are masked before it is stored.
    #[serde(default)]
    pub note: Option<String>,
}

impl UnmaskRequest {
    /// Checks the note's length.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.note.as_deref().is_some_and(|n| n.chars().count() > MAX_UNMASK_NOTE_CHARS) {
            return Err(ApiError::bad_request(
                "note",
                "too_long",
                format!("备注不能超过 {MAX_UNMASK_NOTE_CHARS} 个字"),
                format!("`note` must be at most {MAX_UNMASK_NOTE_CHARS} characters"),
            ));
        }
        Ok(())
    }

    /// The audit event of this unmask: action, object, the reason, the scrubbed note and the
    /// names (never the values) of the fields shown in clear.
    pub fn audit_event(
        &self,
        actor: &str,
        action: &str,
        object: String,
        estate_id: Option<EstateId>,
        fields: &[&str],
        at: Timestamp,
    ) -> NewAudit {
        NewAudit {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: AuditTarget::Object(object),
            estate_id,
            detail_json: json!({
                "reason": self.reason,
                "note": self.note.as_deref().map(scrub),
                "fields": fields,
            })
            .to_string(),
        }
    }
}
