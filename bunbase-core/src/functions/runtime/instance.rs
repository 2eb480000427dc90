//! One warm function instance: a QuickJS runtime and context with the web
//! globals, the bundle's modules evaluated, and the default export kept.
//! It runs one invocation at a time and belongs to the worker thread that
//! made it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::loader::{Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{
    AsyncContext, AsyncRuntime, CatchResultExt, CaughtError, Ctx, Function, Module, Persistent,
    Promise, Value,
};

use super::budget::{Budget, Trip};
use super::{Bindings, Call, Output};
use crate::functions::compile::Bundle;
use crate::functions::model::{Limits, LogLine, Outcome};
use crate::functions::web::{self, FetchRequest, FetchResponse, HttpResponse};

/// At most this many console lines are kept per invocation, each cut to
/// [`MAX_LINE_BYTES`].
pub const MAX_LOG_LINES: usize = 100;
pub const MAX_LINE_BYTES: usize = 2048;

/// QuickJS's own stack limit; worker threads have far more.
const MAX_STACK_BYTES: usize = 1024 * 1024;

/// Builds the `ctx` argument of each invocation from the instance's
/// `bunbase` object and the invocation's JSON details.
const CTX_FACTORY: &str = include_str!("ctx.js");

/// Fields drop in order: the persistent handles before the context and
/// the runtime (a runtime freed while a persistent value lives aborts the
/// process: QuickJS asserts its object list is empty).
pub struct Instance {
    handler: Persistent<Function<'static>>,
    make_ctx: Persistent<Function<'static>>,
    context: AsyncContext,
    runtime: AsyncRuntime,
    budget: Rc<Budget>,
    logs: Rc<RefCell<LogBuffer>>,
    /// Set once the instance must not serve again (a limit tripped).
    pub poisoned: bool,
}

/// Why an instance could not start.
pub struct StartFailure {
    pub outcome: Outcome,
    pub message: String,
    pub logs: LogBuffer,
}

impl Instance {
    /// A cold start: a new runtime with `limits`, the web globals, and the
    /// bundle evaluated (top-level code runs here, under the same budget as
    /// an invocation).
    pub async fn start(
        bundle: Arc<Bundle>,
        limits: &Limits,
        bindings: Arc<dyn Bindings>,
    ) -> Result<Instance, StartFailure> {
        let fail = |message: String| StartFailure {
            outcome: Outcome::Error,
            message,
            logs: LogBuffer::default(),
        };
        let runtime =
            AsyncRuntime::new().map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;
        runtime
            .set_memory_limit(limits.memory_mb as usize * 1024 * 1024)
            .await;
        runtime.set_max_stack_size(MAX_STACK_BYTES).await;
        let budget = Rc::new(Budget::default());
        let handler_budget = budget.clone();
        runtime
            .set_interrupt_handler(Some(Box::new(move || handler_budget.interrupt())))
            .await;
        runtime
            .set_loader(BundleResolver, BundleLoader(bundle.clone()))
            .await;
        let context = AsyncContext::full(&runtime)
            .await
            .map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;
        let logs = Rc::new(RefCell::new(LogBuffer::default()));
        let host = web::Host {
            console: Rc::new(Console(logs.clone())),
            outside: Rc::new(Outside(bindings.clone())),
        };
        let entry = bundle.entry.clone();
        budget.start(
            limits.cpu_ms,
            Instant::now() + Duration::from_millis(limits.wall_ms.into()),
        );
        let started = tokio::time::timeout(
            Duration::from_millis(limits.wall_ms.into()),
            context.async_with(async |ctx| -> Result<_, String> {
                web::install(&ctx, host).map_err(|e| describe(&ctx, CaughtError::from_error(&ctx, e)))?;
                let call = call_function(&ctx, bindings).map_err(|e| describe(&ctx, CaughtError::from_error(&ctx, e)))?;
                let factory: Function = ctx
                    .eval::<Function, _>(CTX_FACTORY)
                    .catch(&ctx)
                    .map_err(|e| describe(&ctx, e))?;
                let make_ctx: Function = factory.call((call,)).catch(&ctx).map_err(|e| describe(&ctx, e))?;
                let namespace: rquickjs::Object = Module::import(&ctx, entry.as_str())
                    .catch(&ctx)
                    .map_err(|e| describe(&ctx, e))?
                    .into_future::<rquickjs::Object>()
                    .await
                    .catch(&ctx)
                    .map_err(|e| describe(&ctx, e))?;
                let handler: Value = namespace.get("default").catch(&ctx).map_err(|e| describe(&ctx, e))?;
                let Some(handler) = handler.into_function() else {
                    return Err(format!(
                        "the default export of {entry} is not a function: export default async (request, ctx) => new Response(...)"
                    ));
                };
                Ok((
                    Persistent::save(&ctx, handler),
                    Persistent::save(&ctx, make_ctx),
                ))
            }),
        )
        .await;
        let trip = budget.finish();
        let taken_logs = std::mem::take(&mut *logs.borrow_mut());
        let failure = |outcome, message| StartFailure {
            outcome,
            message,
            logs: taken_logs.clone(),
        };
        match started {
            Ok(Ok((handler, make_ctx))) => {
                *logs.borrow_mut() = taken_logs;
                Ok(Instance {
                    runtime,
                    context,
                    handler,
                    make_ctx,
                    budget,
                    logs,
                    poisoned: false,
                })
            }
            Ok(Err(message)) => {
                let outcome = classify(trip, &message);
                Err(failure(
                    outcome,
                    limit_message(outcome, limits).unwrap_or(message),
                ))
            }
            Err(_) => Err(failure(
                Outcome::Timeout,
                limit_message(Outcome::Timeout, limits).unwrap_or_default(),
            )),
        }
    }

    /// Runs one invocation. Never fails: what went wrong is in the output.
    pub async fn invoke(&mut self, call: Call, limits: &Limits) -> Output {
        let started = Instant::now();
        let wall = Duration::from_millis(limits.wall_ms.into());
        let max_response = limits.response_bytes as usize;
        self.budget.start(limits.cpu_ms, started + wall);
        let handler = self.handler.clone();
        let make_ctx = self.make_ctx.clone();
        let ran = tokio::time::timeout(
            wall,
            self.context
                .async_with(async |ctx| -> Result<HttpResponse, (bool, String)> {
                    let handler = handler
                        .restore(&ctx)
                        .catch(&ctx)
                        .map_err(|e| (false, describe(&ctx, e)))?;
                    let make_ctx = make_ctx
                        .restore(&ctx)
                        .catch(&ctx)
                        .map_err(|e| (false, describe(&ctx, e)))?;
                    let request = web::to_request(&ctx, call.request)
                        .catch(&ctx)
                        .map_err(|e| (false, describe(&ctx, e)))?;
                    let details = ctx
                        .json_parse(call.details)
                        .catch(&ctx)
                        .map_err(|e| (false, describe(&ctx, e)))?;
                    let argument: Value = make_ctx
                        .call((details,))
                        .catch(&ctx)
                        .map_err(|e| (false, describe(&ctx, e)))?;
                    let returned: Value = handler
                        .call((request, argument))
                        .catch(&ctx)
                        .map_err(|e| (false, describe(&ctx, e)))?;
                    let value = match returned.clone().into_promise() {
                        Some(promise) => awaited(&ctx, promise)
                            .await
                            .map_err(|e| (false, describe(&ctx, e)))?,
                        None => returned,
                    };
                    web::read_response(&ctx, value, max_response)
                        .await
                        .map_err(|message| (true, message))
                }),
        )
        .await;
        let trip = self.budget.finish();
        let mut output = Output {
            outcome: Outcome::Ok,
            response: None,
            error: None,
            logs: Vec::new(),
            logs_truncated: false,
            cold: false,
            duration: started.elapsed(),
            cpu_us: self.budget.cpu_used_us(),
        };
        match ran {
            Ok(Ok(response)) => output.response = Some(response),
            Ok(Err((from_response, message))) => {
                output.outcome = if from_response && message.contains("larger than") {
                    Outcome::ResponseTooLarge
                } else {
                    classify(trip, &message)
                };
                output.error = Some(limit_message(output.outcome, limits).unwrap_or(message));
            }
            Err(_) => {
                output.outcome = Outcome::Timeout;
                output.error = limit_message(Outcome::Timeout, limits);
            }
        }
        if !matches!(
            output.outcome,
            Outcome::Ok | Outcome::Error | Outcome::ResponseTooLarge
        ) {
            // A stopped runtime may be mid-way through anything.
            self.poisoned = true;
        }
        let logs = std::mem::take(&mut *self.logs.borrow_mut());
        output.logs = logs.lines;
        output.logs_truncated = logs.truncated;
        output
    }

    /// Bytes the JavaScript heap holds now.
    pub async fn heap_bytes(&self) -> u64 {
        self.runtime.memory_usage().await.malloc_size.max(0) as u64
    }
}

async fn awaited<'js>(
    ctx: &Ctx<'js>,
    promise: Promise<'js>,
) -> Result<Value<'js>, CaughtError<'js>> {
    promise.into_future::<Value>().await.catch(ctx)
}

/// Which limit an error means, from what the budget saw and QuickJS said.
fn classify(trip: Option<Trip>, message: &str) -> Outcome {
    match trip {
        Some(Trip::Cpu) => Outcome::CpuLimit,
        Some(Trip::Wall) => Outcome::Timeout,
        None if message.contains("out of memory") => Outcome::MemoryLimit,
        None => Outcome::Error,
    }
}

/// The message a limit's outcome carries.
fn limit_message(outcome: Outcome, limits: &Limits) -> Option<String> {
    match outcome {
        Outcome::CpuLimit => Some(format!(
            "stopped: the function used more than its {} ms of CPU time",
            limits.cpu_ms
        )),
        Outcome::Timeout => Some(format!(
            "stopped: the function did not respond within {} ms",
            limits.wall_ms
        )),
        Outcome::MemoryLimit => Some(format!(
            "stopped: the function ran out of memory (limit {} MiB)",
            limits.memory_mb
        )),
        _ => None,
    }
}

/// A thrown value as one line: `TypeError: x is not a function` plus the
/// stack's first frames.
fn describe<'js>(_ctx: &Ctx<'js>, error: CaughtError<'js>) -> String {
    match error {
        CaughtError::Exception(e) => {
            let message = e.message().unwrap_or_default();
            let name = e
                .get::<_, Option<String>>("name")
                .ok()
                .flatten()
                .unwrap_or_else(|| "Error".into());
            let mut out = format!("{name}: {message}");
            if let Some(stack) = e.stack() {
                let frames: Vec<&str> = stack
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(5)
                    .collect();
                if !frames.is_empty() {
                    out.push('\n');
                    out.push_str(&frames.join("\n"));
                }
            }
            out
        }
        CaughtError::Value(v) => {
            let shown = v
                .as_string()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| format!("{:?}", v.type_of()));
            format!("Uncaught {shown}")
        }
        CaughtError::Error(e) => e.to_string(),
    }
}

/// `call(method, argsJson)`: the `ctx.bunbase` bridge. It resolves to JSON
/// text `{"ok":…}` or `{"error":{"code","message"}}`, which ctx.js turns
/// into a value or a thrown `BunbaseError`.
fn call_function<'js>(
    ctx: &Ctx<'js>,
    bindings: Arc<dyn Bindings>,
) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        rquickjs::prelude::Async(move |method: String, args: String| {
            let bindings = bindings.clone();
            async move {
                let reply = match serde_json::from_str::<serde_json::Value>(&args) {
                    Ok(args) => bindings.call(&method, args).await,
                    Err(e) => Err(crate::Error::invalid(format!("arguments of {method}: {e}"))),
                };
                let text = match reply {
                    Ok(value) => serde_json::json!({ "ok": value }).to_string(),
                    Err(e) => serde_json::json!({
                        "error": { "code": e.code().as_str(), "message": e.to_string() }
                    })
                    .to_string(),
                };
                rquickjs::Result::Ok(text)
            }
        }),
    )
}

/// Console lines of the running invocation, bounded.
#[derive(Debug, Default, Clone)]
pub struct LogBuffer {
    pub lines: Vec<LogLine>,
    pub truncated: bool,
}

struct Console(Rc<RefCell<LogBuffer>>);

impl web::Console for Console {
    fn line(&self, level: &str, mut message: String) {
        let mut logs = self.0.borrow_mut();
        if logs.lines.len() >= MAX_LOG_LINES {
            logs.truncated = true;
            return;
        }
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
            logs.truncated = true;
        }
        logs.lines.push(LogLine {
            level: level.to_string(),
            message,
        });
    }
}

struct Outside(Arc<dyn Bindings>);

impl web::Outside for Outside {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<FetchResponse, String>>>> {
        let bindings = self.0.clone();
        Box::pin(async move { bindings.fetch(request).await })
    }
}

/// Module names are the bundle's canonical paths (the compiler rewrote
/// every specifier), so resolution is the identity.
struct BundleResolver;

impl Resolver for BundleResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        _base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        Ok(name.to_string())
    }
}

struct BundleLoader(Arc<Bundle>);

impl Loader for BundleLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        match self.0.module(name) {
            Some(module) => Module::declare(ctx.clone(), name, module.code.as_str()),
            None => Err(rquickjs::Error::new_loading(name)),
        }
    }
}
