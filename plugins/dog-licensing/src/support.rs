//! Small helpers shared by the hooks: typed views of record data, paged queries, birth dates.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use jiayuan_domain::DocKind;
use jiayuan_domain::{Date, Person};
use jiayuan_plugin_api::{FieldViolation, HostContext, PluginError, Record, RecordQuery};

/// Records asked for per page; the host caps pages (at 1000 today), so every read pages.
pub(crate) const PAGE: u32 = 500;

/// The data object of a record or call, typed. The host has type-checked it against the
/// manifest, so a failure here is a contract bug, not bad input.
pub(crate) fn typed<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, PluginError> {
    serde_json::from_str(json)
        .map_err(|e| PluginError::Internal(format!("{what} data does not match the manifest: {e}")))
}

/// The data object as a JSON map, to add derived fields to.
pub(crate) fn object(json: &str, what: &str) -> Result<Map<String, Value>, PluginError> {
    typed(json, what)
}

/// Every record matching `query`, reading page by page.
pub(crate) async fn query_all(ctx: &dyn HostContext, mut query: RecordQuery) -> Result<Vec<Record>, PluginError> {
    query.limit = PAGE;
    let mut out: Vec<Record> = Vec::new();
    loop {
        let page = ctx.records().query(&query).await?;
        let Some(last) = page.last().map(|r| r.id) else { break };
        out.extend(page);
        query.after = Some(last);
    }
    Ok(out)
}

/// A violation.
pub(crate) fn violation(field: &str, code: &str, zh: String, en: String) -> FieldViolation {
    FieldViolation::new(field, code, zh, en)
}

/// A person's birth date: the registry's, or the one encoded in a resident identity number.
pub(crate) fn birth_date(person: &Person) -> Option<Date> {
    person.birth_date.or_else(|| {
        let n = &person.doc.number;
        if person.doc.kind != DocKind::ResidentId || n.len() != 18 || !n.is_ascii() {
            return None;
        }
        format!("{}-{}-{}", &n[6..10], &n[10..12], &n[12..14]).parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_domain::{Hukou, IdentityDoc, PersonId};

    #[test]
    fn birth_date_falls_back_to_the_identity_number() {
        let mut p = Person {
            id: PersonId(1),
            name: "王芳".into(),
            doc: IdentityDoc { kind: DocKind::ResidentId, number: "11010519491231002X".into() },
            sex: None,
            birth_date: None,
            hukou: Hukou::Shenzhen,
            phone: None,
            house_id: None,
        };
        assert_eq!(birth_date(&p).map(|d| d.to_string()), Some("1949-12-31".to_owned()));
        p.doc.kind = DocKind::Passport;
        assert_eq!(birth_date(&p), None);
    }
}
