//! How much the filter logs, and whether logs may carry credentials and subjects.

/// Envoy's log levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// The `log` section, compiled.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: LogLevel,
    pub leak_sensitive_values: bool,
}
