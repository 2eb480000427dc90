// The global environment of a BunBase function: the Web/Fetch API over the
// natives in `host`, which lives only in these closures (never on globalThis).
//
// Cold starts pay for every byte evaluated here, so the file is split into
// sections at `//@section <name>` lines. Each is compiled to bytecode once
// per process; the first (the core) is read into every context, the others
// only when one of their globals is first touched (or the engine needs
// them). A section is a function of `I`, the internals they share, and
// returns the globals it defines. Keep load-time work to defining classes.
//
// `host` and `I` have no prototype (a getter user code puts on
// Object.prototype must never see them) and are never handed to anything
// user code can replace (builtins included).
(function (host) {
"use strict";
// Taken now, so that code replacing them later cannot break loading.
const { defineProperty, getOwnPropertyDescriptor, keys, setPrototypeOf } = Object;
setPrototypeOf(host, null);
const { load, urlParse, schedule, unschedule } = host;
const G = globalThis, TE = TypeError;
const define = (o, k, value) => defineProperty(o, k, { value, writable: true, configurable: true });
const u8 = x => {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TE("Expected an ArrayBuffer or an ArrayBufferView");
};
const W = s => String(s).toWellFormed();
const I = {
  __proto__: null,
  host, G, TE, KEY: {}, define, u8, W,
  dom: (message, name) => new DOMException(message, name),
  isBuf: x => x instanceof ArrayBuffer || ArrayBuffer.isView(x),
  whole: u => u.byteOffset === 0 && u.byteLength === u.buffer.byteLength ? u.buffer : u.slice().buffer,
  concat: (parts, n) => {
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(n);
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  },
  pairs: flat => {
    const out = [];
    for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
    return out;
  },
  parsed: (url, base) => urlParse(W(url), base === undefined ? undefined : W(base)),
  // Names classes for Object.prototype.toString, as the platform's are.
  tag: (...classes) => {
    for (const C of classes) Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
  },
};

// ---- sections: loaded on first use --------------------------------------
const loaded = new Map(), getters = new Map();
const need = I.need = name => {
  let globals = loaded.get(name);
  if (globals) return globals;
  loaded.set(name, globals = load(name)(I));
  for (const k of keys(globals)) {
    // Unless the function replaced the global already.
    if (getOwnPropertyDescriptor(G, k)?.get === getters.get(k)) define(G, k, globals[k]);
  }
  return globals;
};
for (const [section, ...names] of [
  ["console", "console"],
  ["text", "TextEncoder", "TextDecoder"],
  ["url", "URL", "URLSearchParams"],
  ["streams", "ReadableStream", "ReadableStreamDefaultReader"],
  ["http", "Headers", "Request", "Response", "fetch"],
  ["crypto", "crypto", "CryptoKey"],
  ["clone", "structuredClone"],
]) {
  for (const k of names) {
    const get = () => need(section)[k];
    getters.set(k, get);
    defineProperty(G, k, { get, set(v) { define(G, k, v); }, configurable: true });
  }
}

// ---- timers -------------------------------------------------------------
const timers = new Map();
let nextTimer = 1;
const fire = id => {
  const t = timers.get(id);
  if (!t) return;
  if (t.r) schedule(id, t.ms, fire); else timers.delete(id);
  try { if (typeof t.f === "function") t.f(...t.a); } catch (e) { need("console").console.error("Uncaught", e); }
};
const addTimer = (f, ms, a, r) => {
  ms = Number(ms);
  ms = ms >= 0 ? (ms > 2147483647 ? 1 : ms) : 0;
  const id = nextTimer++;
  timers.set(id, { f, a, ms, r });
  schedule(id, ms, fire);
  return id;
};
const clearTimer = id => { if (timers.delete(id)) unschedule(id); };
define(G, "setTimeout", (f, ms = 0, ...a) => addTimer(f, ms, a, false));
define(G, "setInterval", (f, ms = 0, ...a) => addTimer(f, ms, a, true));
define(G, "clearTimeout", clearTimer);
define(G, "clearInterval", clearTimer);
define(G, "self", G);

// For the engine only (kept in Rust, never on globalThis).
return {
  request: (method, url, headers, body) => need("http") && I.hostRequest(method, url, headers, body),
  read: (value, max) => need("http") && I.readResponse(value, max),
};
});

//@section console
(I => {
const { host: { log }, W } = I;
const errText = e => {
  let head;
  try { head = `${e.name}: ${e.message}`; } catch { head = "Error"; }
  const st = typeof e.stack === "string" ? e.stack.trimEnd() : "";
  return !st ? head : st.startsWith(head) ? st : `${head}\n${st}`;
};
const key = k => /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k);
const is = (v, C) => C !== undefined && v instanceof C;
const inspect = (v, d, seen) => {
  switch (typeof v) {
    case "string": return d ? JSON.stringify(v) : v;
    case "function": {
      const n = v.name || "(anonymous)";
      return /^class\b/.test(Function.prototype.toString.call(v)) ? `[class ${n}]` : `[Function: ${n}]`;
    }
    case "bigint": return `${v}n`;
    case "symbol": return v.toString();
    case "object": break;
    default: return Object.is(v, -0) ? "-0" : String(v);
  }
  if (v === null) return "null";
  if (v instanceof Error) return errText(v);
  if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
  if (v instanceof RegExp) return String(v);
  if (seen.includes(v)) return "[Circular]";
  if (d > 2) return Array.isArray(v) ? "[Array]" : "[Object]";
  seen = [...seen, v];
  const f = x => inspect(x, d + 1, seen);
  const list = (pre, items, more = 0, open = "{", close = "}") => {
    if (more > 0) items.push(`... ${more} more`);
    return items.length ? `${pre}${open} ${items.join(", ")} ${close}` : `${pre}${open}${close}`;
  };
  const N = 100;
  if (Array.isArray(v)) return list("", v.slice(0, N).map(f), v.length - N, "[", "]");
  if (v instanceof Map) return list(`Map(${v.size}) `, [...v].slice(0, N).map(([k, x]) => `${f(k)} => ${f(x)}`), v.size - N);
  if (v instanceof Set) return list(`Set(${v.size}) `, [...v].slice(0, N).map(f), v.size - N);
  if (v instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${v.byteLength} }`;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView))
    return list(`${v[Symbol.toStringTag]}(${v.length}) `, Array.from(v.subarray(0, N), f), v.length - N, "[", "]");
  if (v instanceof Promise) return "Promise {}";
  if (is(v, I.Headers)) return list("Headers ", [...v].map(([k, x]) => `${key(k)}: ${f(x)}`));
  if (is(v, I.URLSearchParams)) return list("URLSearchParams ", [...v].map(([k, x]) => `${f(k)} => ${f(x)}`));
  if (is(v, I.URL)) return `URL { href: ${f(v.href)} }`;
  if (is(v, I.Request)) return `Request { method: ${f(v.method)}, url: ${f(v.url)} }`;
  if (is(v, I.Response)) return `Response { status: ${v.status}, url: ${f(v.url)} }`;
  const proto = Object.getPrototypeOf(v);
  const c = proto === null ? null : v.constructor;
  const tag = proto === null ? "[Object: null prototype] " : typeof c === "function" && c !== Object && c.name ? `${c.name} ` : "";
  const ks = Object.keys(v);
  return list(tag, ks.slice(0, N).map(k => `${key(k)}: ${f(v[k])}`), ks.length - N);
};
const show = I.show = (x, d = 0) => {
  try { return inspect(x, d, []); } catch { return Object.prototype.toString.call(x); }
};
const fmt = a => {
  const out = [];
  let i = 0;
  if (typeof a[0] === "string" && a.length > 1) {
    i = 1;
    out.push(a[0].replace(/%[sdifoOjc%]/g, m => {
      if (m === "%%") return "%";
      if (i >= a.length) return m;
      const x = a[i++];
      switch (m) {
        case "%s": return typeof x === "string" ? x : show(x, 1);
        case "%d": case "%i":
          return typeof x === "bigint" ? `${x}n` : String(m === "%i" ? parseInt(x) : Number(x));
        case "%f": return String(parseFloat(x));
        case "%c": return "";
        default: return show(x, 1);
      }
    }));
  }
  for (; i < a.length; i++) out.push(show(a[i]));
  return W(out.join(" "));
};
let indent = "";
const print = (level, a) => log(level, indent ? fmt(a).replace(/^/gm, indent) : fmt(a));
const counts = new Map(), times = new Map();
const console = {
  log: (...a) => print("log", a),
  info: (...a) => print("info", a),
  warn: (...a) => print("warn", a),
  error: (...a) => print("error", a),
  debug: (...a) => print("debug", a),
  trace: (...a) => {
    const st = (new Error().stack || "").split("\n").slice(1).join("\n");
    print("debug", [`Trace${a.length ? ": " + fmt(a) : ""}\n${st}`.trimEnd()]);
  },
  dir: x => print("log", [x]),
  table: (...a) => print("log", a),
  assert: (ok, ...a) => { if (!ok) print("error", ["Assertion failed" + (a.length ? ":" : ""), ...a]); },
  count: (l = "default") => {
    const n = (counts.get(l = String(l)) || 0) + 1;
    counts.set(l, n);
    print("info", [`${l}: ${n}`]);
  },
  countReset: (l = "default") => { counts.delete(String(l)); },
  time: (l = "default") => { times.set(String(l), performance.now()); },
  timeLog: (l = "default", ...a) => {
    const t = times.get(l = String(l));
    if (t === undefined) print("warn", [`Timer '${l}' does not exist`]);
    else print("info", [`${l}: ${(performance.now() - t).toFixed(3)} ms`, ...a]);
  },
  timeEnd: (l = "default") => { console.timeLog(l); times.delete(String(l)); },
  group: (...a) => { if (a.length) print("log", a); indent += "  "; },
  groupEnd: () => { indent = indent.slice(2); },
};
console.groupCollapsed = console.group;
return { console };
});

//@section clone
(I => {
const { dom, define, need } = I;
const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
const noClone = v => dom(`${need("console") && I.show(v)} could not be cloned.`, "DataCloneError");
const platform = v => [Promise, WeakMap, WeakSet, WeakRef, I.Body, I.Headers, I.URL, I.URLSearchParams,
  I.ReadableStream, I.CryptoKey].some(C => C !== undefined && v instanceof C);
const clone = (v, seen) => {
  if (typeof v === "function" || typeof v === "symbol") throw noClone(v);
  if (typeof v !== "object" || v === null) return v;
  let o = seen.get(v);
  if (o) return o;
  const walk = (o, keys) => {
    seen.set(v, o);
    for (const k of keys) o[k] = clone(v[k], seen);
    return o;
  };
  if (Array.isArray(v)) return walk(new Array(v.length), Object.keys(v));
  if (v instanceof Map) {
    seen.set(v, o = new Map());
    for (const [k, x] of v) o.set(clone(k, seen), clone(x, seen));
    return o;
  }
  if (v instanceof Set) {
    seen.set(v, o = new Set());
    for (const x of v) o.add(clone(x, seen));
    return o;
  }
  if (v instanceof Date) o = new Date(v.getTime());
  else if (v instanceof RegExp) o = new RegExp(v.source, v.flags);
  else if (v instanceof ArrayBuffer) o = v.slice(0);
  else if (v instanceof DataView) o = new DataView(clone(v.buffer, seen), v.byteOffset, v.byteLength);
  else if (ArrayBuffer.isView(v)) o = new v.constructor(clone(v.buffer, seen), v.byteOffset, v.length);
  else if (v instanceof Error) {
    o = new (ERRORS[v.name] || Error)(v.message);
    if (typeof v.stack === "string") define(o, "stack", v.stack);
  } else if (v instanceof Boolean || v instanceof Number || v instanceof String || v instanceof BigInt)
    o = Object(v.valueOf());
  else if (platform(v)) throw noClone(v);
  else return walk({}, Object.keys(v));
  seen.set(v, o);
  return o;
};
return { structuredClone: (value, options = undefined) => clone(value, new Map()) };
});

//@section text
(I => {
const { host: { encode, encodeInto, decode }, TE, W, u8, concat } = I;
class TextEncoder {
  get encoding() { return "utf-8"; }
  encode(s = "") { return encode(W(s)); }
  encodeInto(s, dest) {
    if (!(dest instanceof Uint8Array)) throw new TE("encodeInto: the destination must be a Uint8Array");
    const [read, written] = encodeInto(W(s), dest);
    return { read, written };
  }
}
const LABELS = ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"];
// Bytes at the end of `b` that begin a UTF-8 sequence still missing bytes.
const partial = b => {
  const n = b.length;
  for (let i = 1; i <= 3 && i <= n; i++) {
    const c = b[n - i];
    if (c < 0x80) return 0;
    if (c >= 0xc0) return (c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2) > i ? i : 0;
  }
  return 0;
};
class TextDecoder {
  #fatal; #ignoreBOM; #pending = null; #start = true;
  constructor(label = "utf-8", options = undefined) {
    const l = String(label).trim().toLowerCase();
    if (!LABELS.includes(l)) throw new RangeError(`The encoding label provided ('${label}') is invalid.`);
    this.#fatal = !!options?.fatal;
    this.#ignoreBOM = !!options?.ignoreBOM;
  }
  get encoding() { return "utf-8"; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input = undefined, options = undefined) {
    let b = input === undefined ? new Uint8Array(0) : u8(input);
    if (this.#pending) { b = concat([this.#pending, b], this.#pending.length + b.length); this.#pending = null; }
    const stream = !!options?.stream;
    if (stream) {
      const k = partial(b);
      if (k) { this.#pending = b.slice(b.length - k); b = b.subarray(0, b.length - k); }
    }
    const s = decode(b, this.#fatal, this.#ignoreBOM || !this.#start);
    this.#start = !stream || (this.#start && b.length === 0);
    return s;
  }
}
I.tag(TextEncoder, TextDecoder);
return { TextEncoder, TextDecoder };
});

//@section url
(I => {
const { host: { urlSet, formParse, formSerialize }, TE, W, pairs, parsed } = I;
let setQuery, linkParams, resetParams;
class URL {
  #c; #q = null;
  constructor(url, base = undefined) {
    const c = parsed(url, base);
    if (!c) throw new TE(`Invalid URL: ${url}`);
    this.#c = c;
  }
  static canParse(url, base = undefined) { return !!parsed(url, base); }
  static parse(url, base = undefined) { return parsed(url, base) ? new URL(url, base) : null; }
  #set(i, v) {
    this.#c = urlSet(this.#c[0], i, W(v));
    if (i === 9 && this.#q) resetParams(this.#q, this.#c[9]);
  }
  get href() { return this.#c[0]; }
  set href(v) {
    const c = parsed(v);
    if (!c) throw new TE(`Invalid URL: ${v}`);
    this.#c = c;
    if (this.#q) resetParams(this.#q, c[9]);
  }
  get origin() { return this.#c[1]; }
  get protocol() { return this.#c[2]; }
  set protocol(v) { this.#set(2, v); }
  get username() { return this.#c[3]; }
  set username(v) { this.#set(3, v); }
  get password() { return this.#c[4]; }
  set password(v) { this.#set(4, v); }
  get host() { return this.#c[5]; }
  set host(v) { this.#set(5, v); }
  get hostname() { return this.#c[6]; }
  set hostname(v) { this.#set(6, v); }
  get port() { return this.#c[7]; }
  set port(v) { this.#set(7, v); }
  get pathname() { return this.#c[8]; }
  set pathname(v) { this.#set(8, v); }
  get search() { return this.#c[9]; }
  set search(v) { this.#set(9, v); }
  get hash() { return this.#c[10]; }
  set hash(v) { this.#set(10, v); }
  get searchParams() { return this.#q ??= linkParams(this, this.#c[9]); }
  toString() { return this.#c[0]; }
  toJSON() { return this.#c[0]; }
  static { setQuery = (u, s) => { u.#c = urlSet(u.#c[0], 9, s); }; }
}
class URLSearchParams {
  #l = []; #u = null;
  constructor(init = "") {
    if (init instanceof URLSearchParams) this.#l = init.#l.map(p => [p[0], p[1]]);
    else if (typeof init === "object" && init !== null) {
      if (typeof init[Symbol.iterator] === "function") {
        for (const p of init) {
          const a = [...p];
          if (a.length !== 2) throw new TE("Each query pair must be an iterable [name, value] tuple");
          this.#l.push([W(a[0]), W(a[1])]);
        }
      } else for (const k of Object.keys(init)) this.#l.push([W(k), W(init[k])]);
    } else {
      const s = W(init);
      this.#l = pairs(formParse(s[0] === "?" ? s.slice(1) : s));
    }
  }
  #update() { if (this.#u) setQuery(this.#u, this.toString()); }
  get size() { return this.#l.length; }
  append(n, v) { this.#l.push([W(n), W(v)]); this.#update(); }
  delete(n, v = undefined) {
    n = W(n);
    if (v !== undefined) v = W(v);
    this.#l = this.#l.filter(p => p[0] !== n || (v !== undefined && p[1] !== v));
    this.#update();
  }
  get(n) {
    n = W(n);
    const p = this.#l.find(p => p[0] === n);
    return p ? p[1] : null;
  }
  getAll(n) { n = W(n); return this.#l.filter(p => p[0] === n).map(p => p[1]); }
  has(n, v = undefined) {
    n = W(n);
    if (v !== undefined) v = W(v);
    return this.#l.some(p => p[0] === n && (v === undefined || p[1] === v));
  }
  set(n, v) {
    n = W(n); v = W(v);
    const i = this.#l.findIndex(p => p[0] === n);
    if (i < 0) this.#l.push([n, v]);
    else { this.#l[i] = [n, v]; this.#l = this.#l.filter((p, j) => j <= i || p[0] !== n); }
    this.#update();
  }
  sort() { this.#l.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0); this.#update(); }
  forEach(cb, thisArg = undefined) { for (const [k, v] of this) cb.call(thisArg, v, k, this); }
  *entries() { for (let i = 0; i < this.#l.length; i++) yield [this.#l[i][0], this.#l[i][1]]; }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return formSerialize(this.#l.flat()); }
  static {
    linkParams = (u, search) => { const p = new URLSearchParams(search); p.#u = u; return p; };
    resetParams = (p, search) => { p.#l = pairs(formParse(search.slice(1))); };
  }
}
I.tag(URL, URLSearchParams);
I.URL = URL;
I.URLSearchParams = URLSearchParams;
return { URL, URLSearchParams };
});

//@section streams
(I => {
const { TE, isBuf, u8, concat, W } = I;
// Only default readers: no byte streams, BYOB readers or pipes.
let state;
const finish = s => {
  s.st = "closed";
  for (const w of s.w.splice(0)) w.res({ value: undefined, done: true });
  for (const c of s.cl.splice(0)) c.res();
};
const fail = (s, e) => {
  if (s.st !== "readable") return;
  s.st = "errored"; s.e = e; s.q = [];
  for (const w of s.w.splice(0)) w.rej(e);
  for (const c of s.cl.splice(0)) c.rej(e);
};
const pull = s => {
  if (!s.ready || s.st !== "readable" || s.closing || !s.src.pull) return;
  if (s.pulling) { s.again = true; return; }
  if (!s.w.length && s.q.length >= s.hwm) return;
  s.pulling = true;
  Promise.resolve().then(() => s.src.pull(s.c)).then(() => {
    s.pulling = false;
    if (s.again) { s.again = false; pull(s); }
  }, e => fail(s, e));
};
const read = s => {
  s.d = true;
  if (s.q.length) {
    const value = s.q.shift();
    if (s.closing && !s.q.length) finish(s); else pull(s);
    return Promise.resolve({ value, done: false });
  }
  if (s.st === "closed") return Promise.resolve({ value: undefined, done: true });
  if (s.st === "errored") return Promise.reject(s.e);
  return new Promise((res, rej) => { s.w.push({ res, rej }); pull(s); });
};
const cancel = async (s, reason) => {
  s.d = true;
  if (s.st === "closed") return;
  if (s.st === "errored") throw s.e;
  s.q = [];
  finish(s);
  await s.src.cancel?.(reason);
};
class ReadableStream {
  #s;
  constructor(src = {}, strategy = {}) {
    src ??= {};
    const hwm = strategy?.highWaterMark ?? 1;
    const s = this.#s = { q: [], st: "readable", e: undefined, r: null, src, w: [], cl: [], hwm, d: false };
    s.c = {
      get desiredSize() { return s.st === "errored" ? null : s.st === "closed" ? 0 : s.hwm - s.q.length; },
      enqueue(x) {
        if (s.st !== "readable" || s.closing) throw new TE("Cannot enqueue into a closed stream");
        const w = s.w.shift();
        if (w) w.res({ value: x, done: false }); else s.q.push(x);
      },
      close() {
        if (s.st !== "readable" || s.closing) throw new TE("The stream is already closed");
        if (s.q.length) s.closing = true; else finish(s);
      },
      error(e) { fail(s, e); },
    };
    Promise.resolve(src.start?.(s.c)).then(() => { s.ready = true; pull(s); }, e => fail(s, e));
  }
  static from(it) {
    const i = it[Symbol.asyncIterator] ? it[Symbol.asyncIterator]() : it[Symbol.iterator]();
    return new ReadableStream({
      async pull(c) { const { value, done } = await i.next(); if (done) c.close(); else c.enqueue(value); },
      async cancel(r) { await i.return?.(r); },
    });
  }
  get locked() { return !!this.#s.r; }
  cancel(reason = undefined) {
    return this.#s.r ? Promise.reject(new TE("The stream is locked")) : cancel(this.#s, reason);
  }
  getReader(options = undefined) {
    if (options?.mode !== undefined) throw new TE("Only default readers are supported");
    return new ReadableStreamDefaultReader(this);
  }
  tee() {
    const r = this.getReader(), branches = [];
    let reading = null, cancelled = 0;
    const each = f => { for (const b of branches) if (!b.x) try { f(b.c); } catch {} };
    const pull = () => reading ??= r.read().then(({ value, done }) => {
      reading = null;
      each(c => done ? c.close() : c.enqueue(value));
    }, e => each(c => c.error(e)));
    const branch = () => {
      const b = {};
      branches.push(b);
      return new ReadableStream({
        start(c) { b.c = c; },
        pull,
        cancel(x) { b.x = true; if (++cancelled === 2) return r.cancel(x); },
      });
    };
    return [branch(), branch()];
  }
  async *values(options = undefined) {
    const r = this.getReader();
    try {
      for (;;) {
        const { value, done } = await r.read();
        if (done) return;
        yield value;
      }
    } finally {
      if (!options?.preventCancel) await r.cancel();
      r.releaseLock();
    }
  }
  [Symbol.asyncIterator](options = undefined) { return this.values(options); }
  static { state = rs => rs.#s; }
}
class ReadableStreamDefaultReader {
  #s;
  constructor(stream) {
    const s = state(stream);
    if (s.r) throw new TE("ReadableStream is locked");
    s.r = this;
    this.#s = s;
  }
  #live() {
    if (!this.#s) throw new TE("The reader was released");
    return this.#s;
  }
  read() {
    try { return read(this.#live()); } catch (e) { return Promise.reject(e); }
  }
  cancel(reason = undefined) {
    try { return cancel(this.#live(), reason); } catch (e) { return Promise.reject(e); }
  }
  releaseLock() {
    const s = this.#s;
    if (!s) return;
    s.r = null;
    this.#s = null;
    for (const w of s.w.splice(0)) w.rej(new TE("The reader was released"));
  }
  get closed() {
    const s = this.#s;
    if (!s) return Promise.reject(new TE("The reader was released"));
    if (s.st === "closed") return Promise.resolve();
    if (s.st === "errored") return Promise.reject(s.e);
    return new Promise((res, rej) => s.cl.push({ res, rej }));
  }
}
I.tag(ReadableStream, ReadableStreamDefaultReader);
I.ReadableStream = ReadableStream;
I.streamState = state;
I.streamOf = bytes => new ReadableStream({
  start(c) { if (bytes.length) c.enqueue(bytes); c.close(); },
});
const chunk = x => typeof x === "string" ? I.host.encode(W(x)) : isBuf(x) ? u8(x) : null;
// Reads a stream to its end; more than `max` bytes is an error naming both.
I.readAll = async (rs, max) => {
  const r = new ReadableStreamDefaultReader(rs), parts = [];
  let n = 0;
  for (;;) {
    const { value, done } = await r.read();
    if (done) break;
    const c = chunk(value);
    if (!c) { await r.cancel(); throw new TE("A body stream chunk is not a Uint8Array"); }
    n += c.length;
    if (n > max) {
      await r.cancel();
      throw new RangeError(`the response body is larger than the limit of ${max} bytes (its stream produced at least ${n} bytes)`);
    }
    parts.push(c);
  }
  return concat(parts, n);
};
return { ReadableStream, ReadableStreamDefaultReader };
});

//@section http
(I => {
const { host: { encode, decode, fetch: send }, TE, KEY, W, u8, isBuf, whole, parsed, need } = I;
const isStream = x => I.ReadableStream !== undefined && x instanceof I.ReadableStream;

// Headers
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const hName = n => {
  n = String(n);
  if (!TOKEN.test(n)) throw new TE(`Invalid header name: "${n}"`);
  return n.toLowerCase();
};
const hValue = v => {
  v = String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  if (/[\0\r\n\u0100-\uffff]/.test(v)) throw new TE(`Invalid header value: "${v}"`);
  return v;
};
let headerList, headerAdd, freeze;
class Headers {
  #m = new Map(); #ro = false;
  constructor(init = undefined) {
    if (init === undefined || init === null) return;
    if (typeof init !== "object" && typeof init !== "function") throw new TE("Headers: init must be an object");
    if (init instanceof Headers) {
      for (const [k, a] of init.#m) this.#m.set(k, a.slice());
    } else if (typeof init[Symbol.iterator] === "function") {
      for (const p of init) {
        const a = [...p];
        if (a.length !== 2) throw new TE("Headers: each header must be a [name, value] pair");
        this.append(a[0], a[1]);
      }
    } else for (const k of Object.keys(init)) this.append(k, init[k]);
  }
  #w() { if (this.#ro) throw new TE("Headers are immutable"); }
  append(n, v) {
    this.#w();
    n = hName(n); v = hValue(v);
    const a = this.#m.get(n);
    if (a) a.push(v); else this.#m.set(n, [v]);
  }
  set(n, v) { this.#w(); this.#m.set(hName(n), [hValue(v)]); }
  delete(n) { this.#w(); this.#m.delete(hName(n)); }
  get(n) {
    const a = this.#m.get(hName(n));
    return a ? a.join(", ") : null;
  }
  has(n) { return this.#m.has(hName(n)); }
  getSetCookie() { return (this.#m.get("set-cookie") || []).slice(); }
  forEach(cb, thisArg = undefined) { for (const [k, v] of this) cb.call(thisArg, v, k, this); }
  *entries() {
    for (const k of [...this.#m.keys()].sort()) {
      const a = this.#m.get(k);
      if (!a) continue;
      if (k === "set-cookie") for (const v of a) yield [k, v];
      else yield [k, a.join(", ")];
    }
  }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  static {
    headerList = h => {
      const out = [];
      for (const [k, a] of h.#m) for (const v of a) out.push(k, v);
      return out;
    };
    // From the host: already valid HTTP, so only lower-cased.
    headerAdd = (h, n, v) => {
      n = n.toLowerCase();
      const a = h.#m.get(n);
      if (a) a.push(v); else h.#m.set(n, [v]);
    };
    freeze = h => { h.#ro = true; return h; };
  }
}
const hostHeaders = flat => {
  const h = new Headers();
  for (let i = 0; i < flat.length; i += 2) headerAdd(h, flat[i], flat[i + 1]);
  return h;
};

// Bodies: a source is null, bytes (a Uint8Array only the body holds) or a stream.
const TEXT = "text/plain;charset=UTF-8";
// A body init as [source, content type].
const extract = b => {
  if (typeof b === "string") return [encode(W(b)), TEXT];
  if (isStream(b)) {
    const s = I.streamState(b);
    if (s.r || s.d) throw new TE("The body stream is locked or already read");
    return [b, null];
  }
  if (isBuf(b)) return [u8(b).slice(), null];
  if (I.URLSearchParams !== undefined && b instanceof I.URLSearchParams) {
    return [encode(b.toString()), "application/x-www-form-urlencoded;charset=UTF-8"];
  }
  return [encode(W(b)), TEXT];
};
let bodyOf, setBody, takeBody, useBody;
class Body {
  #s = null; #used = false;
  #usedNow() { return this.#used || (isStream(this.#s) && I.streamState(this.#s).d); }
  #take(max) {
    if (this.#usedNow()) return Promise.reject(new TE("Body has already been used"));
    this.#used = true;
    const s = this.#s;
    if (s === null) return Promise.resolve(new Uint8Array(0));
    if (s instanceof Uint8Array) {
      if (s.length > max) {
        return Promise.reject(new RangeError(`the response body (${s.length} bytes) is larger than the limit of ${max} bytes`));
      }
      return Promise.resolve(s);
    }
    return I.readAll(s, max);
  }
  get body() {
    if (this.#s instanceof Uint8Array) this.#s = need("streams") && I.streamOf(this.#s);
    return this.#s;
  }
  get bodyUsed() { return this.#usedNow(); }
  async arrayBuffer() { return whole(await this.#take(Infinity)); }
  async bytes() { return await this.#take(Infinity); }
  async text() { return decode(await this.#take(Infinity), false, false); }
  async json() { return JSON.parse(await this.text()); }
  async formData() { throw new TE("formData() is not supported"); }
  async blob() { throw new TE("blob() is not supported"); }
  static {
    bodyOf = o => o.#s;
    setBody = (o, s) => { o.#s = s; };
    takeBody = (o, max = Infinity) => o.#take(max);
    useBody = o => { o.#used = true; };
  }
}
// The body a clone() gets; the original keeps (a branch of) its own.
const cloneBody = (from, to) => {
  if (from.bodyUsed) throw new TE("Cannot clone: the body has already been used");
  const s = bodyOf(from);
  if (isStream(s)) {
    const [a, b] = s.tee();
    setBody(from, a);
    setBody(to, b);
  } else setBody(to, s && s.slice());
};

// Request
const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
const method = m => {
  m = String(m);
  if (!TOKEN.test(m)) throw new TE(`Invalid method: "${m}"`);
  const u = m.toUpperCase();
  if (u === "CONNECT" || u === "TRACE" || u === "TRACK") throw new TE(`Forbidden method: "${m}"`);
  return METHODS.includes(u) ? u : m;
};
class Request extends Body {
  #method = "GET"; #url; #headers; #redirect = "follow";
  constructor(input, init = undefined) {
    super();
    if (input === KEY) {
      [this.#method, this.#url, this.#headers] = init;
      return;
    }
    init ??= {};
    const from = input instanceof Request ? input : null;
    if (from) {
      this.#url = from.#url;
      this.#method = from.#method;
      this.#redirect = from.#redirect;
    } else {
      const c = parsed(input);
      if (!c) throw new TE(`Invalid URL: ${input}`);
      this.#url = c[0];
    }
    if (init.method !== undefined) this.#method = method(init.method);
    if (init.redirect !== undefined) {
      if (!["follow", "error", "manual"].includes(init.redirect)) throw new TE(`Invalid redirect: ${init.redirect}`);
      this.#redirect = init.redirect;
    }
    this.#headers = new Headers(init.headers !== undefined ? init.headers : from?.#headers);
    if (init.body !== undefined && init.body !== null) {
      if (this.#method === "GET" || this.#method === "HEAD") throw new TE("Request with GET/HEAD method cannot have body.");
      const [s, type] = extract(init.body);
      setBody(this, s);
      if (type && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
    } else if (from && init.body === undefined && bodyOf(from) !== null) {
      if (from.bodyUsed) throw new TE("Cannot construct a Request from one whose body was used");
      setBody(this, bodyOf(from));
      useBody(from);
    }
  }
  get method() { return this.#method; }
  get url() { return this.#url; }
  get headers() { return this.#headers; }
  get redirect() { return this.#redirect; }
  get signal() { return undefined; }
  get cache() { return "default"; }
  get credentials() { return "same-origin"; }
  get mode() { return "cors"; }
  get destination() { return ""; }
  get referrer() { return "about:client"; }
  get integrity() { return ""; }
  get keepalive() { return false; }
  clone() {
    const r = new Request(KEY, [this.#method, this.#url, new Headers(this.#headers)]);
    r.#redirect = this.#redirect;
    cloneBody(this, r);
    return r;
  }
}

// Response
const NULL_BODY = [101, 103, 204, 205, 304];
const REDIRECT = [301, 302, 303, 307, 308];
let makeResponse, responseParts;
class Response extends Body {
  #status = 200; #statusText = ""; #headers; #type = "default"; #url = ""; #redirected = false;
  constructor(body = null, init = undefined) {
    super();
    if (body === KEY) {
      [this.#status, this.#headers, this.#type, this.#url, this.#redirected] = init;
      return;
    }
    this.#init(init, body === null ? null : extract(body));
  }
  #init(init, b) {
    init ??= {};
    const status = init.status === undefined ? 200 : Number(init.status);
    if (!(Number.isInteger(status) && status >= 200 && status <= 599)) {
      throw new RangeError(`The status provided (${init.status}) is outside the range [200, 599].`);
    }
    const text = init.statusText === undefined ? "" : String(init.statusText);
    if (/[\r\n\u0100-\uffff]/.test(text)) throw new TE(`Invalid statusText: "${text}"`);
    this.#status = status;
    this.#statusText = text;
    this.#headers = new Headers(init.headers);
    if (b) {
      if (NULL_BODY.includes(status)) throw new TE(`Response with null body status (${status}) cannot have body`);
      setBody(this, b[0]);
      if (b[1] && !this.#headers.has("content-type")) this.#headers.set("content-type", b[1]);
    }
  }
  static json(data, init = undefined) {
    const t = JSON.stringify(data);
    if (t === undefined) throw new TE("The data is not JSON serializable");
    const r = new Response(KEY, [200, null, "default", "", false]);
    r.#init(init, [encode(W(t)), "application/json"]);
    return r;
  }
  static redirect(url, status = 302) {
    const c = parsed(url);
    if (!c) throw new TE(`Invalid URL: ${url}`);
    if (!REDIRECT.includes(status)) throw new RangeError(`Invalid status code: ${status}`);
    const h = new Headers({ location: c[0] });
    return new Response(KEY, [status, freeze(h), "default", "", false]);
  }
  static error() { return new Response(KEY, [0, freeze(new Headers()), "error", "", false]); }
  get type() { return this.#type; }
  get url() { return this.#url; }
  get redirected() { return this.#redirected; }
  get status() { return this.#status; }
  get ok() { return this.#status >= 200 && this.#status <= 299; }
  get statusText() { return this.#statusText; }
  get headers() { return this.#headers; }
  clone() {
    const r = new Response(KEY, [this.#status, new Headers(this.#headers), this.#type, this.#url, this.#redirected]);
    r.#statusText = this.#statusText;
    if (this.#type === "error") freeze(r.#headers);
    cloneBody(this, r);
    return r;
  }
  static {
    makeResponse = (status, headers, body, url, redirected) => {
      const r = new Response(KEY, [status, freeze(headers), "basic", url, redirected]);
      if (!NULL_BODY.includes(status) && body.length) setBody(r, body);
      return r;
    };
    responseParts = r => [r.#status, r.#headers, r.#type];
  }
}

const fetch = async (input, init = undefined) => {
  const req = new Request(input, init);
  const body = await takeBody(req);
  const r = await send(req.method, req.url, headerList(req.headers), body);
  if (typeof r === "string") throw new TE(r);
  const [status, headers, bytes, url] = r;
  return makeResponse(status, hostHeaders(headers), bytes, url || req.url, !!url && url !== req.url);
};

// For the engine.
I.hostRequest = (m, url, headers, body) => {
  const r = new Request(KEY, [m, url, hostHeaders(headers)]);
  if (body.length) setBody(r, body);
  return r;
};
I.readResponse = async (v, max) => {
  if (!(v instanceof Response)) {
    const what = v === null || v === undefined ? String(v) : typeof v === "object"
      ? `an object (${v.constructor?.name || "Object"})` : `a ${typeof v}`;
    throw new TE(`the handler returned ${what}, not a Response`);
  }
  const [status, headers, type] = responseParts(v);
  if (type === "error") throw new TE("the handler returned Response.error()");
  const body = await takeBody(v, max);
  return [status, headerList(headers), body];
};
I.tag(Headers, Request, Response);
I.Headers = Headers;
I.Body = Body;
I.Request = Request;
I.Response = Response;
return { Headers, Request, Response, fetch };
});

//@section crypto
(I => {
const { host: { fill, uuid, digest, hmacSign, hmacVerify }, TE, KEY, dom, u8 } = I;
const HASHES = { "SHA-1": 64, "SHA-256": 64, "SHA-384": 128, "SHA-512": 128 };
const algName = a => String(typeof a === "object" && a !== null ? a.name : a).toUpperCase();
const hashName = a => {
  const n = algName(a);
  if (!(n in HASHES)) throw dom(`Unrecognized hash algorithm: ${a?.name ?? a}`, "NotSupportedError");
  return n;
};
const hmacOnly = a => {
  if (algName(a) !== "HMAC") throw dom(`Unsupported algorithm: ${a?.name ?? a}`, "NotSupportedError");
};
let keyParts, makeKey;
class CryptoKey {
  #k; #alg; #ext; #use;
  constructor(token = undefined) { if (token !== KEY) throw new TE("Illegal constructor"); }
  get type() { return "secret"; }
  get extractable() { return this.#ext; }
  get algorithm() { return { name: "HMAC", hash: { name: this.#alg }, length: this.#k.length * 8 }; }
  get usages() { return this.#use.slice(); }
  static {
    makeKey = (k, alg, ext, use) => {
      const key = new CryptoKey(KEY);
      key.#k = k; key.#alg = alg; key.#ext = !!ext; key.#use = use;
      return key;
    };
    // The key's bytes, hash and extractability, if it may be used for `use`.
    keyParts = (key, use) => {
      if (!(key instanceof CryptoKey)) throw new TE("Expected a CryptoKey");
      if (use && !key.#use.includes(use)) throw dom(`The key may not be used to ${use}`, "InvalidAccessError");
      return [key.#k, key.#alg, key.#ext];
    };
  }
}
const usages = use => {
  use = [...use].map(String);
  if (!use.length || use.some(u => u !== "sign" && u !== "verify")) {
    throw dom("HMAC keys are for \"sign\" and \"verify\" only", "SyntaxError");
  }
  return use;
};
const subtle = {
  async digest(alg, data) { return digest(hashName(alg), u8(data)); },
  async importKey(format, data, alg, extractable, use) {
    hmacOnly(alg);
    const hash = hashName(alg.hash);
    let k;
    if (format === "raw") k = u8(data).slice();
    else if (format === "jwk") {
      if (data?.kty !== "oct" || typeof data.k !== "string") throw dom("Expected an oct JWK", "DataError");
      k = Uint8Array.fromBase64(data.k, { alphabet: "base64url" });
    } else throw dom(`Unsupported key format: ${format}`, "NotSupportedError");
    if (!k.length) throw dom("The key is empty", "DataError");
    return makeKey(k, hash, extractable, usages(use));
  },
  async generateKey(alg, extractable, use) {
    hmacOnly(alg);
    const hash = hashName(alg.hash);
    const k = new Uint8Array(alg.length ? Math.ceil(alg.length / 8) : HASHES[hash]);
    fill(k);
    return makeKey(k, hash, extractable, usages(use));
  },
  async exportKey(format, key) {
    const [k, hash, ext] = keyParts(key, null);
    if (!ext) throw dom("The key is not extractable", "InvalidAccessError");
    if (format === "raw") return k.slice().buffer;
    if (format === "jwk") {
      return { kty: "oct", k: k.toBase64({ alphabet: "base64url", omitPadding: true }), alg: `HS${hash.slice(4)}`, key_ops: key.usages, ext: true };
    }
    throw dom(`Unsupported key format: ${format}`, "NotSupportedError");
  },
  async sign(alg, key, data) {
    hmacOnly(alg);
    const [k, hash] = keyParts(key, "sign");
    return hmacSign(hash, k, u8(data));
  },
  async verify(alg, key, signature, data) {
    hmacOnly(alg);
    const [k, hash] = keyParts(key, "verify");
    return hmacVerify(hash, k, u8(signature), u8(data));
  },
};
const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
  Uint32Array, BigInt64Array, BigUint64Array];
const crypto = {
  subtle,
  getRandomValues(a) {
    if (!INTEGER_ARRAYS.some(C => a instanceof C)) {
      throw dom("getRandomValues: the argument must be an integer typed array", "TypeMismatchError");
    }
    if (a.byteLength > 65536) {
      throw dom(`The ArrayBufferView's byte length (${a.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, "QuotaExceededError");
    }
    fill(u8(a));
    return a;
  },
  randomUUID: () => uuid(),
};
I.tag(CryptoKey);
I.CryptoKey = CryptoKey;
return { crypto, CryptoKey };
});
