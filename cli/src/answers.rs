//! Scripted callout answers for `explain`: `--answer KEY=STATUS[:BODY]`, `KEY=STATUS:@FILE` or
//! `KEY=fail`, where KEY is a cluster name or a URL origin (`http://kratos-public.auth`). Response
//! headers go in brackets after the status: `kratos=429[Retry-After: 3][X-Ratelimit-Limit: 10]`.
//! Answers for one key are used in order; the last one is reused for further calls.

use crate::CliError;
use portcullis::vocab::callout::{Callout, CalloutResult};

pub struct Answer {
    key: String,
    result: CalloutResult,
    /// What the user wrote, to say which answer was used.
    pub spec: String,
}

#[derive(Default)]
pub struct Answers {
    list: Vec<Answer>,
    used: Vec<bool>,
}

impl Answers {
    pub fn parse<'a>(specs: impl Iterator<Item = &'a str>) -> Result<Answers, CliError> {
        let mut list = Vec::new();
        for spec in specs {
            list.push(parse_one(spec)?);
        }
        let used = vec![false; list.len()];
        Ok(Answers { list, used })
    }

    /// The answer for this call, if one was scripted.
    pub fn take(&mut self, callout: &Callout) -> Option<(&str, CalloutResult)> {
        let origin = origin(callout);
        let fits = |a: &Answer| a.key == callout.cluster || a.key.eq_ignore_ascii_case(&origin);
        let fresh = self
            .list
            .iter()
            .zip(&self.used)
            .position(|(a, used)| !used && fits(a));
        let index = fresh.or_else(|| self.list.iter().rposition(fits))?;
        if let Some(u) = self.used.get_mut(index) {
            *u = true;
        }
        self.list
            .get(index)
            .map(|a| (a.spec.as_str(), a.result.clone()))
    }
}

/// `scheme://authority` of a callout, as `clusters` keys are written.
pub fn origin(callout: &Callout) -> String {
    let get = |name: &str| {
        callout
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    format!("{}://{}", get(":scheme"), get(":authority"))
}

fn parse_one(spec: &str) -> Result<Answer, CliError> {
    let usage = || {
        CliError::Usage(format!(
            "--answer {spec:?}: expected CLUSTER=STATUS[:BODY], CLUSTER=STATUS:@FILE or \
             CLUSTER=fail; headers as [Name: value] after STATUS"
        ))
    };
    let (key, rest) = spec.split_once('=').ok_or_else(usage)?;
    if key.is_empty() {
        return Err(usage());
    }
    if rest == "fail" {
        return Ok(Answer {
            key: key.to_string(),
            result: CalloutResult::Failed,
            spec: spec.to_string(),
        });
    }
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (status, mut rest) = rest.split_at(digits);
    let status: u32 = status
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(usage)?;
    let mut scripted = Vec::new();
    while let Some(group) = rest.strip_prefix('[') {
        let (header, after) = group.split_once(']').ok_or_else(usage)?;
        let (name, value) = header.split_once(':').ok_or_else(usage)?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.starts_with(':') {
            return Err(usage());
        }
        scripted.push((name, value.trim().to_string()));
        rest = after;
    }
    let body = match rest {
        "" => "",
        r => r.strip_prefix(':').ok_or_else(usage)?,
    };
    let body = match body.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .map_err(|e| CliError::Failed(format!("--answer {spec:?}: cannot read {path}: {e}")))?,
        None => body.as_bytes().to_vec(),
    };
    let mut headers = vec![(":status".to_string(), status.to_string())];
    let typed = scripted.iter().any(|(k, _)| k == "content-type");
    if !typed && body.first().is_some_and(|b| *b == b'{' || *b == b'[') {
        headers.push(("content-type".into(), "application/json".into()));
    }
    headers.extend(scripted);
    Ok(Answer {
        key: key.to_string(),
        result: CalloutResult::Response {
            status,
            headers,
            body,
        },
        spec: spec.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(cluster: &str) -> Callout {
        Callout {
            cluster: cluster.into(),
            headers: vec![
                (":scheme".into(), "http".into()),
                (":authority".into(), format!("{cluster}.test")),
            ],
            body: None,
            timeout_ms: 1,
        }
    }

    #[test]
    fn answers_are_used_in_order_and_the_last_repeats() {
        let mut a =
            Answers::parse(["kratos=401", "http://kratos.test=200:{}", "other=fail"].into_iter())
                .unwrap();
        let status = |r: CalloutResult| r.reached("the test").ok().map(|(s, _, _)| s);
        assert_eq!(status(a.take(&call("kratos")).unwrap().1), Some(401));
        assert_eq!(status(a.take(&call("kratos")).unwrap().1), Some(200));
        assert_eq!(status(a.take(&call("kratos")).unwrap().1), Some(200));
        assert!(a.take(&call("nobody")).is_none());
        assert!(Answers::parse(["kratos=abc"].into_iter()).is_err());
    }

    #[test]
    fn headers_go_in_brackets_after_the_status() {
        let mut a = Answers::parse(
            ["kratos=429[Retry-After: 3][X-Date: Wed, 21 Oct 2015 07:28:00 GMT]:{}"].into_iter(),
        )
        .unwrap();
        let (_, result) = a.take(&call("kratos")).unwrap();
        let (status, headers, body) = result.reached("the test").unwrap();
        assert_eq!(status, 429);
        assert_eq!(body, b"{}");
        assert!(headers.contains(&("retry-after".into(), "3".into())));
        assert!(headers.contains(&("x-date".into(), "Wed, 21 Oct 2015 07:28:00 GMT".into())));
        for bad in ["k=200[x]", "k=200[x: 1", "k=200[x: 1]body", "k=200[: 1]"] {
            assert!(Answers::parse([bad].into_iter()).is_err(), "{bad}");
        }
    }
}
