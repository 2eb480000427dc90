//! Loading `prelude.js`. Parsing its source would cost milliseconds per
//! cold start, so it is split into sections at `//@section <name>` lines,
//! each compiled to QuickJS bytecode once per process (by the first context
//! to need it: bytecode holds no runtime's state) and read into a context
//! when needed: the core by [`install`](super::install), the others when
//! the core's `load(name)` asks (on first use of one of their globals).

use std::ffi::CString;
use std::sync::OnceLock;

use rquickjs::{Ctx, Error, Exception, Result, Value, qjs};

const SOURCE: &str = include_str!("prelude.js");

/// The name of the first section, which has no `//@section` line.
pub(super) const CORE: &str = "core";

struct Section {
    name: &'static str,
    source: String,
    bytecode: OnceLock<Vec<u8>>,
}

fn sections() -> &'static [Section] {
    static SECTIONS: OnceLock<Vec<Section>> = OnceLock::new();
    SECTIONS.get_or_init(|| {
        let mut sections = Vec::new();
        let (mut name, mut lines) = (CORE, Vec::new());
        for line in SOURCE.lines() {
            if let Some(next) = line.strip_prefix("//@section ") {
                sections.push(Section::new(name, &lines));
                (name, lines) = (next.trim(), Vec::new());
            } else {
                lines.push(line);
            }
        }
        sections.push(Section::new(name, &lines));
        sections
    })
}

impl Section {
    fn new(name: &'static str, lines: &[&str]) -> Section {
        Section {
            name,
            source: lines.join("\n"),
            bytecode: OnceLock::new(),
        }
    }
}

/// Evaluates section `name` in `ctx`: its value, a function.
pub(super) fn evaluate<'js>(ctx: &Ctx<'js>, name: &str) -> Result<Value<'js>> {
    let Some(section) = sections().iter().find(|s| s.name == name) else {
        return Err(Exception::throw_internal(
            ctx,
            &format!("no prelude section {name}"),
        ));
    };
    let bytecode = match section.bytecode.get() {
        Some(bytecode) => bytecode,
        None => {
            let compiled = compile(ctx, &section.source)?;
            section.bytecode.get_or_init(|| compiled)
        }
    };
    run(ctx, bytecode)
}

/// `source` as the bytecode of a global script, without its source text or
/// debug information: reading debug information costs as much as the rest
/// (its frames in stack traces lose their line numbers).
fn compile(ctx: &Ctx<'_>, source: &str) -> Result<Vec<u8>> {
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
        let flags = qjs::JS_WRITE_OBJ_BYTECODE
            | qjs::JS_WRITE_OBJ_STRIP_SOURCE
            | qjs::JS_WRITE_OBJ_STRIP_DEBUG;
        let buffer = qjs::JS_WriteObject(raw, &mut len, compiled.as_raw(), flags as i32);
        if buffer.is_null() {
            return Err(Error::Exception);
        }
        let bytecode = std::slice::from_raw_parts(buffer, len as usize).to_vec();
        qjs::js_free(raw, buffer.cast());
        Ok(bytecode)
    }
}

fn run<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> Result<Value<'js>> {
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
