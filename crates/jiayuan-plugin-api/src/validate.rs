//! Consistency checks of a [`Manifest`], run by the host at load and by the conformance kit.

use std::collections::HashSet;

use crate::manifest::{Anchor, DeadlineAction, FieldType, Manifest};

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
            if f.derived && f.required {
                p(format!("field `{}.{}` cannot be both derived and required", k.id, f.name));
            }
        }
        if let Some(parent) = &k.parent
            && !kinds.contains(parent.as_str())
        {
            p(format!("record kind `{}` has undeclared parent kind `{parent}`", k.id));
        }
        for key in &k.keys {
            if !fields.contains(key.field.as_str()) {
                p(format!("key `{}.{}` is not a field of the kind", k.id, key.field));
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
            for s in t.from.iter().chain(std::iter::once(&t.to)) {
                if !states.contains(s.as_str()) {
                    p(format!("transition `{}.{}` uses undeclared state `{s}`", k.id, t.id));
                }
            }
            if t.actors.is_empty() {
                p(format!("transition `{}.{}` names no actor who may fire it", k.id, t.id));
            }
            for f in &t.input {
                if !fields.contains(f.name.as_str()) {
                    p(format!("input `{}` of transition `{}.{}` is not a field of the kind", f.name, k.id, t.id));
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
                Some(t) if !t.actors.contains(&crate::Actor::System) => {
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
    use crate::{Actor, FieldDef, Label, RecordKind, StateDef, TransitionDef, Workflow};

    fn manifest() -> Manifest {
        Manifest {
            id: "noise-log".into(),
            name: Label::new("噪音", "Noise"),
            version: "1.0.0".into(),
            record_kinds: vec![RecordKind {
                id: "complaint".into(),
                label: Label::new("投诉", "Complaint"),
                fields: vec![FieldDef::new("room", "房号", "Room", FieldType::Text { max_chars: 10 })],
                parent: None,
                workflow: Workflow {
                    initial: "open".into(),
                    states: vec![StateDef::new("open", "待办", "Open"), StateDef::new("closed", "办结", "Closed")],
                    transitions: vec![TransitionDef::new(
                        "close",
                        "办结",
                        "Close",
                        &["open"],
                        "closed",
                        &[Actor::System],
                    )],
                },
                keys: vec![],
            }],
            deadlines: vec![],
            kpis: vec![],
        }
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
        m.record_kinds[0].workflow.transitions[0].to = "gone".into();
        m.record_kinds[0].keys.push(crate::KeyDef { field: "nope".into(), unique: true });
        let problems = m.validate().expect_err("inconsistent");
        let text = problems.join("\n");
        for needle in ["`Noise Log`", "initial state `draft`", "undeclared state `gone`", "key `complaint.nope`"] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(problems.len(), 4, "{text}");
    }
}
