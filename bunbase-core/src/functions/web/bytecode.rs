//! The prelude as QuickJS bytecode: parsing its source costs milliseconds,
//! reading bytecode a fraction of that. It is compiled once per process
//! (by the first context to need it; bytecode holds no runtime's state)
//! and read into every new context.

use std::ffi::CString;
use std::sync::OnceLock;

use rquickjs::{Ctx, Error, Result, Value, qjs};

/// Evaluates `source` (the prelude: a script whose value is a function) in
/// `ctx`, from bytecode compiled on first use.
pub(super) fn evaluate<'js>(ctx: &Ctx<'js>, source: &str) -> Result<Value<'js>> {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    let bytecode = match BYTECODE.get() {
        Some(bytecode) => bytecode,
        None => {
            let compiled = compile(ctx, source)?;
            BYTECODE.get_or_init(|| compiled)
        }
    };
    run(ctx, bytecode)
}

/// `source` as the bytecode of a global script, without its source text
/// (stack traces keep file and line).
pub(super) fn compile(ctx: &Ctx<'_>, source: &str) -> Result<Vec<u8>> {
    let source = CString::new(source)?;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context `ctx` locks; the compiled function
    // is owned by `compiled` (freed on drop) and the written buffer is
    // copied and then freed with the context's allocator.
    unsafe {
        let flags =
            qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY | qjs::JS_EVAL_FLAG_STRICT;
        let function = qjs::JS_Eval(
            raw,
            source.as_ptr(),
            source.as_bytes().len() as _,
            c"prelude.js".as_ptr(),
            flags as i32,
        );
        if qjs::JS_IsException(function) {
            return Err(Error::Exception);
        }
        let compiled = Value::from_raw(ctx.clone(), function);
        let mut len = 0;
        let flags = qjs::JS_WRITE_OBJ_BYTECODE | qjs::JS_WRITE_OBJ_STRIP_SOURCE;
        let buffer = qjs::JS_WriteObject(raw, &mut len, compiled.as_raw(), flags as i32);
        if buffer.is_null() {
            return Err(Error::Exception);
        }
        let bytecode = std::slice::from_raw_parts(buffer, len as usize).to_vec();
        qjs::js_free(raw, buffer.cast());
        Ok(bytecode)
    }
}

pub(super) fn run<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: the bytes are what `compile` wrote with this same QuickJS;
    // `JS_EvalFunction` takes ownership of the function read, and the
    // result is owned by the returned `Value`.
    unsafe {
        let function = qjs::JS_ReadObject(
            raw,
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        if qjs::JS_IsException(function) {
            return Err(Error::Exception);
        }
        let value = qjs::JS_EvalFunction(raw, function);
        if qjs::JS_IsException(value) {
            return Err(Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), value))
    }
}
