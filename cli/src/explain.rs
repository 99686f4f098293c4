//! `portcullis explain CONFIG METHOD URL`: one request through the filter's real pipeline
//! (`RootFilter` and `HttpFilter` against the CLI's stand-in proxy), then what happened, read
//! from what the pipeline itself reports: the callouts it dispatched, the VM's authenticator
//! counters, its `Decision`, the reply or the headers it let through. Which rule matches, and
//! why none or several do, is read from the compiled patterns.

use crate::answers::{self, Answers};
use crate::args::{load_config, Args};
use crate::host::{CliHost, Sent, World, REQUEST, ROOT};
use crate::live;
use crate::redact::Redactor;
use crate::{describe, CliError};
use portcullis::filter::{Filter, Rule};
use portcullis::pipeline::decision::Decision;
use portcullis::proxy::http::{Flow, HttpFilter};
use portcullis::proxy::root::{RootFilter, TICK_MS};
use portcullis::rules::delimiters::{split, Part};
use portcullis::rules::path;
use portcullis::vocab::callout::{Callout, CalloutResult};
use portcullis::vocab::rejection::status_text;
use portcullis::vocab::request::Request;
use portcullis::vocab::stats::{Outcome, Stats};
use std::fmt::Write;

/// Simulated time a request may wait (for keys, for a parked call) before we give up on it.
const MAX_WAIT_MS: u64 = 120_000;
/// Callbacks one explanation may take; each answers a call or moves the clock.
const MAX_STEPS: usize = 10_000;
/// Rules listed as "nearest" when none matches.
const NEAREST: usize = 3;

/// How a callout got its answer.
enum How {
    Scripted(String),
    Live,
    LiveFailed(String),
    NotPerformed,
}

/// A callout and its answer, in dispatch order.
struct Call {
    sent: Sent,
    how: How,
    result: CalloutResult,
}

/// Who made a request callout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Authenticator(usize),
    Authorizer,
    Mutator(usize),
}

pub fn run(argv: &[String], out: &mut String) -> Result<(), CliError> {
    let args = Args::parse(argv, &["-H", "--header", "--answer", "--peer"], &["--live"])?;
    let [config, method, url] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "explain takes CONFIG METHOD URL (then -H, --answer, --live, --peer)".into(),
        ));
    };
    let headers: Vec<&str> = args.all("-H").chain(args.all("--header")).collect();
    let request = request_headers(method, url, &headers)?;
    let mut answers = Answers::parse(args.all("--answer"))?;
    let (bytes, filter) = load_config(config)?;
    let live = args.flag("--live");

    let world = World::default();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    world.now_ms.set(start);
    *world.peer.borrow_mut() = Some(args.one("--peer")?.unwrap_or("127.0.0.1:50000").to_string());
    let mut root = RootFilter::default();
    if !root.configure(
        &bytes,
        &CliHost {
            world: &world,
            id: ROOT,
        },
    ) {
        return Err(CliError::Failed(format!(
            "{config}: the root context refused the configuration"
        )));
    }
    let Some(loaded) = root.loaded().cloned() else {
        return Err(CliError::Failed("no configuration loaded".into()));
    };
    *world.vm.borrow_mut() = Some(std::rc::Rc::clone(&loaded.vm));
    *world.headers.borrow_mut() = request
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();

    let h = CliHost {
        world: &world,
        id: REQUEST,
    };
    let h0 = CliHost {
        world: &world,
        id: ROOT,
    };
    let mut http = HttpFilter::new(Some(&loaded), REQUEST);
    let mut forwarded = http.on_request_headers(&h) == Flow::Continue;
    let mut calls: Vec<Call> = Vec::new();
    let mut stuck = true;
    for _ in 0..MAX_STEPS {
        if forwarded || world.resumed.get() || !world.replies.borrow().is_empty() {
            stuck = false;
            break;
        }
        let next = world.queue.borrow_mut().pop_front();
        if let Some(sent) = next {
            let (how, result) = resolve(&sent.callout, &mut answers, live);
            let sizes = match &result {
                CalloutResult::Response { headers, body, .. } => (headers.len(), body.len()),
                CalloutResult::Failed => (0, 0),
            };
            *world.delivering.borrow_mut() = Some(result.clone());
            let (from, token) = (sent.from, sent.token);
            calls.push(Call { sent, how, result });
            if from == ROOT {
                root.on_callout_response(&h0, token, sizes.0, sizes.1);
            } else {
                http.on_callout_response(&h, token, sizes.0, sizes.1);
            }
            continue;
        }
        if world.woken.replace(false) {
            http.on_wake(&h);
            continue;
        }
        if world.now_ms.get().saturating_sub(start) > MAX_WAIT_MS {
            break;
        }
        world.now_ms.set(world.now_ms.get() + TICK_MS);
        root.on_tick(&h0);
    }
    forwarded |= world.resumed.get();

    let leak = filter.log.leak_sensitive_values;
    let original: Vec<(String, String)> = request.clone();
    let redact = Redactor::new(leak, &original, query_of(&original));
    let stats = loaded.vm.borrow().stats.clone();
    let report = Report {
        filter: &filter,
        request: &original,
        calls: &calls,
        stats: &stats,
        decision: http.decision(),
        redact: &redact,
        waited_ms: world.now_ms.get().saturating_sub(start),
    };
    report.write(out, method, url);
    if stuck {
        let _ = writeln!(
            out,
            "\ndecision        none: the request was still waiting after {} s of simulated time",
            MAX_WAIT_MS / 1000
        );
        return Ok(());
    }
    report.outcome(out, forwarded, &world);
    for line in world.logs.borrow().iter() {
        let _ = writeln!(out, "filter log      {}", redact.text(line));
    }
    Ok(())
}

/// The request as Envoy hands it to the filter: pseudo-headers, then the `-H` headers.
fn request_headers(
    method: &str,
    url: &str,
    headers: &[&str],
) -> Result<Vec<(String, String)>, CliError> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        .ok_or_else(|| CliError::Usage(format!("{url:?} is not an absolute http(s) URL")))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let split_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (mut authority, path) = rest.split_at(split_at);
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    let mut extra = Vec::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("-H {h:?}: expected 'Name: value'")))?;
        let name = name.trim().to_ascii_lowercase();
        if name == "host" {
            authority = value.trim();
            continue;
        }
        extra.push((name, value.trim().to_string()));
    }
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":scheme".to_string(), scheme.to_ascii_lowercase()),
        (":authority".to_string(), authority.to_string()),
        (":path".to_string(), path),
    ];
    all.extend(extra);
    Ok(all)
}

fn query_of(headers: &[(String, String)]) -> &str {
    headers
        .iter()
        .find(|(k, _)| k == ":path")
        .and_then(|(_, p)| p.split_once('?'))
        .map_or("", |(_, q)| q)
}

/// The answer a callout gets: scripted first, then live, else none (a failed call).
fn resolve(callout: &Callout, answers: &mut Answers, live: bool) -> (How, CalloutResult) {
    if let Some((spec, result)) = answers.take(callout) {
        return (How::Scripted(spec.to_string()), result);
    }
    if live {
        return match live::call(callout) {
            Ok(result) => (How::Live, result),
            Err(e) => (How::LiveFailed(e.to_string()), CalloutResult::Failed),
        };
    }
    (How::NotPerformed, CalloutResult::Failed)
}

/// The subject rules are matched against, computed as the pipeline computes it.
fn subject(request: &[(String, String)]) -> Option<(String, String)> {
    let pairs = request
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let r = Request::from_header_map(pairs).ok()?;
    let normalized = path::normalize(&r.path).ok()?;
    let subject = portcullis::rules::subject(&r.scheme, &r.authority, &normalized.path);
    Some((r.method, subject))
}

/// How far a pattern's literal text gets into the subject: the characters of its leading
/// literal pieces found there in order, and the first piece that is not.
fn literal_progress<'a>(url: &'a str, subject: &str) -> (usize, Option<&'a str>) {
    let Ok(parts) = split(url) else {
        return (0, None);
    };
    let mut at = 0;
    let mut score = 0;
    for part in parts {
        let Part::Literal(text) = part else { continue };
        match subject.get(at..).and_then(|s| s.find(text)) {
            Some(i) => {
                at += i + text.len();
                score += text.len();
            }
            None => return (score, Some(text)),
        }
    }
    (score, None)
}

struct Report<'a> {
    filter: &'a Filter,
    request: &'a [(String, String)],
    calls: &'a [Call],
    stats: &'a Stats,
    decision: Option<&'a Decision>,
    redact: &'a Redactor,
    waited_ms: u64,
}

impl Report<'_> {
    fn write(&self, out: &mut String, method: &str, url: &str) {
        let _ = writeln!(out, "request         {method} {}", self.redact.text(url));
        let Some((method, subject)) = subject(self.request) else {
            let _ = writeln!(
                out,
                "subject         none: the filter refuses this request before matching (below)"
            );
            return;
        };
        let _ = writeln!(
            out,
            "subject         {}   (scheme://host/path: host lowercase, path cleaned, no query)",
            self.redact.text(&subject)
        );
        let matching: Vec<usize> = (0..self.filter.rules.len())
            .filter(|&i| {
                self.filter
                    .matcher
                    .get(i)
                    .is_some_and(|p| p.matches(&method, &subject))
            })
            .collect();
        match matching.as_slice() {
            [] => self.no_rule(out, &method, &subject),
            [one] => self.one_rule(out, *one, &subject),
            many => {
                let _ = writeln!(
                    out,
                    "rule            {} rules match, so none applies: Oathkeeper has no precedence \
                     and exactly one rule must match (500)",
                    many.len()
                );
                for &i in many {
                    let (url, methods) = describe::pattern(self.filter, i);
                    let id = self.filter.rules.get(i).map_or("?", |r| &*r.id);
                    let _ = writeln!(out, "  - {id}   {url}   [{methods}]");
                }
                let _ = writeln!(
                    out,
                    "  narrow one pattern (or its methods) so that only one matches"
                );
            }
        }
    }

    fn no_rule(&self, out: &mut String, method: &str, subject: &str) {
        let _ = writeln!(out, "rule            none matches {method} {subject} (404)");
        let mut wrong_method = Vec::new();
        let mut near = Vec::new();
        for i in 0..self.filter.rules.len() {
            let Some(p) = self.filter.matcher.get(i) else {
                continue;
            };
            let id = self.filter.rules.get(i).map_or("?", |r| &*r.id);
            if p.matches_url(subject) {
                wrong_method.push(format!(
                    "  - {id}   {}   the pattern matches, but {method} is not in [{}]",
                    p.url(),
                    p.methods().join(", ")
                ));
            } else {
                let (score, missing) = literal_progress(p.url(), subject);
                let why = match missing {
                    Some(text) => format!("the subject has no {text:?} where the pattern needs it"),
                    None => "its literal text is all there; an expression in <…> does not match"
                        .to_string(),
                };
                near.push((score, format!("  - {id}   {}   {why}", p.url())));
            }
        }
        if !wrong_method.is_empty() {
            let _ = writeln!(
                out,
                "  rules whose pattern matches but whose methods do not:"
            );
            wrong_method.iter().for_each(|l| {
                let _ = writeln!(out, "{l}");
            });
        }
        near.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        let near: Vec<_> = near
            .into_iter()
            .filter(|(s, _)| *s > 0)
            .take(NEAREST)
            .collect();
        if !near.is_empty() {
            let _ = writeln!(out, "  nearest rules by the literal text of their pattern:");
            for (_, line) in near {
                let _ = writeln!(out, "{line}");
            }
        }
        if self.filter.rules.is_empty() {
            let _ = writeln!(out, "  the configuration has no rules");
        }
        let _ = writeln!(
            out,
            "  remember: the whole subject must match; a trailing slash is removed; the query \
             never matches; under regexp, text outside <…> is literal (a '.' is a dot)"
        );
    }

    fn one_rule(&self, out: &mut String, index: usize, subject: &str) {
        let Some(rule) = self.filter.rules.get(index) else {
            return;
        };
        let (url, methods) = describe::pattern(self.filter, index);
        let _ = writeln!(out, "rule            {}   {url}   [{methods}]", rule.id);
        let captures = self
            .filter
            .matcher
            .get(index)
            .map(|p| p.captures(subject))
            .unwrap_or_default();
        if !captures.is_empty() {
            let list: Vec<String> = captures
                .iter()
                .enumerate()
                .map(|(i, c)| format!("[{i}] {:?}", self.redact.text(c)))
                .collect();
            let _ = writeln!(out, "captures        {}", list.join("  "));
        }
        self.authenticators(out, rule);
        self.after_authentication(out, rule);
    }

    /// Who made each request callout, from the VM's authenticator counters when it left: until
    /// one authenticator settles the chain, the next one in order is the one calling.
    fn owners(&self, rule: &Rule) -> Vec<Option<Owner>> {
        let mut after_authn = 0;
        let hydrators: Vec<usize> = rule
            .mutators
            .iter()
            .enumerate()
            .filter(|(_, m)| m.name() == "hydrator")
            .map(|(i, _)| i)
            .collect();
        let remote = rule.authorizer.name().starts_with("remote");
        self.calls
            .iter()
            .map(|c| {
                if c.sent.from != REQUEST {
                    return None;
                }
                let (settled, done) = settled(&c.sent.stats);
                if !done {
                    return Some(Owner::Authenticator(settled));
                }
                after_authn += 1;
                let k = if remote { after_authn - 1 } else { after_authn };
                Some(match (remote, k) {
                    (true, 0) => Owner::Authorizer,
                    _ => Owner::Mutator(hydrators.get(k - 1).copied().unwrap_or(usize::MAX)),
                })
            })
            .collect()
    }

    fn authenticators(&self, out: &mut String, rule: &Rule) {
        let owners = self.owners(rule);
        let (settled, done) = settled(self.stats);
        let last = final_outcome(self.stats);
        let _ = writeln!(
            out,
            "authenticators  (tried in order until one is responsible)"
        );
        for (i, a) in rule.authenticators.iter().enumerate() {
            let verdict = if i + 1 < settled || (i + 1 == settled && !done) {
                "not responsible (none of the credentials it reads is in the request)".to_string()
            } else if i + 1 == settled {
                match last {
                    Some(Outcome::Responsible) => "responsible: authenticated the request".into(),
                    Some(Outcome::Rejected) => {
                        format!("responsible, and rejected the credentials{}", self.detail())
                    }
                    Some(Outcome::Error) => {
                        "responsible, but could not decide (error; see the decision)".into()
                    }
                    _ => "not responsible".into(),
                }
            } else if i == settled && self.decision.is_none() {
                "still waiting".into()
            } else {
                "not reached".into()
            };
            let _ = writeln!(out, "  {}. {:<26}{verdict}", i + 1, a.name());
            self.calls_of(out, &owners, Owner::Authenticator(i));
        }
        if settled == rule.authenticators.len() && !done {
            let _ = writeln!(out, "  no authenticator was responsible: 401");
        }
        self.jwks_fetches(out);
    }

    fn after_authentication(&self, out: &mut String, rule: &Rule) {
        let owners = self.owners(rule);
        let authenticated = final_outcome(self.stats) == Some(Outcome::Responsible);
        let allowed = self.decision.is_some_and(Decision::allowed);
        let reason = self.decision.map_or("", |d| d.reason);
        let hydrated = owners.iter().any(|o| matches!(o, Some(Owner::Mutator(_))));
        let authz = if !authenticated {
            "not reached"
        } else if allowed {
            "allowed"
        } else if reason == "authorization_handler_no_match" {
            "denied"
        } else if hydrated {
            // A hydrator only runs after the authorizer allowed.
            "allowed"
        } else if owners.contains(&Some(Owner::Authorizer)) {
            "failed (see the decision)"
        } else {
            "allowed"
        };
        let _ = writeln!(out, "authorizer      {:<29}{authz}", rule.authorizer.name());
        self.calls_of(out, &owners, Owner::Authorizer);
        let _ = writeln!(out, "mutators");
        for (i, m) in rule.mutators.iter().enumerate() {
            let state = if allowed {
                "applied"
            } else if !authenticated || authz != "allowed" {
                "not reached"
            } else {
                "applied until the failure (see the decision)"
            };
            let _ = writeln!(out, "  {}. {:<26}{state}", i + 1, m.name());
            self.calls_of(out, &owners, Owner::Mutator(i));
        }
    }

    fn detail(&self) -> String {
        self.decision
            .and_then(|d| d.detail.as_deref())
            .map_or(String::new(), |d| format!(": {}", self.redact.text(d)))
    }

    fn calls_of(&self, out: &mut String, owners: &[Option<Owner>], who: Owner) {
        for (call, owner) in self.calls.iter().zip(owners) {
            if *owner == Some(who) {
                self.call(out, call, "       ");
            }
        }
    }

    fn jwks_fetches(&self, out: &mut String) {
        for call in self.calls.iter().filter(|c| c.sent.from == ROOT) {
            let _ = writeln!(out, "  the root context fetched a JWKS for the jwt keys:");
            self.call(out, call, "       ");
        }
        if self.waited_ms > 0 {
            let _ = writeln!(
                out,
                "  the request waited {} ms (simulated) for keys or answers",
                self.waited_ms
            );
        }
    }

    fn call(&self, out: &mut String, call: &Call, indent: &str) {
        let c = &call.sent.callout;
        let get = |name: &str| {
            c.headers
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let _ = writeln!(
            out,
            "{indent}callout: {} {}{}   (cluster {}, timeout {} ms)",
            get(":method"),
            answers::origin(c),
            self.redact.text(get(":path")),
            c.cluster,
            c.timeout_ms
        );
        for (k, v) in c.headers.iter().filter(|(k, _)| !k.starts_with(':')) {
            let _ = writeln!(out, "{indent}  {k}: {}", self.redact.header(k, v));
        }
        if let Some(body) = &c.body {
            let _ = writeln!(out, "{indent}  body: {}", self.redact.body(body));
        }
        let answer = match &call.result {
            CalloutResult::Response { status, body, .. } => {
                format!("{status}, {} bytes", body.len())
            }
            CalloutResult::Failed => "none (a failed call)".to_string(),
        };
        let how = match &call.how {
            How::Scripted(spec) => format!("scripted by --answer {spec}"),
            How::Live => "performed live".to_string(),
            How::LiveFailed(e) => format!("live call failed: {e}"),
            How::NotPerformed => format!(
                "NOT PERFORMED (no --live, no --answer for {}): counted as a failed call, as \
                 if the service were unreachable",
                c.cluster
            ),
        };
        let _ = writeln!(out, "{indent}answer: {answer}; {how}");
    }

    fn outcome(&self, out: &mut String, forwarded: bool, world: &World) {
        match self.decision {
            Some(d) if d.allowed() => {
                let subject = d.subject.as_deref().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "decision        ALLOW: forwarded upstream as subject {:?}",
                    self.redact.text(subject)
                );
            }
            Some(d) => {
                let status = d.status.unwrap_or_default();
                let _ = writeln!(
                    out,
                    "decision        DENY: {status} {} (reason_id {}{})",
                    status_text(status),
                    d.reason,
                    self.detail()
                );
            }
            None => {
                let _ = writeln!(out, "decision        (the filter did not record one)");
            }
        }
        if forwarded {
            let _ = writeln!(out, "upstream request (+ set by the filter, - removed)");
            let now: Vec<(String, String)> = world
                .headers
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            for (k, v) in &now {
                let mark = if self.request.iter().any(|(k0, v0)| k0 == k && v0 == v) {
                    ' '
                } else {
                    '+'
                };
                let _ = writeln!(out, "  {mark} {k}: {}", self.redact.header(k, v));
            }
            for (k, v) in self.request {
                if !now.iter().any(|(k1, _)| k1 == k) {
                    let _ = writeln!(out, "  - {k}: {}", self.redact.header(k, v));
                }
            }
        }
        for reply in world.replies.borrow().iter() {
            let _ = writeln!(
                out,
                "reply           {} {} (the filter answers; nothing goes upstream)",
                reply.status,
                status_text(reply.status)
            );
            for (k, v) in &reply.headers {
                let _ = writeln!(out, "  {k}: {}", self.redact.header(k, v));
            }
            if !reply.body.is_empty() {
                let _ = writeln!(out, "  body: {}", self.redact.text(reply.body.trim_end()));
            }
        }
        let unperformed = self
            .calls
            .iter()
            .filter(|c| matches!(c.how, How::NotPerformed | How::LiveFailed(_)))
            .count();
        if unperformed > 0 {
            let _ = writeln!(
                out,
                "note            {unperformed} callout{} got no real answer and counted as failed, \
                 so this is the decision when {} unreachable; use --live, or \
                 --answer CLUSTER=STATUS:@body.json, to see the decision with answers",
                if unperformed == 1 { "" } else { "s" },
                if unperformed == 1 { "that service is" } else { "those services are" },
            );
        }
    }
}

/// How many authenticators have settled, and whether one settled the chain (anything but not
/// responsible).
fn settled(stats: &Stats) -> (usize, bool) {
    let total = stats.authenticators.values().sum::<u64>() as usize;
    (total, final_outcome(stats).is_some())
}

/// The outcome that ended the authenticator chain, if one did.
fn final_outcome(stats: &Stats) -> Option<Outcome> {
    stats
        .authenticators
        .iter()
        .find(|((_, o), n)| *o != Outcome::NotResponsible && **n > 0)
        .map(|((_, o), _)| *o)
}
