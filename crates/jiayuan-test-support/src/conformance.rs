//! The conformance kit every plugin's tests run: [`check_manifest`] for what a manifest must
//! promise beyond [`Manifest::validate`], and [`Story`] for running a sequence of creates,
//! transitions and deadline ticks through a [`crate::TestHost`].
//!
//! ```
//! use jiayuan_test_support::conformance::check_manifest;
//! # fn check(plugin: &dyn jiayuan_plugin_api::ServicePlugin) {
//! if let Err(problems) = check_manifest(plugin) {
//!     panic!("manifest problems:\n{}", problems.join("\n"));
//! }
//! # }
//! ```

use std::collections::{BTreeSet, VecDeque};

use jiayuan_plugin_api::{
    Actor, Audience, DeadlineAction, FieldDef, FieldType, Label, Manifest, RecordKind, Sensitivity, ServicePlugin,
};

pub use crate::story::{Story, StoryFailure, StoryReport};

/// Every problem with `plugin`'s manifest, as sentences naming the offending ids:
///
/// - everything [`Manifest::validate`] finds (the host refuses to load such a plugin);
/// - a label (of the item, a kind, field, option, state, transition, deadline alert or KPI) with an
///   empty Chinese or English text;
/// - a field holding personal data by its type (`PersonRef`, `ResidentId`, `Phone`) that is not
///   marked `Personal` or `Sensitive`;
/// - a transition input that differs in type or sensitivity from the field it writes;
/// - a record kind from whose initial state no terminal state can be reached;
/// - a deadline rule that is live in a terminal state (where deadlines never run), or that fires a
///   transition which does not fire from every state the rule is live in (that the transition
///   exists and the `System` actor may fire it is part of [`Manifest::validate`]).
pub fn check_manifest(plugin: &dyn ServicePlugin) -> Result<(), Vec<String>> {
    check(&plugin.manifest())
}

/// Panics with every problem [`check_manifest`] finds, one per line.
pub fn assert_conformant(plugin: &dyn ServicePlugin) {
    if let Err(problems) = check_manifest(plugin) {
        panic!("plugin manifest is not conformant:\n  - {}", problems.join("\n  - "));
    }
}

fn check(m: &Manifest) -> Result<(), Vec<String>> {
    let mut p = m.validate().err().unwrap_or_default();
    if m.version.trim().is_empty() {
        p.push(format!("plugin `{}` declares no version", m.id));
    }
    label(&mut p, &m.name, &format!("plugin `{}`", m.id));
    for k in &m.record_kinds {
        label(&mut p, &k.label, &format!("record kind `{}`", k.id));
        for f in &k.fields {
            field(&mut p, f, &format!("field `{}.{}`", k.id, f.name));
        }
        for s in &k.workflow.states {
            label(&mut p, &s.label, &format!("state `{}.{}`", k.id, s.id));
        }
        for t in &k.workflow.transitions {
            label(&mut p, &t.label, &format!("transition `{}.{}`", k.id, t.id));
            for f in &t.input {
                let what = format!("input `{}` of transition `{}.{}`", f.name, k.id, t.id);
                field(&mut p, f, &what);
                if let Some(decl) = k.field(&f.name)
                    && (decl.ty != f.ty || decl.sensitivity != f.sensitivity)
                {
                    p.push(format!("{what} differs in type or sensitivity from field `{}.{}`", k.id, f.name));
                }
            }
        }
        if !terminal_reachable(k) {
            p.push(format!("record kind `{}` can reach no terminal state from `{}`", k.id, k.workflow.initial));
        }
    }
    for r in &m.deadlines {
        let Some(kind) = m.kind(&r.kind) else { continue };
        for s in &r.in_states {
            if kind.workflow.states.iter().any(|d| &d.id == s && d.terminal) {
                p.push(format!("deadline rule `{}` is live in terminal state `{s}`, where deadlines never run", r.id));
            }
        }
        match &r.action {
            DeadlineAction::Alert { message, .. } => {
                label(&mut p, message, &format!("alert of deadline rule `{}`", r.id))
            }
            DeadlineAction::Transition { transition } => {
                // `validate` already names an undeclared transition and one the System may not fire.
                let Some(t) = kind.workflow.transition(transition) else { continue };
                for s in r.in_states.iter().filter(|s| !t.from.contains(s)) {
                    p.push(format!(
                        "deadline rule `{}` is live in `{s}`, but `{transition}` does not fire from it",
                        r.id
                    ));
                }
            }
            _ => p.push(format!("deadline rule `{}` has an action this kit does not know", r.id)),
        }
    }
    for k in &m.kpis {
        label(&mut p, &k.label, &format!("KPI `{}`", k.id));
    }
    audiences(&mut p, m);
    p.dedup();
    if p.is_empty() { Ok(()) } else { Err(p) }
}

/// Every agency kind a manifest names must be one an installation starts with
/// ([`jiayuan_domain::DEFAULT_AGENCY_KINDS`]) or `*`: a kind nobody registered makes a field
/// visible to nobody and a transition fireable by nobody. And every kind with a transition for
/// audiences must be visible to at least one of them.
fn audiences(p: &mut Vec<String>, m: &Manifest) {
    let known = |kind: &str| {
        kind == jiayuan_plugin_api::ANY_AGENCY
            || jiayuan_domain::DEFAULT_AGENCY_KINDS.iter().any(|(c, _, _)| *c == kind)
    };
    let mut check = |a: &Audience, what: &str| {
        if let Audience::Agency(kind) = a
            && !known(kind)
        {
            p.push(format!("{what} names agency kind `{kind}`, which no installation registers by default"));
        }
    };
    for k in &m.record_kinds {
        for a in k.visible_to.iter().flatten() {
            check(a, &format!("record kind `{}`", k.id));
        }
        for f in &k.fields {
            let what = format!("field `{}.{}`", k.id, f.name);
            for a in f.visible_to.iter().flatten().chain(&f.unmask_by) {
                check(a, &what);
            }
            if let FieldType::AgencyUnitRef { kind } = &f.ty {
                check(&Audience::agency(kind), &what);
            }
        }
        for t in &k.workflow.transitions {
            for a in &t.actors {
                if let Actor::Audience(a) = a {
                    check(a, &format!("transition `{}.{}`", k.id, t.id));
                }
            }
        }
    }
}

fn label(p: &mut Vec<String>, l: &Label, what: &str) {
    if l.zh.trim().is_empty() {
        p.push(format!("{what} has an empty Chinese label"));
    }
    if l.en.trim().is_empty() {
        p.push(format!("{what} has an empty English label"));
    }
}

fn field(p: &mut Vec<String>, f: &FieldDef, what: &str) {
    label(p, &f.label, what);
    if let FieldType::Choice { options } | FieldType::MultiChoice { options } = &f.ty {
        for o in options {
            label(p, &o.label, &format!("option `{}` of {what}", o.value));
        }
    }
    let personal = matches!(f.ty, FieldType::PersonRef | FieldType::ResidentId | FieldType::Phone);
    if personal && !matches!(f.sensitivity, Sensitivity::Personal | Sensitivity::Sensitive) {
        p.push(format!("{what} holds personal data ({:?}) but is marked {:?}", f.ty, f.sensitivity));
    }
}

fn terminal_reachable(k: &RecordKind) -> bool {
    let wf = &k.workflow;
    let mut seen = BTreeSet::from([wf.initial.as_str()]);
    let mut queue = VecDeque::from([wf.initial.as_str()]);
    while let Some(s) = queue.pop_front() {
        if wf.states.iter().any(|d| d.id == s && d.terminal) {
            return true;
        }
        for t in wf.transitions.iter().filter(|t| t.from.iter().any(|f| f == s)) {
            let to = t.target(s);
            if seen.insert(to) {
                queue.push_back(to);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::manifest::Offset;
    use jiayuan_plugin_api::{
        Actor, Anchor, CreateCall, DeadlineRule, HostContext, Outcome, PluginError, StateDef, TransitionDef, Workflow,
    };

    struct Fixed(Manifest);

    #[async_trait::async_trait]
    impl ServicePlugin for Fixed {
        fn manifest(&self) -> Manifest {
            self.0.clone()
        }
        async fn on_create(&self, _: &dyn HostContext, _: CreateCall) -> Result<Outcome, PluginError> {
            Ok(Outcome::accept())
        }
    }

    fn manifest() -> Manifest {
        let workflow = Workflow::new(
            "open",
            vec![StateDef::new("open", "待办", "Open"), StateDef::new("closed", "办结", "Closed").terminal()],
            vec![TransitionDef::new("close", "办结", "Close", &["open"], "closed").by(&[Audience::Firm]).by_system()],
        );
        let kind = RecordKind::new("complaint", "投诉", "Complaint", workflow).with_fields([
            FieldDef::new("room", "房号", "Room", FieldType::Text { max_chars: 10 }),
            FieldDef::new("caller", "来电人", "Caller", FieldType::PersonRef).sensitivity(Sensitivity::Personal),
        ]);
        Manifest::new("noise-log", "噪音登记", "Noise log", "1.0.0").with_kind(kind).with_deadline(DeadlineRule::new(
            "auto_close",
            "complaint",
            &["open"],
            Anchor::Created,
            Offset::CalendarDays(30),
            DeadlineAction::Transition { transition: "close".into() },
        ))
    }

    #[test]
    fn a_conformant_manifest_passes() {
        assert_eq!(check_manifest(&Fixed(manifest())), Ok(()));
    }

    #[test]
    fn each_problem_is_named() {
        let mut m = manifest();
        m.record_kinds[0].fields[1].sensitivity = Sensitivity::Public;
        m.record_kinds[0].workflow.states[1].terminal = false;
        m.record_kinds[0].workflow.states[0].label.en = " ".into();
        m.record_kinds[0].workflow.transitions[0].actors = vec![Actor::firm()];
        m.deadlines[0].in_states.push("closed".into());
        let problems = check_manifest(&Fixed(m)).expect_err("broken");
        let text = problems.join("\n");
        for needle in [
            "field `complaint.caller` holds personal data",
            "state `complaint.open` has an empty English label",
            "can reach no terminal state",
            "which the system may not fire",
            "live in `closed`, but `close` does not fire from it",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn validation_problems_are_included_and_terminal_live_rules_flagged() {
        let mut m = manifest();
        m.deadlines[0].in_states = vec!["closed".into()];
        m.record_kinds[0].workflow.transitions[0].from.push("closed".into());
        let text = check_manifest(&Fixed(m)).expect_err("broken").join("\n");
        assert!(text.contains("is live in terminal state `closed`"), "{text}");
        let mut m = manifest();
        m.record_kinds[0].workflow.initial = "draft".into();
        let text = check_manifest(&Fixed(m)).expect_err("broken").join("\n");
        assert!(text.contains("initial state `draft`"), "{text}");
    }
}
