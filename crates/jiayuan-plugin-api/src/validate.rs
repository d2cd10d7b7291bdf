//! Consistency checks of a [`Manifest`], run by the host at load and by the conformance kit.

use std::collections::HashSet;

use crate::audience::{Actor, Audience, Guard};
use crate::manifest::{Anchor, DeadlineAction, FieldDef, FieldType, Manifest, Sensitivity};

/// Checks the declarations of one field (of a kind or a transition's input) named `at`.
fn check_field(at: &str, f: &FieldDef, p: &mut impl FnMut(String)) {
    if f.derived && f.required {
        p(format!("field `{at}` cannot be both derived and required"));
    }
    if let Some(v) = &f.visible_to {
        if v.is_empty() {
            p(format!("field `{at}` is visible to no audience; drop the field or name one"));
        }
        if f.required {
            p(format!("field `{at}` has a restricted audience and so cannot be required"));
        }
    }
    if !f.unmask_by.is_empty() && f.sensitivity != Sensitivity::Sensitive {
        p(format!("field `{at}` names unmasking audiences, but only sensitive fields have them"));
    }
    if f.unmask_by.iter().any(Audience::is_firm) {
        p(format!("field `{at}`: a firm may never unmask a sensitive field"));
    }
    if let Some(v) = &f.visible_to {
        for a in f.unmask_by.iter().filter(|a| !a.is_firm() && !Audience::any_admits(v, a)) {
            p(format!("field `{at}` may be unmasked by `{a}`, which may not see it"));
        }
    }
}

/// Every inconsistency in a manifest, as readable sentences naming the offending ids.
pub fn validate(m: &Manifest) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut p = |s: String| problems.push(s);

    if !is_ident(&m.id, '-') {
        p(format!("plugin id `{}` must be non-empty kebab-case ([a-z0-9-])", m.id));
    }
    let mut kinds = HashSet::new();
    for k in &m.record_kinds {
        if !kinds.insert(k.id.as_str()) {
            p(format!("record kind `{}` is declared twice", k.id));
        }
        if !is_ident(&k.id, '_') {
            p(format!("record kind `{}` must be snake_case ([a-z0-9_])", k.id));
        }
    }
    for k in &m.record_kinds {
        let mut fields = HashSet::new();
        for f in &k.fields {
            if !fields.insert(f.name.as_str()) {
                p(format!("field `{}.{}` is declared twice", k.id, f.name));
            }
            if !is_ident(&f.name, '_') {
                p(format!("field `{}.{}` must be snake_case", k.id, f.name));
            }
            if let FieldType::RecordRef { kind } = &f.ty
                && !kinds.contains(kind.as_str())
            {
                p(format!("field `{}.{}` refers to undeclared record kind `{kind}`", k.id, f.name));
            }
            if let FieldType::AgencyUnitRef { kind } = &f.ty
                && kind != crate::ANY_AGENCY
                && Audience::agency(kind).to_string().parse::<Audience>().is_err()
            {
                p(format!("field `{}.{}` names agency kind `{kind}`, which is not snake_case", k.id, f.name));
            }
            check_field(&format!("{}.{}", k.id, f.name), f, &mut p);
        }
        if k.visible_to.as_ref().is_some_and(Vec::is_empty) {
            p(format!("record kind `{}` is visible to no audience", k.id));
        }
        if k.places.is_empty() {
            p(format!("record kind `{}` names no place its records may sit at", k.id));
        }
        if let Some(parent) = &k.parent
            && !kinds.contains(parent.as_str())
        {
            p(format!("record kind `{}` has undeclared parent kind `{parent}`", k.id));
        }
        for key in &k.keys {
            match k.field(&key.field) {
                None => p(format!("key `{}.{}` is not a field of the kind", k.id, key.field)),
                Some(f) if f.sensitivity == Sensitivity::Sensitive && f.ty.is_low_cardinality() => p(format!(
                    "key `{}.{}` is a sensitive field with few values: its blind index would be a dictionary",
                    k.id, key.field
                )),
                Some(_) => {}
            }
        }
        let wf = &k.workflow;
        let mut states = HashSet::new();
        for s in &wf.states {
            if !states.insert(s.id.as_str()) {
                p(format!("state `{}.{}` is declared twice", k.id, s.id));
            }
        }
        if !states.contains(wf.initial.as_str()) {
            p(format!("initial state `{}` of `{}` is not declared", wf.initial, k.id));
        }
        let mut transitions = HashSet::new();
        for t in &wf.transitions {
            if !transitions.insert(t.id.as_str()) {
                p(format!("transition `{}.{}` is declared twice", k.id, t.id));
            }
            for s in t.from.iter().chain(t.to.iter()) {
                if !states.contains(s.as_str()) {
                    p(format!("transition `{}.{}` uses undeclared state `{s}`", k.id, t.id));
                }
            }
            if t.actors.is_empty() {
                p(format!("transition `{}.{}` names no actor who may fire it", k.id, t.id));
            }
            if t.actors.contains(&Actor::Audience(Audience::Auditor)) {
                p(format!("transition `{}.{}`: the auditor reads and never acts", k.id, t.id));
            }
            for f in &t.input {
                match k.field(&f.name) {
                    None => {
                        p(format!("input `{}` of transition `{}.{}` is not a field of the kind", f.name, k.id, t.id))
                    }
                    Some(own)
                        if own.ty != f.ty || own.sensitivity != f.sensitivity || own.visible_to != f.visible_to =>
                    {
                        p(format!(
                            "input `{}` of transition `{}.{}` must have the kind field's type, sensitivity and audiences",
                            f.name, k.id, t.id
                        ))
                    }
                    Some(_) => check_field(&format!("{}.{}.{}", k.id, t.id, f.name), f, &mut p),
                }
            }
            for g in &t.guards {
                if let Guard::LeadAgency(field) = g
                    && !matches!(k.field(field).map(|f| &f.ty), Some(FieldType::AgencyUnitRef { .. }))
                {
                    p(format!(
                        "transition `{}.{}` is guarded by the lead agency of `{field}`, which is not an agency-unit field",
                        k.id, t.id
                    ));
                }
            }
        }
    }
    let mut rules = HashSet::new();
    for r in &m.deadlines {
        if !rules.insert(r.id.as_str()) {
            p(format!("deadline rule `{}` is declared twice", r.id));
        }
        let Some(kind) = m.kind(&r.kind) else {
            p(format!("deadline rule `{}` applies to undeclared kind `{}`", r.id, r.kind));
            continue;
        };
        for s in &r.in_states {
            if !kind.workflow.has_state(s) {
                p(format!("deadline rule `{}` names undeclared state `{s}` of `{}`", r.id, r.kind));
            }
        }
        if let Anchor::Field(f) = &r.anchor {
            match kind.field(f).map(|f| &f.ty) {
                Some(FieldType::Date | FieldType::DateTime) => {}
                Some(_) => p(format!("deadline rule `{}` anchors on `{f}`, which is not a date field", r.id)),
                None => p(format!("deadline rule `{}` anchors on undeclared field `{f}`", r.id)),
            }
        }
        if let DeadlineAction::Transition { transition } = &r.action {
            match kind.workflow.transition(transition) {
                None => p(format!("deadline rule `{}` fires undeclared transition `{transition}`", r.id)),
                Some(t) if !t.fired_by(&Actor::System) => {
                    p(format!("deadline rule `{}` fires `{transition}`, which the system may not fire", r.id))
                }
                Some(_) => {}
            }
        }
    }
    let mut kpis = HashSet::new();
    for k in &m.kpis {
        if !kpis.insert(k.id.as_str()) {
            p(format!("KPI `{}` is declared twice", k.id));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn is_ident(s: &str, sep: char) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == sep)
        && !s.starts_with(sep)
        && !s.ends_with(sep)
}

impl Manifest {
    /// Checks the manifest's internal consistency; see [`validate`].
    pub fn validate(&self) -> Result<(), Vec<String>> {
        validate(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FieldDef, Guard, KeyDef, RecordKind, StateDef, TransitionDef, Workflow};

    fn manifest() -> Manifest {
        let workflow = Workflow::new(
            "open",
            vec![StateDef::new("open", "待办", "Open"), StateDef::new("closed", "办结", "Closed")],
            vec![TransitionDef::new("close", "办结", "Close", &["open"], "closed").by_system()],
        );
        let kind = RecordKind::new("complaint", "投诉", "Complaint", workflow).with_field(FieldDef::new(
            "room",
            "房号",
            "Room",
            FieldType::Text { max_chars: 10 },
        ));
        Manifest::new("noise-log", "噪音", "Noise", "1.0.0").with_kind(kind)
    }

    #[test]
    fn a_consistent_manifest_passes() {
        assert_eq!(manifest().validate(), Ok(()));
    }

    #[test]
    fn each_inconsistency_is_named() {
        let mut m = manifest();
        m.id = "Noise Log".into();
        m.record_kinds[0].workflow.initial = "draft".into();
        m.record_kinds[0].workflow.transitions[0].to = Some("gone".into());
        m.record_kinds[0].keys.push(KeyDef::unique("nope"));
        let problems = m.validate().expect_err("inconsistent");
        let text = problems.join("\n");
        for needle in ["`Noise Log`", "initial state `draft`", "undeclared state `gone`", "key `complaint.nope`"] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(problems.len(), 4, "{text}");
    }

    #[test]
    fn need_to_know_declarations_are_checked() {
        let mut m = manifest();
        let grade = FieldType::Choice { options: vec![crate::ChoiceOption::new("a", "甲", "A")] };
        let k = &mut m.record_kinds[0];
        k.fields.push(
            FieldDef::new("reason", "原因", "Reason", grade.clone())
                .sensitivity(Sensitivity::Sensitive)
                .visible_to(&[Audience::District]),
        );
        k.fields.push(FieldDef::new("hidden", "隐", "Hidden", grade.clone()).visible_to(&[Audience::District]));
        k.fields.push(
            FieldDef::new("secret", "密", "Secret", FieldType::Text { max_chars: 9 })
                .optional()
                .sensitivity(Sensitivity::Sensitive)
                .visible_to(&[Audience::District])
                .unmask_by(&[Audience::Firm, Audience::agency("police")]),
        );
        k.keys.push(KeyDef::lookup("reason"));
        k.workflow.transitions[0] = k.workflow.transitions[0].clone().guard(Guard::LeadAgency("room".into()));
        let text = m.validate().expect_err("inconsistent").join("\n");
        for needle in [
            "`complaint.reason` has a restricted audience and so cannot be required",
            "`complaint.hidden` has a restricted audience",
            "a firm may never unmask",
            "unmasked by `agency:police`, which may not see it",
            "blind index would be a dictionary",
            "lead agency of `room`, which is not an agency-unit field",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }
}
