//! A do-nothing Envoy dynamic module that sets `x-user-id: guest` on every request: what any
//! native HTTP filter costs, as `benches/floor` is for proxy-wasm. It exports the hooks Envoy
//! 1.40 requires of an HTTP filter and calls one callback; the declarations are the few it needs
//! (the full ABI is `src/dynamic_module/abi.rs` of portcullis).

use core::ffi::{c_char, c_void};

/// Bytes the module passes to Envoy, read during the call.
#[repr(C)]
struct ModuleBuffer {
    ptr: *const u8,
    length: usize,
}

/// Bytes Envoy passes to the module.
#[repr(C)]
pub struct EnvoyBuffer {
    ptr: *const u8,
    length: usize,
}

/// The request header map (`envoy_dynamic_module_type_http_header_type`).
const REQUEST_HEADER: u32 = 0;
/// `Continue`, for every status type.
const CONTINUE: u32 = 0;

extern "C" {
    fn envoy_dynamic_module_callback_http_set_header(
        filter: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
}

/// Any non-null pointer: the floor keeps no configuration and no per-stream state.
const NOTHING: *const c_void = core::ptr::NonNull::<u8>::dangling().as_ptr() as *const c_void;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    c"v0.2.0".as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _config: *mut c_void,
    _name: EnvoyBuffer,
    _config_text: EnvoyBuffer,
) -> *const c_void {
    NOTHING
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(_config: *const c_void) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    _config: *const c_void,
    _filter: *mut c_void,
) -> *const c_void {
    NOTHING
}

/// # Safety
/// Envoy calls it with the stream's live filter pointer, on its worker.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter: *mut c_void,
    _module: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    let key = b"x-user-id";
    let value = b"guest";
    // SAFETY: `filter` is the live filter of this hook; both buffers are statics Envoy copies
    // during the call.
    unsafe {
        envoy_dynamic_module_callback_http_set_header(
            filter,
            REQUEST_HEADER,
            ModuleBuffer {
                ptr: key.as_ptr(),
                length: key.len(),
            },
            ModuleBuffer {
                ptr: value.as_ptr(),
                length: value.len(),
            },
        );
    }
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _filter: *mut c_void,
    _module: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _filter: *mut c_void,
    _module: *const c_void,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _filter: *mut c_void,
    _module: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _filter: *mut c_void,
    _module: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _filter: *mut c_void,
    _module: *const c_void,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter: *mut c_void,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(_module: *const c_void) {}

/// The callout answer (the floor makes none).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _filter: *mut c_void,
    _module: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const c_void,
    _headers_len: usize,
    _body: *const EnvoyBuffer,
    _body_len: usize,
) {
}

/// Streamed callouts (none): headers, data, trailers, complete, reset.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter: *mut c_void,
    _module: *const c_void,
    _stream_id: u64,
    _headers: *const c_void,
    _headers_len: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter: *mut c_void,
    _module: *const c_void,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_len: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter: *mut c_void,
    _module: *const c_void,
    _stream_id: u64,
    _trailers: *const c_void,
    _trailers_len: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter: *mut c_void,
    _module: *const c_void,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter: *mut c_void,
    _module: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

/// Scheduled events (none are committed).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter: *mut c_void,
    _module: *const c_void,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter: *mut c_void,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter: *mut c_void,
    _module: *const c_void,
) {
}
