//! `explain --json`: the facts of the text report as one JSON document, for scripts and
//! editors. Its schema is `docs/explain.schema.json`; `version` changes when a field changes
//! meaning or goes away (new fields may appear without it).

use crate::explain::{subject, Call, CallFacts, Near, Owner, Report, Shown};
use crate::host::{World, ROOT};
use portcullis::filter::Rule;
use portcullis::vocab::rejection::status_text;
use serde_json::{json, Value};

/// The document's version.
pub const VERSION: u32 = 1;

pub fn document(
    report: &Report<'_>,
    method: &str,
    url: &str,
    stuck: bool,
    forwarded: bool,
    world: &World,
) -> Value {
    let mut doc = json!({
        "version": VERSION,
        "request": { "method": method, "url": report.redact.text(url) },
        "subject": null,
        "match": { "outcome": "refused_before_matching" },
        "jwks_fetches": report.calls.iter().filter(|c| c.sent.from == ROOT)
            .map(|c| callout(report, c)).collect::<Vec<_>>(),
        "waited_ms": report.waited_ms,
        "decision": null,
        "filter_state": world.filter_state.borrow().iter()
            .map(|(k, v)| (k.clone(), json!(report.redact.text(v))))
            .collect::<serde_json::Map<_, _>>(),
        "upstream": null,
        "reply": null,
        "unperformed_callouts": report.unperformed(),
        "logs": world.logs.borrow().iter().map(|l| report.redact.text(l)).collect::<Vec<_>>(),
    });
    let Some(obj) = doc.as_object_mut() else {
        return doc;
    };
    if let Some((method, subject)) = subject(report.request) {
        obj.insert("subject".into(), json!(report.redact.text(&subject)));
        obj.insert("match".into(), matched(report, &method, &subject));
    }
    if stuck {
        obj.insert(
            "decision".into(),
            json!({ "outcome": "waiting", "allowed": false }),
        );
        return doc;
    }
    if let Some(d) = report.decision {
        obj.insert(
            "decision".into(),
            json!({
                "outcome": if d.allowed() { "allow" } else { "deny" },
                "allowed": d.allowed(),
                "status": d.status,
                "reason_id": d.reason,
                "reason": d.detail.as_deref().map(|r| report.redact.text(r)),
                "rule": d.rule.as_deref(),
                "subject": d.subject.as_deref().map(|s| report.redact.text(s)),
                "authenticator": d.authenticator,
            }),
        );
    }
    if forwarded {
        let headers: Vec<Value> = report
            .upstream(world)
            .into_iter()
            .map(|(mark, name, value)| {
                let change = match mark {
                    '+' => "set",
                    '-' => "removed",
                    _ => "kept",
                };
                json!({ "name": name, "value": value, "change": change })
            })
            .collect();
        obj.insert("upstream".into(), json!({ "headers": headers }));
    }
    if let Some(reply) = world.replies.borrow().first() {
        obj.insert(
            "reply".into(),
            json!({
                "status": reply.status,
                "status_text": status_text(reply.status),
                "headers": reply.headers.iter()
                    .map(|(k, v)| json!([k, report.redact.header(k, v)])).collect::<Vec<_>>(),
                "body": report.redact.text(reply.body.trim_end()),
            }),
        );
    }
    doc
}

fn near(n: &Near<'_>) -> Value {
    json!({ "id": n.id, "url": n.url, "methods": n.methods, "missing": n.missing })
}

fn pattern(report: &Report<'_>, index: usize) -> Value {
    let p = report.filter.matcher.get(index);
    let id = report.filter.rules.get(index).map_or("?", |r| &*r.id);
    json!({ "id": id, "url": p.map(|p| p.url()), "methods": p.map(|p| p.methods()) })
}

/// Which rule matched and what its handlers did; or why none or several matched.
fn matched(report: &Report<'_>, method: &str, subject: &str) -> Value {
    match report.matching(method, subject).as_slice() {
        [] => {
            let (wrong_method, nearest) = report.unmatched(subject);
            json!({
                "outcome": "none",
                "wrong_method": wrong_method.iter().map(near).collect::<Vec<_>>(),
                "nearest": nearest.iter().map(near).collect::<Vec<_>>(),
            })
        }
        [one] => match report.filter.rules.get(*one) {
            Some(rule) => json!({
                "outcome": "one",
                "rule": pattern(report, *one),
                "captures": report.captures(*one, subject),
                "authenticators": authenticators(report, rule),
                "authorizer": authorizer(report, rule),
                "mutators": mutators(report, rule),
            }),
            None => json!({ "outcome": "none", "wrong_method": [], "nearest": [] }),
        },
        many => json!({
            "outcome": "several",
            "rules": many.iter().map(|&i| pattern(report, i)).collect::<Vec<_>>(),
        }),
    }
}

fn callouts_of(report: &Report<'_>, rule: &Rule, who: Owner) -> Vec<Value> {
    let owners = report.owners(rule);
    report
        .calls
        .iter()
        .zip(&owners)
        .filter(|(_, o)| **o == Some(who))
        .map(|(c, _)| callout(report, c))
        .collect()
}

fn authenticators(report: &Report<'_>, rule: &Rule) -> Vec<Value> {
    rule.authenticators
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (verdict, text) = report.authn_verdict(i);
            json!({
                "name": a.name(),
                "verdict": verdict,
                "explanation": text,
                "callouts": callouts_of(report, rule, Owner::Authenticator(i)),
            })
        })
        .collect()
}

fn authorizer(report: &Report<'_>, rule: &Rule) -> Value {
    let (verdict, _) = report.authz_and_mutators(&report.owners(rule));
    json!({
        "name": rule.authorizer.name(),
        "verdict": verdict,
        "callouts": callouts_of(report, rule, Owner::Authorizer),
    })
}

fn mutators(report: &Report<'_>, rule: &Rule) -> Vec<Value> {
    let (_, state) = report.authz_and_mutators(&report.owners(rule));
    rule.mutators
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "name": m.name(),
                "state": state,
                "callouts": callouts_of(report, rule, Owner::Mutator(i)),
            })
        })
        .collect()
}

fn callout(report: &Report<'_>, call: &Call) -> Value {
    let CallFacts {
        method,
        url,
        cluster,
        timeout_ms,
        headers,
        body,
        answer,
        how,
        how_text,
    } = report.call_facts(call);
    let pairs =
        |h: Shown<'_>| -> Vec<Value> { h.into_iter().map(|(k, v)| json!([k, v])).collect() };
    json!({
        "method": method,
        "url": url,
        "cluster": cluster,
        "timeout_ms": timeout_ms,
        "headers": pairs(headers),
        "body": body,
        "answer": answer.map(|(status, bytes, headers)| json!({
            "status": status, "body_bytes": bytes, "headers": pairs(headers),
        })),
        "how": how,
        "explanation": how_text,
    })
}
