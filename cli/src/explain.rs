//! `portcullis explain CONFIG METHOD URL`: one request through the filter's real pipeline
//! (`RootFilter` and `HttpFilter` against the CLI's stand-in proxy), then what happened, read
//! from what the pipeline itself reports: the callouts it dispatched, the VM's authenticator
//! counters, its `Decision`, the reply or the headers it let through. Which rule matches, and
//! why none or several do, is read from the compiled patterns.

use crate::answers::{self, Answers};
use crate::args::{load_config, read_input, Args};
use crate::host::{CliHost, Sent, World, REQUEST, ROOT};
use crate::live;
use crate::redact::Redactor;
use crate::{describe, CliError};
use portcullis::context::http::{Flow, HttpFilter};
use portcullis::context::root::{RootFilter, TICK_MS};
use portcullis::filter::{Filter, Rule};
use portcullis::pipeline::decision::Decision;
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
pub(crate) enum How {
    Scripted(String),
    Live,
    LiveFailed(String),
    NotPerformed,
}

/// A callout and its answer, in dispatch order.
pub(crate) struct Call {
    pub(crate) sent: Sent,
    how: How,
    result: CalloutResult,
}

/// Headers as shown: names, and values redacted.
pub(crate) type Shown<'c> = Vec<(&'c str, String)>;

/// A callout as the report shows it.
pub(crate) struct CallFacts<'c> {
    pub(crate) method: &'c str,
    /// The origin and the redacted path.
    pub(crate) url: String,
    pub(crate) cluster: &'c str,
    pub(crate) timeout_ms: u64,
    /// Redacted, pseudo-headers left out.
    pub(crate) headers: Shown<'c>,
    pub(crate) body: Option<String>,
    /// Status, body size and (redacted) headers; `None` for a failed call.
    pub(crate) answer: Option<(u32, usize, Shown<'c>)>,
    /// `scripted`, `live`, `live_failed` or `not_performed`, and the words.
    pub(crate) how: &'static str,
    pub(crate) how_text: String,
}

/// A rule named when none matches: its pattern, its methods, and the literal text of the
/// pattern the subject lacks.
pub(crate) struct Near<'a> {
    pub(crate) id: &'a str,
    pub(crate) url: &'a str,
    pub(crate) methods: Vec<String>,
    pub(crate) missing: Option<&'a str>,
}

/// Who made a request callout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Authenticator(usize),
    Authorizer,
    Mutator(usize),
}

pub fn run(argv: &[String], out: &mut String) -> Result<(), CliError> {
    let args = Args::parse(
        argv,
        &["-H", "--header", "--answer", "--peer", "--body"],
        &["--live", "--json"],
    )?;
    let [config, method, url] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "explain takes CONFIG METHOD URL (then -H, --answer, --live, --peer, --body, --json)"
                .into(),
        ));
    };
    let body = args.one("--body")?.map(read_input).transpose()?;
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
    if body.is_some() {
        http.body_follows();
    }
    let mut forwarded = http.on_request_headers(&h) == Flow::Continue;
    // The body arrives whole right after the headers, as Envoy hands it over under
    // allow_on_headers_stop_iteration.
    if let (Some(body), false) = (body, forwarded) {
        let size = body.len();
        *world.body.borrow_mut() = body;
        forwarded = http.on_request_body(&h, size, true) == Flow::Continue;
    }
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
    if args.flag("--json") {
        let doc = crate::explain_json::document(&report, method, url, stuck, forwarded, &world);
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| CliError::Failed(format!("cannot write JSON: {e}")))?;
        out.push_str(&text);
        out.push('\n');
        return Ok(());
    }
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
pub(crate) fn subject(request: &[(String, String)]) -> Option<(String, String)> {
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

pub(crate) struct Report<'a> {
    pub(crate) filter: &'a Filter,
    pub(crate) request: &'a [(String, String)],
    pub(crate) calls: &'a [Call],
    stats: &'a Stats,
    pub(crate) decision: Option<&'a Decision>,
    pub(crate) redact: &'a Redactor,
    pub(crate) waited_ms: u64,
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
        match self.matching(&method, &subject).as_slice() {
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

    /// Why no rule matches: the rules whose pattern matches but not the method, and the
    /// nearest patterns with the literal text the subject lacks (`None`: an expression fails).
    pub(crate) fn unmatched(&self, subject: &str) -> (Vec<Near<'_>>, Vec<Near<'_>>) {
        let mut wrong_method = Vec::new();
        let mut near = Vec::new();
        for i in 0..self.filter.rules.len() {
            let Some(p) = self.filter.matcher.get(i) else {
                continue;
            };
            let id = self.filter.rules.get(i).map_or("?", |r| &*r.id);
            let mut n = Near {
                id,
                url: p.url(),
                methods: p.methods().to_vec(),
                missing: None,
            };
            if p.matches_url(subject) {
                wrong_method.push(n);
            } else {
                let (score, missing) = literal_progress(p.url(), subject);
                n.missing = missing;
                near.push((score, n));
            }
        }
        near.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        let near = near
            .into_iter()
            .filter(|(s, _)| *s > 0)
            .take(NEAREST)
            .map(|(_, n)| n)
            .collect();
        (wrong_method, near)
    }

    /// The rules whose pattern and methods match.
    pub(crate) fn matching(&self, method: &str, subject: &str) -> Vec<usize> {
        (0..self.filter.rules.len())
            .filter(|&i| {
                self.filter
                    .matcher
                    .get(i)
                    .is_some_and(|p| p.matches(method, subject))
            })
            .collect()
    }

    /// The capture groups of rule `index` on the subject, redacted.
    pub(crate) fn captures(&self, index: usize, subject: &str) -> Vec<String> {
        self.filter
            .matcher
            .get(index)
            .map(|p| p.captures(subject))
            .unwrap_or_default()
            .iter()
            .map(|c| self.redact.text(c))
            .collect()
    }

    fn no_rule(&self, out: &mut String, method: &str, subject: &str) {
        let _ = writeln!(out, "rule            none matches {method} {subject} (404)");
        let (wrong_method, near) = self.unmatched(subject);
        if !wrong_method.is_empty() {
            let _ = writeln!(
                out,
                "  rules whose pattern matches but whose methods do not:"
            );
        }
        for n in &wrong_method {
            let _ = writeln!(
                out,
                "  - {}   {}   the pattern matches, but {method} is not in [{}]",
                n.id,
                n.url,
                n.methods.join(", ")
            );
        }
        if !near.is_empty() {
            let _ = writeln!(out, "  nearest rules by the literal text of their pattern:");
        }
        for n in &near {
            let why = match n.missing {
                Some(text) => format!("the subject has no {text:?} where the pattern needs it"),
                None => {
                    "its literal text is all there; an expression in <…> does not match".to_string()
                }
            };
            let _ = writeln!(out, "  - {}   {}   {why}", n.id, n.url);
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
        let captures = self.captures(index, subject);
        if !captures.is_empty() {
            let list: Vec<String> = captures
                .iter()
                .enumerate()
                .map(|(i, c)| format!("[{i}] {c:?}"))
                .collect();
            let _ = writeln!(out, "captures        {}", list.join("  "));
        }
        self.authenticators(out, rule);
        self.after_authentication(out, rule);
    }

    /// Who made each request callout, from the VM's authenticator counters when it left: until
    /// one authenticator settles the chain, the next one in order is the one calling.
    pub(crate) fn owners(&self, rule: &Rule) -> Vec<Option<Owner>> {
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

    /// Authenticator `i`'s verdict: a code (`not_responsible`, `authenticated`, `rejected`,
    /// `error`, `waiting`, `not_reached`) and the words.
    pub(crate) fn authn_verdict(&self, i: usize) -> (&'static str, String) {
        let (settled, done) = settled(self.stats);
        if i + 1 < settled || (i + 1 == settled && !done) {
            let text = "not responsible (none of the credentials it reads is in the request)";
            return ("not_responsible", text.into());
        }
        if i + 1 == settled {
            return match final_outcome(self.stats) {
                Some(Outcome::Responsible) => (
                    "authenticated",
                    "responsible: authenticated the request".into(),
                ),
                Some(Outcome::Rejected) => (
                    "rejected",
                    format!("responsible, and rejected the credentials{}", self.detail()),
                ),
                Some(Outcome::Error) => (
                    "error",
                    "responsible, but could not decide (error; see the decision)".into(),
                ),
                _ => ("not_responsible", "not responsible".into()),
            };
        }
        if i == settled && self.decision.is_none() {
            return ("waiting", "still waiting".into());
        }
        ("not_reached", "not reached".into())
    }

    fn authenticators(&self, out: &mut String, rule: &Rule) {
        let owners = self.owners(rule);
        let (settled, done) = settled(self.stats);
        let _ = writeln!(
            out,
            "authenticators  (tried in order until one is responsible)"
        );
        for (i, a) in rule.authenticators.iter().enumerate() {
            let (_, verdict) = self.authn_verdict(i);
            let _ = writeln!(out, "  {}. {:<26}{verdict}", i + 1, a.name());
            self.calls_of(out, &owners, Owner::Authenticator(i));
        }
        if settled == rule.authenticators.len() && !done {
            let _ = writeln!(out, "  no authenticator was responsible: 401");
        }
        self.jwks_fetches(out);
    }

    /// The authorizer's verdict and the mutators' state, as words.
    pub(crate) fn authz_and_mutators(
        &self,
        owners: &[Option<Owner>],
    ) -> (&'static str, &'static str) {
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
        let mutators = if allowed {
            "applied"
        } else if !authenticated || authz != "allowed" {
            "not reached"
        } else {
            "applied until the failure (see the decision)"
        };
        (authz, mutators)
    }

    fn after_authentication(&self, out: &mut String, rule: &Rule) {
        let owners = self.owners(rule);
        let (authz, state) = self.authz_and_mutators(&owners);
        let _ = writeln!(out, "authorizer      {:<29}{authz}", rule.authorizer.name());
        self.calls_of(out, &owners, Owner::Authorizer);
        let _ = writeln!(out, "mutators");
        for (i, m) in rule.mutators.iter().enumerate() {
            let _ = writeln!(out, "  {}. {:<26}{state}", i + 1, m.name());
            self.calls_of(out, &owners, Owner::Mutator(i));
        }
    }

    pub(crate) fn detail(&self) -> String {
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

    /// A callout as shown: redacted headers (pseudo-headers apart) and body, and its answer.
    pub(crate) fn call_facts<'c>(&self, call: &'c Call) -> CallFacts<'c> {
        let c = &call.sent.callout;
        let get = |name: &str| {
            c.headers
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let (how, how_text) = match &call.how {
            How::Scripted(spec) => ("scripted", format!("scripted by --answer {spec}")),
            How::Live => ("live", "performed live".to_string()),
            How::LiveFailed(e) => ("live_failed", format!("live call failed: {e}")),
            How::NotPerformed => (
                "not_performed",
                format!(
                    "NOT PERFORMED (no --live, no --answer for {}): counted as a failed call, \
                     as if the service were unreachable",
                    c.cluster
                ),
            ),
        };
        CallFacts {
            method: get(":method"),
            url: format!("{}{}", answers::origin(c), self.redact.text(get(":path"))),
            cluster: &c.cluster,
            timeout_ms: c.timeout_ms,
            headers: c
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with(':'))
                .map(|(k, v)| (k.as_str(), self.redact.header(k, v)))
                .collect(),
            body: c.body.as_ref().map(|b| self.redact.body(b)),
            answer: match &call.result {
                CalloutResult::Response {
                    status,
                    headers,
                    body,
                } => Some((
                    *status,
                    body.len(),
                    headers
                        .iter()
                        .filter(|(k, _)| !k.starts_with(':'))
                        .map(|(k, v)| (k.as_str(), self.redact.header(k, v)))
                        .collect(),
                )),
                CalloutResult::Failed => None,
            },
            how,
            how_text,
        }
    }

    fn call(&self, out: &mut String, call: &Call, indent: &str) {
        let f = self.call_facts(call);
        let _ = writeln!(
            out,
            "{indent}callout: {} {}   (cluster {}, timeout {} ms)",
            f.method, f.url, f.cluster, f.timeout_ms
        );
        for (k, v) in &f.headers {
            let _ = writeln!(out, "{indent}  {k}: {v}");
        }
        if let Some(body) = &f.body {
            let _ = writeln!(out, "{indent}  body: {body}");
        }
        let answer = match &f.answer {
            Some((status, bytes, _)) => format!("{status}, {bytes} bytes"),
            None => "none (a failed call)".to_string(),
        };
        let _ = writeln!(out, "{indent}answer: {answer}; {}", f.how_text);
    }

    /// The request as it goes upstream, redacted: each header marked ' ' (as sent), '+' (set
    /// by the filter) or '-' (removed).
    pub(crate) fn upstream(&self, world: &World) -> Vec<(char, String, String)> {
        let now: Vec<(String, String)> = world
            .headers
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let mut lines = Vec::with_capacity(now.len());
        for (k, v) in &now {
            let kept = self.request.iter().any(|(k0, v0)| k0 == k && v0 == v);
            let mark = if kept { ' ' } else { '+' };
            lines.push((mark, k.clone(), self.redact.header(k, v)));
        }
        for (k, v) in self.request {
            if !now.iter().any(|(k1, _)| k1 == k) {
                lines.push(('-', k.clone(), self.redact.header(k, v)));
            }
        }
        lines
    }

    /// How many callouts got no real answer.
    pub(crate) fn unperformed(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| matches!(c.how, How::NotPerformed | How::LiveFailed(_)))
            .count()
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
        let state = world.filter_state.borrow();
        if !state.is_empty() {
            let facts: Vec<String> = state
                .iter()
                .map(|(k, v)| format!("{k}={}", self.redact.text(v)))
                .collect();
            let _ = writeln!(
                out,
                "filter state    {}   (wasm.portcullis.*)",
                facts.join(" ")
            );
        }
        if forwarded {
            let _ = writeln!(out, "upstream request (+ set by the filter, - removed)");
            for (mark, k, v) in self.upstream(world) {
                let _ = writeln!(out, "  {mark} {k}: {v}");
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
        let unperformed = self.unperformed();
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
    let total = stats.authenticators().map(|(_, n)| n).sum::<u64>() as usize;
    (total, final_outcome(stats).is_some())
}

/// The outcome that ended the authenticator chain, if one did.
fn final_outcome(stats: &Stats) -> Option<Outcome> {
    stats
        .authenticators()
        .find(|((_, o), n)| *o != Outcome::NotResponsible && *n > 0)
        .map(|((_, o), _)| o)
}
