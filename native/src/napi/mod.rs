//! The Node-API boundary: the only module with `unsafe` code.
//!
//! Exported functions are plain safe Rust functions of type [`Export`]. One
//! trampoline calls them, catches any panic, and turns an [`ErrorReport`] into
//! a thrown JavaScript `Error` carrying `code`, `file`, `offset` and `path`.
//! Work that may take long returns [`Reply::Task`], which runs on the libuv
//! thread pool and settles a promise, so the event loop stays free.

mod exports;
mod ext4;
mod layer;
mod qcow2;
mod sys;
mod value;

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Mutex};

use crate::report::ErrorReport;
use sys::*;
pub use value::Value;

/// Maximum arguments one exported function takes.
const MAX_ARGS: usize = 8;

pub type Work = Box<dyn FnOnce() -> Result<Value, ErrorReport> + Send>;

/// Result of an exported function, as JavaScript receives it.
pub enum Reply {
    /// Returned at once.
    Value(Value),
    /// Run on the thread pool; JavaScript receives a promise.
    Task(Work),
}

pub type Export = fn(&CallContext) -> Result<Reply, ErrorReport>;

/// A shared native object handed to JavaScript as an `External`.
pub type Handle = Arc<dyn Any + Send + Sync>;

/// Arguments of one call from JavaScript.
pub struct CallContext {
    env: napi_env,
    args: Vec<napi_value>,
}

fn invalid_argument(index: usize, expected: &str) -> ErrorReport {
    ErrorReport::new("ERR_INVALID_ARG_TYPE", format!("argument {index} must be {expected}"))
}

impl CallContext {
    fn type_of(&self, index: usize) -> i32 {
        let Some(&value) = self.args.get(index) else { return NAPI_UNDEFINED };
        let mut kind = NAPI_UNDEFINED;
        // SAFETY: `value` came from napi_get_cb_info for this env and call.
        unsafe { napi_typeof(self.env, value, &mut kind) };
        kind
    }

    /// Returns whether argument `index` is missing, `undefined` or `null`.
    pub fn is_absent(&self, index: usize) -> bool {
        matches!(self.type_of(index), NAPI_UNDEFINED | NAPI_NULL)
    }

    pub fn string(&self, index: usize) -> Result<String, ErrorReport> {
        if self.type_of(index) != NAPI_STRING {
            return Err(invalid_argument(index, "a string"));
        }
        let value = self.args[index];
        let mut length = 0usize;
        // SAFETY: a null buffer requests the length only; the second call
        // writes at most `length + 1` bytes into a buffer of that size.
        unsafe {
            napi_get_value_string_utf8(self.env, value, ptr::null_mut(), 0, &mut length);
            let mut bytes = vec![0u8; length + 1];
            napi_get_value_string_utf8(self.env, value, bytes.as_mut_ptr().cast(), length + 1, &mut length);
            bytes.truncate(length);
            String::from_utf8(bytes).map_err(|_| invalid_argument(index, "valid UTF-8"))
        }
    }

    /// Reads an unsigned integer given as a safe-integer number or a bigint.
    pub fn u64(&self, index: usize) -> Result<u64, ErrorReport> {
        let value = self.args.get(index).copied();
        match self.type_of(index) {
            NAPI_NUMBER => {
                let mut number = 0f64;
                // SAFETY: the value is a number, checked above.
                unsafe { napi_get_value_double(self.env, value.unwrap(), &mut number) };
                let max_safe_integer = ((1u64 << 53) - 1) as f64;
                if number.fract() != 0.0 || !(0.0..=max_safe_integer).contains(&number) {
                    return Err(invalid_argument(index, "a non-negative safe integer"));
                }
                Ok(number as u64)
            }
            NAPI_BIGINT => {
                let (mut result, mut lossless) = (0u64, false);
                // SAFETY: the value is a bigint, checked above.
                unsafe { napi_get_value_bigint_uint64(self.env, value.unwrap(), &mut result, &mut lossless) };
                if !lossless {
                    return Err(invalid_argument(index, "a bigint between 0 and 2^64-1"));
                }
                Ok(result)
            }
            _ => Err(invalid_argument(index, "a number or bigint")),
        }
    }

    pub fn bool(&self, index: usize) -> Result<bool, ErrorReport> {
        if self.type_of(index) != NAPI_BOOLEAN {
            return Err(invalid_argument(index, "a boolean"));
        }
        let mut result = false;
        // SAFETY: the value is a boolean, checked above.
        unsafe { napi_get_value_bool(self.env, self.args[index], &mut result) };
        Ok(result)
    }

    /// Copies a `Buffer` or `Uint8Array` argument, so the copy may move to
    /// another thread.
    pub fn bytes(&self, index: usize) -> Result<Vec<u8>, ErrorReport> {
        let Some(&value) = self.args.get(index) else { return Err(invalid_argument(index, "a Buffer")) };
        let mut is_buffer = false;
        // SAFETY: napi_is_buffer only inspects the value.
        unsafe { napi_is_buffer(self.env, value, &mut is_buffer) };
        if !is_buffer {
            return Err(invalid_argument(index, "a Buffer"));
        }
        let (mut data, mut length) = (ptr::null_mut::<c_void>(), 0usize);
        // SAFETY: for a Buffer, Node returns a pointer to `length` bytes that
        // stay valid for the duration of this call; they are copied here.
        unsafe {
            napi_get_buffer_info(self.env, value, &mut data, &mut length);
            if length == 0 {
                return Ok(Vec::new());
            }
            Ok(std::slice::from_raw_parts(data as *const u8, length).to_vec())
        }
    }

    /// Returns the native object behind an `External` made by [`Value::Handle`].
    pub fn handle<T: Send + 'static>(&self, index: usize) -> Result<Arc<Mutex<T>>, ErrorReport> {
        if self.type_of(index) != NAPI_EXTERNAL {
            return Err(invalid_argument(index, "a native handle"));
        }
        let mut data = ptr::null_mut::<c_void>();
        // SAFETY: every External this addon creates points to a boxed
        // `Handle` (see `Value::Handle`), which lives until its finalizer.
        let handle: &Handle = unsafe {
            napi_get_value_external(self.env, self.args[index], &mut data);
            &*(data as *const Handle)
        };
        handle
            .clone()
            .downcast::<Mutex<T>>()
            .map_err(|_| invalid_argument(index, std::any::type_name::<T>()))
    }
}

fn panic_report(payload: Box<dyn Any + Send>) -> ErrorReport {
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string());
    ErrorReport::new("ERR_NATIVE_PANIC", format!("internal error in the native core: {message}"))
}

/// Runs `f`, turning a panic into an `ERR_NATIVE_PANIC` report.
fn run_caught<T>(f: impl FnOnce() -> Result<T, ErrorReport>) -> Result<T, ErrorReport> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panic_report(payload)))
}

unsafe fn throw(env: napi_env, report: &ErrorReport) {
    let error = value::error_value(env, report);
    napi_throw(env, error);
}

/// The single `napi_callback` behind every exported function. Its `data`
/// pointer is the [`Export`] to run.
unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argc = MAX_ARGS;
    let mut argv = [ptr::null_mut(); MAX_ARGS];
    let mut data = ptr::null_mut::<c_void>();
    napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data);
    // SAFETY: `data` is the `Export` pointer registered in `define`.
    let export: Export = std::mem::transmute::<*mut c_void, Export>(data);
    let context = CallContext { env, args: argv[..argc.min(MAX_ARGS)].to_vec() };

    match run_caught(|| export(&context)) {
        Ok(Reply::Value(value)) => value::to_js(env, value),
        Ok(Reply::Task(work)) => queue_task(env, work),
        Err(report) => {
            throw(env, &report);
            ptr::null_mut()
        }
    }
}

struct Task {
    work: Option<Work>,
    result: Option<Result<Value, ErrorReport>>,
    deferred: napi_deferred,
    async_work: napi_async_work,
}

unsafe extern "C" fn execute_task(_env: napi_env, data: *mut c_void) {
    // SAFETY: `data` is the `Task` boxed in `queue_task`; libuv runs execute
    // once, before complete, and nothing else touches the task meanwhile.
    let task = &mut *(data as *mut Task);
    let work = task.work.take().expect("a task runs once");
    task.result = Some(run_caught(work));
}

unsafe extern "C" fn complete_task(env: napi_env, _status: napi_status, data: *mut c_void) {
    // SAFETY: libuv calls complete once per work item, so the boxed task is
    // reclaimed here exactly once.
    let task = Box::from_raw(data as *mut Task);
    napi_delete_async_work(env, task.async_work);
    let result = task
        .result
        .unwrap_or_else(|| Err(ErrorReport::new("ERR_NATIVE_CANCELLED", "native task was cancelled")));
    match result {
        Ok(value) => napi_resolve_deferred(env, task.deferred, value::to_js(env, value)),
        Err(report) => napi_reject_deferred(env, task.deferred, value::error_value(env, &report)),
    };
}

unsafe fn queue_task(env: napi_env, work: Work) -> napi_value {
    let mut promise = ptr::null_mut();
    let mut deferred = ptr::null_mut();
    napi_create_promise(env, &mut deferred, &mut promise);

    let task = Box::into_raw(Box::new(Task { work: Some(work), result: None, deferred, async_work: ptr::null_mut() }));
    let name = value::to_js(env, Value::String("layerdisk".into()));
    let status = napi_create_async_work(
        env,
        ptr::null_mut(),
        name,
        execute_task,
        complete_task,
        task.cast(),
        &mut (*task).async_work,
    );
    if status != NAPI_OK || napi_queue_async_work(env, (*task).async_work) != NAPI_OK {
        let task = Box::from_raw(task);
        let report = ErrorReport::new("ERR_NATIVE_QUEUE", "could not queue native work on the thread pool");
        napi_reject_deferred(env, task.deferred, value::error_value(env, &report));
    }
    promise
}

unsafe fn define(env: napi_env, exports: napi_value, name: &str, export: Export) {
    let mut function = ptr::null_mut();
    let data = export as *mut c_void;
    napi_create_function(env, name.as_ptr().cast(), name.len(), trampoline, data, &mut function);
    let c_name = std::ffi::CString::new(name).expect("export names contain no NUL");
    napi_set_named_property(env, exports, c_name.as_ptr(), function);
}

/// Entry point that Node calls when it loads the addon.
///
/// # Safety
/// Called by Node with a valid `env` and `exports` object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    // Panics are reported to JavaScript as errors, so the default hook's
    // message on stderr would only duplicate them: the library never prints.
    std::panic::set_hook(Box::new(|_| {}));
    for table in [exports::EXPORTS, qcow2::EXPORTS, ext4::EXPORTS, layer::EXPORTS] {
        for (name, export) in table {
            define(env, exports, name, *export);
        }
    }
    exports
}
