//! Buffers, error reporting and panic catching shared by the C entry points.

use std::panic::{catch_unwind, AssertUnwindSafe};

pub const CODE_OK: i32 = 0;
pub const CODE_IO: i32 = 1;
pub const CODE_FORMAT: i32 = 2;
pub const CODE_INVALID_UTF8: i32 = 3;
pub const CODE_TEMPLATE_SYNTAX: i32 = 4;
pub const CODE_TEMPLATE_RENDER: i32 = 5;
pub const CODE_NOT_FOUND: i32 = 6;
pub const CODE_INTERNAL: i32 = 7;

/// A byte buffer handed to C: `ptr` came from `Box<[u8]>` (null when empty).
#[repr(C)]
pub struct Q3vlTextBytes {
    pub ptr: *mut u8,
    pub len: usize,
}

/// A token id buffer handed to C: `ptr` came from `Box<[u32]>` (null when empty).
#[repr(C)]
pub struct Q3vlTextIds {
    pub ptr: *mut u32,
    pub len: usize,
}

/// Failure details; `message` is owned by the caller once set.
#[repr(C)]
pub struct Q3vlTextError {
    pub code: i32,
    /// 1-based template line, 0 if unknown.
    pub line: u32,
    /// Byte offset into the input (invalid UTF-8), 0 if not applicable.
    pub offset: u64,
    pub message: Q3vlTextBytes,
}

/// An error on the Rust side before it crosses the boundary.
pub struct Failure {
    pub code: i32,
    pub line: u32,
    pub offset: u64,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure { code, line: 0, offset: 0, message: message.into() }
    }
}

pub fn bytes_from(data: Vec<u8>) -> Q3vlTextBytes {
    if data.is_empty() {
        return Q3vlTextBytes { ptr: std::ptr::null_mut(), len: 0 };
    }
    let boxed = data.into_boxed_slice();
    let len = boxed.len();
    Q3vlTextBytes { ptr: Box::into_raw(boxed) as *mut u8, len }
}

pub fn ids_from(data: Vec<u32>) -> Q3vlTextIds {
    if data.is_empty() {
        return Q3vlTextIds { ptr: std::ptr::null_mut(), len: 0 };
    }
    let boxed = data.into_boxed_slice();
    let len = boxed.len();
    Q3vlTextIds { ptr: Box::into_raw(boxed) as *mut u32, len }
}

/// # Safety
/// `bytes` must come from this library and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn q3vl_text_bytes_free(bytes: Q3vlTextBytes) {
    if !bytes.ptr.is_null() {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(bytes.ptr, bytes.len)));
    }
}

/// # Safety
/// `ids` must come from this library and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn q3vl_text_ids_free(ids: Q3vlTextIds) {
    if !ids.ptr.is_null() {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ids.ptr, ids.len)));
    }
}

/// Views a C byte range (a null pointer is only allowed with length 0).
///
/// # Safety
/// `ptr` must point to `len` readable bytes that outlive the returned slice.
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// Runs `body`, turning a `Failure` or a panic into the C error protocol.
pub fn guard(err: *mut Q3vlTextError, body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return CODE_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Failure::new(CODE_INTERNAL, format!("panic in the Rust text library: {what}"))
        }
    };
    if !err.is_null() {
        // SAFETY: the caller passes a valid, writable error struct or null.
        unsafe {
            *err = Q3vlTextError {
                code: failure.code,
                line: failure.line,
                offset: failure.offset,
                message: bytes_from(failure.message.into_bytes()),
            };
        }
    }
    failure.code
}
