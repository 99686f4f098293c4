//! The ABI calls the binding makes without the SDK: the SDK's wrappers panic (a trap) on a
//! status they do not list, and it has no call for entering its own dispatcher. Only this
//! binding uses these.

use crate::jose::crypto::{Foreign, HostError};

/// The proxy's foreign functions (Envoy's `verify_signature` and `sign`).
pub struct ForeignFunctions;

impl Foreign for ForeignFunctions {
    fn call(&self, function: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError> {
        call_foreign(function, arguments)
    }
}

/// `proxy_call_foreign_function`, raw: the SDK's wrapper panics (a trap) on a status it does
/// not list, and a host's answer must never take the VM down. Any status but Ok is an error;
/// the crypto seam treats every error as "not verified".
pub fn call_foreign(function: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the name and arguments are valid for their lengths during the call; on Ok the
    // host hands over a buffer it allocated through this module's allocator
    // (`proxy_on_memory_allocate`), `size` bytes long, which becomes ours, as the SDK takes it.
    let status = unsafe {
        proxy_call_foreign_function(
            function.as_ptr(),
            function.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut data,
            &mut size,
        )
    };
    match status {
        0 if data.is_null() => Ok(Vec::new()),
        // SAFETY: see above.
        0 => Ok(unsafe { Vec::from_raw_parts(data, size, size) }),
        1 => Err(HostError::NotFound),
        other => Err(HostError::Failed(other)),
    }
}

/// `proxy_set_property`, raw: the SDK's `set_property` panics on any status but Ok; a filter
/// state the host refuses is not worth a trap.
pub fn set_property(path: &[u8], value: &[u8]) {
    // SAFETY: both pointers are valid for their lengths for the duration of the call, and the
    // host only reads them.
    let _ = unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
}

/// Enters the SDK's dispatcher as the proxy does to tell root context `root` that queue
/// `queue` has data: the SDK makes `root` the running context and calls its
/// `on_queue_ready`. Never from inside a root context's callback (the SDK holds its roots
/// borrowed then: a panic).
pub fn queue_ready(root: u32, queue: u32) {
    // SAFETY: an exported function of this module (the SDK's dispatcher entry point), called
    // with no borrow of ours held; it only borrows the SDK's roots, which no HTTP callback
    // holds.
    unsafe { proxy_on_queue_ready(root, queue) };
}

// Defined in this module by the SDK (its dispatcher's entry point), not imported.
extern "C" {
    fn proxy_on_queue_ready(context_id: u32, queue_id: u32);
}

#[allow(clashing_extern_declarations)] // the SDK declares it returning its `Status` enum
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// Envoy's `DeclarePropertyArguments { string name = 1; bool readonly = 2; WasmType type = 3;
/// bytes schema = 4; LifeSpan span = 5; }` for a writable String (type 1) that lives as long as
/// the downstream request (span 1), protobuf-encoded by hand.
pub fn declaration(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 8);
    out.push(0x0a); // field 1, length-delimited
    let mut len = name.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&[0x18, 0x01]); // field 3 (type), varint: String
    out.extend_from_slice(&[0x28, 0x01]); // field 5 (span), varint: DownstreamRequest
    out
}
