//! The compiled configuration: every rule with its handlers built, the matcher, the fallback
//! error handlers. Built once per `on_configure` by `load`, then shared read-only by every
//! request of the VM; the pipeline runs it.

mod load;
pub mod state;

pub use load::load;

use crate::authn::Authenticator;
use crate::authz::Authorizer;
use crate::cache::jwks::Source;
use crate::errors::ErrorHandler;
use crate::mutate::Mutator;
use crate::rules::Matcher;
use crate::vocab::log::LogSettings;
use state::StateKey;
use std::sync::Arc;

/// A compiled access rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Arc<str>,
    /// Its place in the configuration: stats count by it.
    pub index: usize,
    pub authenticators: Vec<Authenticator>,
    pub authorizer: Authorizer,
    pub mutators: Vec<Mutator>,
    pub errors: Vec<ErrorHandler>,
    /// Identity headers other rules set and this one does not: removed from the request.
    pub strip: Vec<String>,
}

/// Everything compiled from one configuration, shared read-only by all requests.
#[derive(Debug)]
pub struct Filter {
    /// Held by `Arc`: a request paused on a callout keeps its rule, not an index into this.
    pub rules: Vec<Arc<Rule>>,
    pub matcher: Matcher,
    /// `errors.fallback`: the handlers that answer when no rule's own handler does.
    pub fallback: Vec<ErrorHandler>,
    pub log: LogSettings,
    /// Every JWKS URL (`jwt` handlers' `jwks_urls`, `id_token`'s `jwks_url`), once.
    pub jwks_sources: Vec<Source>,
    /// The path where the `id_token` public keys are answered, when there are any.
    pub jwks_endpoint: Option<String>,
    /// Some error handler's `when` reads the client's address.
    pub reads_remote_ip: bool,
    /// `filter_state`: the operator's keys, set on allowed requests beside the built-in ones.
    pub state_keys: Vec<StateKey>,
    /// `envoy.host_crypto`: signatures may go to the proxy's crypto.
    pub host_crypto: bool,
}

impl Filter {
    pub fn new(
        rules: Vec<Rule>,
        matcher: Matcher,
        fallback: Vec<ErrorHandler>,
        log: LogSettings,
        jwks_sources: Vec<Source>,
        jwks_endpoint: Option<String>,
    ) -> Filter {
        let signs = rules
            .iter()
            .flat_map(|r| r.mutators.iter())
            .any(Mutator::signs);
        let reads_remote_ip = rules
            .iter()
            .flat_map(|r| r.errors.iter())
            .chain(fallback.iter())
            .any(ErrorHandler::reads_remote_ip);
        Filter {
            rules: rules.into_iter().map(Arc::new).collect(),
            matcher,
            fallback,
            log,
            jwks_sources,
            jwks_endpoint: jwks_endpoint.filter(|p| signs && !p.is_empty()),
            reads_remote_ip,
            state_keys: Vec::new(),
            host_crypto: true,
        }
    }

    /// Every filter state key a request may set, built-in ones first.
    pub fn state_key_names(&self) -> impl Iterator<Item = &str> {
        state::BUILT_IN
            .into_iter()
            .chain(self.state_keys.iter().map(|k| k.name.as_str()))
    }
}

/// One compiled configuration serves every worker of a native build (workers are threads), so
/// nothing in it may be tied to one thread.
const _: fn() = || {
    fn shared_by_threads<T: Send + Sync>() {}
    shared_by_threads::<Filter>();
};
