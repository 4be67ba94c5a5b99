//! Conversion of Rust values and error reports into JavaScript values.

use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::{Arc, Mutex};

use super::sys::*;
use super::Handle;
use crate::report::ErrorReport;

/// A value returned to JavaScript.
pub enum Value {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Buffer(Vec<u8>),
    Array(Vec<Value>),
    Object(Vec<(&'static str, Value)>),
    /// A native object that JavaScript holds as an opaque `External`; it is
    /// dropped when the garbage collector collects the last reference.
    Handle(Handle),
}

impl Value {
    /// Wraps a native object as a handle that `CallContext::handle::<T>` reads back.
    pub fn handle<T: Send + 'static>(object: T) -> Value {
        Value::Handle(Arc::new(Mutex::new(object)))
    }
}

unsafe extern "C" fn finalize_handle(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the boxed `Handle` created in `to_js`, finalized once.
    drop(Box::from_raw(data as *mut Handle));
}

unsafe fn string_value(env: napi_env, text: &str) -> napi_value {
    let mut result = ptr::null_mut();
    napi_create_string_utf8(env, text.as_ptr().cast(), text.len(), &mut result);
    result
}

unsafe fn set_property(env: napi_env, object: napi_value, name: &str, value: napi_value) {
    let c_name = CString::new(name).expect("property names contain no NUL");
    napi_set_named_property(env, object, c_name.as_ptr(), value);
}

/// Converts `value` into a JavaScript value.
///
/// # Safety
/// `env` must be the environment of the current callback.
pub unsafe fn to_js(env: napi_env, value: Value) -> napi_value {
    let mut result = ptr::null_mut();
    match value {
        Value::Undefined => {
            napi_get_undefined(env, &mut result);
        }
        Value::Null => {
            napi_get_null(env, &mut result);
        }
        Value::Bool(flag) => {
            napi_get_boolean(env, flag, &mut result);
        }
        Value::Number(number) => {
            napi_create_double(env, number, &mut result);
        }
        Value::String(text) => result = string_value(env, &text),
        Value::Buffer(bytes) => {
            let mut data = ptr::null_mut();
            napi_create_buffer_copy(env, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut result);
        }
        Value::Array(items) => {
            napi_create_array_with_length(env, items.len(), &mut result);
            for (index, item) in items.into_iter().enumerate() {
                napi_set_element(env, result, index as u32, to_js(env, item));
            }
        }
        Value::Object(fields) => {
            napi_create_object(env, &mut result);
            for (name, field) in fields {
                set_property(env, result, name, to_js(env, field));
            }
        }
        Value::Handle(handle) => {
            let boxed = Box::into_raw(Box::new(handle));
            napi_create_external(env, boxed.cast(), finalize_handle, ptr::null_mut(), &mut result);
        }
    }
    result
}

/// Builds a JavaScript `Error` from a report: `code` is set by Node-API, and
/// `file`, `offset` and `path` are added when the report has them.
///
/// # Safety
/// `env` must be the environment of the current callback.
pub unsafe fn error_value(env: napi_env, report: &ErrorReport) -> napi_value {
    let code = string_value(env, report.code);
    let message = string_value(env, &report.message);
    let mut error = ptr::null_mut();
    napi_create_error(env, code, message, &mut error);

    if let Some(file) = &report.file {
        set_property(env, error, "file", string_value(env, file));
    }
    if let Some(offset) = report.offset {
        set_property(env, error, "offset", to_js(env, Value::Number(offset as f64)));
    }
    if let Some(path) = &report.path {
        set_property(env, error, "path", string_value(env, path));
    }
    error
}
