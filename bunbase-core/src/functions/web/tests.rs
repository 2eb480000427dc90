//! The globals, driven as the engine drives them: an `AsyncRuntime` and a
//! full context in a current-thread tokio runtime with a `LocalSet`, a
//! console that collects lines, and a fake `Outside` (the boundary).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::{AsyncContext, AsyncRuntime, CatchResultExt, Function, Promise, Value};

use super::*;

#[derive(Default)]
struct Lines(RefCell<Vec<(String, String)>>);

impl Console for Lines {
    fn line(&self, level: &str, message: String) {
        self.0.borrow_mut().push((level.to_string(), message));
    }
}

/// Answers `201` with `"{method} {url} {body}"`, or fails for hosts named
/// `unreachable…`; remembers what it was asked.
#[derive(Default)]
struct FakeOutside(RefCell<Vec<FetchRequest>>);

impl Outside for FakeOutside {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<FetchResponse, String>>>> {
        self.0.borrow_mut().push(request.clone());
        Box::pin(async move {
            tokio::task::yield_now().await;
            if request.url.contains("://unreachable") {
                return Err("connection refused".to_string());
            }
            let mut body = format!("{} {} ", request.method, request.url).into_bytes();
            body.extend_from_slice(&request.body);
            Ok(FetchResponse {
                status: 201,
                headers: vec![("Content-Type".into(), "text/plain".into())],
                body,
                url: request.url,
            })
        })
    }
}

struct Env {
    /// Keeps its runtime alive.
    context: AsyncContext,
    lines: Rc<Lines>,
    outside: Rc<FakeOutside>,
}

async fn env() -> Env {
    let runtime = AsyncRuntime::new().expect("runtime");
    let context = AsyncContext::full(&runtime).await.expect("context");
    let lines = Rc::new(Lines::default());
    let outside = Rc::new(FakeOutside::default());
    let host = Host {
        console: lines.clone(),
        outside: outside.clone(),
    };
    context
        .with(|ctx| install(&ctx, host).catch(&ctx).map_err(|e| e.to_string()))
        .await
        .expect("install");
    Env {
        context,
        lines,
        outside,
    }
}

impl Env {
    /// Runs `code` as the body of an async function; its result as JSON.
    async fn js(&self, code: &str) -> std::result::Result<String, String> {
        let source = format!("(async () => {{\n{code}\n}})()");
        self.context
            .async_with(async |ctx| {
                let promise: Promise = ctx.eval(source).catch(&ctx).map_err(|e| e.to_string())?;
                let value: Value = promise
                    .into_future()
                    .await
                    .catch(&ctx)
                    .map_err(|e| e.to_string())?;
                let json = ctx
                    .json_stringify(value)
                    .catch(&ctx)
                    .map_err(|e| e.to_string())?;
                Ok(match json {
                    Some(text) => text.to_string().map_err(|e| e.to_string())?,
                    None => "undefined".to_string(),
                })
            })
            .await
    }

    async fn ok(&self, code: &str) -> String {
        match self.js(code).await {
            Ok(json) => json,
            Err(e) => panic!("{code}\nthrew: {e}"),
        }
    }

    /// `read_response` of what `code` (a JS expression) evaluates to.
    async fn respond(
        &self,
        code: &str,
        max_bytes: usize,
    ) -> std::result::Result<HttpResponse, String> {
        let source = format!("(async () => ({code}))()");
        self.context
            .async_with(async |ctx| {
                let promise: Promise = ctx.eval(source).map_err(|e| e.to_string())?;
                let value: Value = promise
                    .into_future()
                    .await
                    .catch(&ctx)
                    .map_err(|e| e.to_string())?;
                read_response(&ctx, value, max_bytes).await
            })
            .await
    }

    fn lines(&self) -> Vec<(String, String)> {
        self.lines.0.borrow().clone()
    }
}

fn run(test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(tokio::task::LocalSet::new().run_until(test));
}

const HEX: &str = r#"const hex = b => Array.from(new Uint8Array(b), x => x.toString(16).padStart(2, "0")).join("");"#;

#[test]
fn nothing_of_the_host_is_global() {
    run(async {
        let env = env().await;
        let found = env
            .ok(r#"
            const names = Object.getOwnPropertyNames(globalThis);
            const types = ["__host", "host", "natives", "require", "process", "Deno", "Bun", "std", "os",
                "print", "scriptArgs", "module", "exports"].map(n => typeof globalThis[n]);
            return [types, names.filter(n => n.startsWith("_")), typeof self, self === globalThis];"#)
            .await;
        assert_eq!(
            found,
            r#"[["undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined"],[],"object",true]"#
        );
        let missing = env
            .ok(r#"
            const order = [];
            queueMicrotask(() => order.push("micro"));
            await null;
            return [order, ["Headers", "Request", "Response", "fetch", "URL", "URLSearchParams", "TextEncoder",
                "TextDecoder", "atob", "btoa", "structuredClone", "queueMicrotask", "crypto", "CryptoKey",
                "setTimeout", "clearTimeout", "setInterval", "clearInterval", "console", "ReadableStream",
                "ReadableStreamDefaultReader", "DOMException", "performance"].filter(n => globalThis[n] === undefined)];"#)
            .await;
        assert_eq!(missing, r#"[["micro"],[]]"#);
        let listed = env
            .ok("return Object.keys(globalThis).filter(k => k !== 'performance')")
            .await;
        assert_eq!(listed, "[]", "web globals are not enumerable");
        // A getter on Object.prototype sees every object a lookup falls
        // through; it must never see the prelude's internals.
        let seen = env
            .ok(r#"
            const seen = [];
            const names = ["ReadableStream", "URLSearchParams", "CryptoKey", "show", "load", "fetch", "need"];
            for (const k of names) {
                Object.defineProperty(Object.prototype, k, { get() { seen.push(this); }, configurable: true });
            }
            try {
                await new Response(new Uint8Array(1)).text();
                await new Request("http://x/", { method: "POST", body: {} }).text();
                structuredClone({ a: 1 });
                console.log("x");
                await new Promise(r => setTimeout(r, 0));
            } finally {
                for (const k of names) delete Object.prototype[k];
            }
            return seen.filter(o => o !== globalThis)
                .flatMap(o => Object.getOwnPropertyNames(o).filter(n => /host|load|need|schedule/.test(n)));"#)
            .await;
        assert_eq!(seen, "[]");
        let replaced = env
            .ok(r#"
            globalThis.URL = class Mine {};
            return [new URL() instanceof URL, URL.name, typeof URLSearchParams];"#)
            .await;
        assert_eq!(
            replaced, r#"[true,"Mine","function"]"#,
            "a global the function replaced stays replaced"
        );
    });
}

#[test]
fn headers_are_case_insensitive_and_combine_values() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const h = new Headers({ "Content-Type": "text/plain" });
            h.append("X-A", "1"); h.append("x-a", " 2 "); h.set("Set-Cookie", "a=1"); h.append("set-cookie", "b=2");
            const out = [h.get("content-type"), h.get("X-A"), h.has("CONTENT-TYPE"), h.get("missing"), [...h], [...h.keys()]];
            h.delete("X-a"); out.push(h.has("x-a"), h.getSetCookie());
            out.push([...new Headers([["A", "1"], ["b", "2"]])], [...new Headers(h)].length);
            for (const f of [() => h.set("bad name", "x"), () => h.set("a", "x\ny"), () => new Headers([["a"]])]) {
                try { f(); } catch (e) { out.push(e.name); }
            }
            const seen = []; h.forEach((v, k) => seen.push(k + "=" + v)); out.push(seen);
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"["text/plain","1, 2",true,null,[["content-type","text/plain"],["set-cookie","a=1"],["set-cookie","b=2"],["x-a","1, 2"]],["content-type","set-cookie","set-cookie","x-a"],false,["a=1","b=2"],[["a","1"],["b","2"]],3,"TypeError","TypeError","TypeError",["content-type=text/plain","set-cookie=a=1","set-cookie=b=2"]]"#
        );
    });
}

#[test]
fn responses_round_trip_json_text_and_bytes() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const r = Response.json({ a: [1, "é"] }, { status: 201, headers: { "X-Y": "z" } });
            const t = new Response("héllo");
            const out = [r.status, r.ok, r.headers.get("content-type"), r.headers.get("x-y"), await r.json(), r.bodyUsed,
                t.headers.get("content-type"), await t.text(), t.status, t.statusText];
            try { await t.text(); } catch (e) { out.push(e.name); }
            const b = new Response(new Uint8Array([104, 105]));
            const c = b.clone();
            out.push(await b.text(), new Uint8Array(await c.arrayBuffer()).join(), b.headers.get("content-type"));
            out.push(await new Response(null).text(), new Response(new Uint8Array([1, 2, 3]).buffer).status);
            out.push((await new Response("xyz").bytes()).length, new Response("", { status: 404 }).ok);
            for (const s of [199, 600, 0]) try { new Response("", { status: s }); } catch (e) { out.push(e.name); }
            try { new Response("x", { status: 204 }); } catch (e) { out.push(e.name); }
            const red = Response.redirect("https://example.com/a b", 301);
            out.push(red.status, red.headers.get("location"));
            try { Response.redirect("https://example.com/", 200); } catch (e) { out.push(e.name); }
            out.push(Response.error().type, Response.error().status);
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"[201,true,"application/json","z",{"a":[1,"é"]},true,"text/plain;charset=UTF-8","héllo",200,"","TypeError","hi","104,105",null,"",200,3,false,"RangeError","RangeError","RangeError","TypeError",301,"https://example.com/a%20b","RangeError","error",0]"#
        );
    });
}

#[test]
fn request_bodies_read_once_and_clone() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const r = new Request("https://example.com/p?q=1", { method: "post", body: "payload", headers: { "X-K": "v" } });
            const c = r.clone();
            const out = [r.method, r.url, r.headers.get("x-k"), r.headers.get("content-type"), r.bodyUsed,
                await r.text(), r.bodyUsed, await c.json().catch(e => e.name)];
            const j = new Request("https://example.com/", { method: "PUT", body: JSON.stringify({ n: 1 }) });
            out.push(await j.json(), new Uint8Array(await new Request("http://x/", { method: "POST", body: new Uint8Array([1, 2]) }).arrayBuffer()).join());
            out.push(new Request("http://x/", { method: "patch" }).method, new Request("http://x/", { method: "delete" }).method);
            for (const f of [() => new Request("/relative"), () => new Request("http://x/", { body: "no" }),
                () => new Request("http://x/", { method: "CONNECT" })]) {
                try { f(); } catch (e) { out.push(e.name); }
            }
            const first = new Request("http://x/", { method: "POST", body: "m" });
            const moved = new Request(first, { headers: { a: "b" } });
            out.push(await moved.text(), moved.headers.get("a"), moved.method, first.bodyUsed);
            const s = new Request("http://x/", { method: "POST", body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("st")); c.enqueue(new Uint8Array([33])); c.close(); } }) });
            const s2 = s.clone();
            out.push(await s.text(), await s2.text());
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"["POST","https://example.com/p?q=1","v","text/plain;charset=UTF-8",false,"payload",true,"SyntaxError",{"n":1},"1,2","patch","DELETE","TypeError","TypeError","TypeError","m","b","POST",true,"st!","st!"]"#
        );
    });
}

#[test]
fn urls_parse_against_a_base_and_link_their_search_params() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const u = new URL("../b/c?x=1#h", "https://user:pw@Example.COM:8080/a/d/e");
            const out = [u.href, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin];
            u.searchParams.append("y", "a b&c"); out.push(u.href, u.search);
            u.searchParams.delete("x"); out.push(u.href);
            u.search = "?z=9"; out.push(u.searchParams.get("z"), u.searchParams.get("y"));
            u.pathname = "/new path"; u.hash = ""; u.port = "443"; out.push(u.href);
            u.port = "99999"; out.push(u.port);
            u.href = "http://other/"; out.push(u.searchParams.size, u.host);
            out.push(String(new URL("https://example.com")), JSON.stringify({ u: new URL("http://a/b") }));
            try { new URL("nope"); } catch (e) { out.push(e.name); }
            out.push(URL.canParse("a:b"), URL.canParse("/x"), URL.parse("/x", "http://h/y/z").href, URL.parse("/x"));
            out.push(new URL("HTTP://münchen.de/ä?ö=1").href, new URL("http://[::1]:80/").host);
            return out;"#)
            .await;
        assert_eq!(
            got,
            r##"["https://user:pw@example.com:8080/a/b/c?x=1#h","https:","user","pw","example.com:8080","example.com","8080","/a/b/c","?x=1","#h","https://example.com:8080","https://user:pw@example.com:8080/a/b/c?x=1&y=a+b%26c#h","?x=1&y=a+b%26c","https://user:pw@example.com:8080/a/b/c?y=a+b%26c#h","9",null,"https://user:pw@example.com/new%20path?z=9","",0,"other","https://example.com/","{\"u\":\"http://a/b\"}","TypeError",true,false,"http://h/x",null,"http://xn--mnchen-3ya.de/%C3%A4?%C3%B6=1","[::1]"]"##
        );
    });
}

#[test]
fn url_search_params_use_form_encoding() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const p = new URLSearchParams();
            p.append("a", "1"); p.append("b", "x y&");
            const out = [p.toString()];
            const q = new URLSearchParams("?a=1&a=2&c=%E2%82%AC+x&d");
            out.push(q.getAll("a"), q.get("c"), q.get("d"), q.has("a", "2"), q.size);
            q.set("a", "3"); out.push(q.toString());
            q.sort(); out.push([...q.keys()]);
            out.push(new URLSearchParams({ k: "v", "ü": "é" }).toString(), new URLSearchParams([["x", "1"], ["y", "2"]]).toString());
            out.push(new URLSearchParams("a=%zz").get("a"), new URLSearchParams("b=%FF").get("b"));
            out.push(new URLSearchParams("q=~*'()!").toString());
            const seen = []; new URLSearchParams("m=1&n=2").forEach((v, k) => seen.push(k + v)); out.push(seen);
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"["a=1&b=x+y%26",["1","2"],"€ x","",true,4,"a=3&c=%E2%82%AC+x&d=",["a","c","d"],"k=v&%C3%BC=%C3%A9","x=1&y=2","%zz","�","q=%7E*%27%28%29%21",["m1","n2"]]"#
        );
    });
}

#[test]
fn text_encoder_and_decoder_round_trip_utf8() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const e = new TextEncoder(), d = new TextDecoder();
            const bytes = e.encode("héllo €𝄞");
            const out = [bytes.length, Array.from(bytes.subarray(0, 3)).join(), d.decode(bytes), e.encoding, d.encoding];
            out.push(d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])),
                new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).length);
            out.push(d.decode(new Uint8Array([0x61, 0xff, 0x62])));
            try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xc3])); } catch (err) { out.push(err.name); }
            try { new TextDecoder("latin1"); } catch (err) { out.push(err.name); }
            const s = new TextDecoder(), euro = e.encode("€");
            out.push(s.decode(euro.subarray(0, 1), { stream: true }) + s.decode(euro.subarray(1), { stream: true }) + s.decode());
            const dest = new Uint8Array(4), r = e.encodeInto("a€b", dest);
            out.push(r.read, r.written, Array.from(dest).join());
            out.push(e.encode("\ud800").join(), e.encode().length);
            out.push(d.decode(new Uint16Array([0x6968]).buffer), d.decode(new DataView(bytes.buffer, 1, 2)));
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"[14,"104,195,169","héllo €𝄞","utf-8","utf-8","A",2,"a�b","TypeError","RangeError","€",2,4,"97,226,130,172","239,191,189",0,"hi","é"]"#
        );
    });
}

#[test]
fn btoa_and_atob_follow_forgiving_base64() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const out = [btoa("hello"), atob("aGVsbG8="), atob(" aGVs\nbG8 "), atob("YQ"), btoa(String.fromCharCode(255, 0))];
            for (const f of [() => btoa("€"), () => atob("a"), () => atob("Y==="), () => atob("YQ=")]) {
                try { f(); out.push("accepted"); } catch (e) { out.push(e.name, e instanceof DOMException); }
            }
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"["aGVsbG8=","hello","hello","a","/wA=","InvalidCharacterError",true,"InvalidCharacterError",true,"InvalidCharacterError",true,"InvalidCharacterError",true]"#
        );
    });
}

#[test]
fn subtle_digest_matches_known_answers() {
    run(async {
        let env = env().await;
        let got = env
            .ok(&format!(
                r#"{HEX}
            const abc = new TextEncoder().encode("abc");
            const h = await crypto.subtle.digest("SHA-256", abc);
            const out = [hex(h), h instanceof ArrayBuffer, hex(await crypto.subtle.digest({{ name: "sha-1" }}, abc))];
            out.push((await crypto.subtle.digest("SHA-384", new Uint8Array(0))).byteLength,
                (await crypto.subtle.digest("SHA-512", new ArrayBuffer(0))).byteLength);
            out.push(await crypto.subtle.digest("MD5", abc).catch(e => e.name));
            return out;"#
            ))
            .await;
        assert_eq!(
            got,
            r#"["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",true,"a9993e364706816aba3e25717850c26c9cd0d89d",48,64,"NotSupportedError"]"#
        );
    });
}

#[test]
fn hmac_signs_rfc_4231_case_2_and_verifies() {
    run(async {
        let env = env().await;
        let got = env
            .ok(&format!(
                r#"{HEX}
            const enc = new TextEncoder(), data = enc.encode("what do ya want for nothing?");
            const key = await crypto.subtle.importKey("raw", enc.encode("Jefe"), {{ name: "HMAC", hash: "SHA-256" }}, false, ["sign", "verify"]);
            const sig = await crypto.subtle.sign("HMAC", key, data);
            const out = [hex(sig), key.type, key.algorithm.name, key.algorithm.hash.name, key.extractable, key.usages, String(key)];
            out.push(await crypto.subtle.verify("HMAC", key, sig, data));
            out.push(await crypto.subtle.verify({{ name: "HMAC" }}, key, sig, enc.encode("what do ya want for nothing!")));
            const bad = new Uint8Array(sig); bad[0] ^= 1;
            out.push(await crypto.subtle.verify("HMAC", key, bad, data), await crypto.subtle.verify("HMAC", key, bad.subarray(1), data));
            const signOnly = await crypto.subtle.importKey("raw", enc.encode("k"), {{ name: "HMAC", hash: {{ name: "SHA-512" }} }}, true, ["sign"]);
            out.push(await crypto.subtle.verify("HMAC", signOnly, sig, data).catch(e => e.name));
            out.push((await crypto.subtle.sign("HMAC", signOnly, data)).byteLength);
            out.push(new Uint8Array(await crypto.subtle.exportKey("raw", signOnly)).join(), await crypto.subtle.exportKey("raw", key).catch(e => e.name));
            const jwk = await crypto.subtle.exportKey("jwk", signOnly);
            const again = await crypto.subtle.importKey("jwk", jwk, {{ name: "HMAC", hash: "SHA-512" }}, false, ["sign"]);
            out.push(jwk.k, jwk.alg, hex(await crypto.subtle.sign("HMAC", again, data)) === hex(await crypto.subtle.sign("HMAC", signOnly, data)));
            const gen = await crypto.subtle.generateKey({{ name: "HMAC", hash: "SHA-384" }}, true, ["sign"]);
            out.push((await crypto.subtle.exportKey("raw", gen)).byteLength);
            out.push(await crypto.subtle.importKey("raw", enc.encode("k"), {{ name: "AES-GCM" }}, false, ["encrypt"]).catch(e => e.name));
            try {{ new CryptoKey(); }} catch (e) {{ out.push(e.name); }}
            return out;"#
            ))
            .await;
        assert_eq!(
            got,
            r#"["5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843","secret","HMAC","SHA-256",false,["sign","verify"],"[object CryptoKey]",true,false,false,false,"InvalidAccessError",64,"107","InvalidAccessError","aw","HS512",true,128,"NotSupportedError","TypeError"]"#
        );
    });
}

#[test]
fn random_values_and_uuids() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const a = new Uint8Array(32), r = crypto.getRandomValues(a);
            const out = [r === a, a.some(x => x !== 0), crypto.getRandomValues(new Uint32Array(16384)).length];
            const view = new Uint8Array(8); crypto.getRandomValues(view.subarray(2, 4));
            out.push(view[0] === 0 && view[1] === 0 && view[4] === 0 && view[7] === 0);
            try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { out.push(e.name); }
            try { crypto.getRandomValues(new Float64Array(1)); } catch (e) { out.push(e.name); }
            const u = crypto.randomUUID();
            out.push(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u), u !== crypto.randomUUID());
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"[true,true,16384,true,"QuotaExceededError","TypeMismatchError",true,true]"#
        );
    });
}

#[test]
fn timers_fire_in_order_and_clear() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const out = [];
            setTimeout(() => out.push("fifty"), 50);
            setTimeout((a, b) => out.push("zero" + a + b), 0, 1, 2);
            setTimeout(() => out.push("zero-again"));
            const c = setTimeout(() => out.push("cleared"), 5); clearTimeout(c);
            clearTimeout(undefined); clearTimeout(12345);
            Promise.resolve().then(() => out.push("micro"));
            let n = 0;
            const i = setInterval(() => { out.push("tick" + ++n); if (n === 3) clearInterval(i); }, 1);
            setTimeout(() => { Promise.resolve().then(() => out.push("after-throw")); throw new Error("boom"); }, 2);
            await new Promise(r => setTimeout(r, 100));
            return [out.filter(x => x !== "after-throw"), out.includes("after-throw"), typeof i];"#)
            .await;
        assert_eq!(
            got,
            r#"[["micro","zero12","zero-again","tick1","tick2","tick3","fifty"],true,"number"]"#
        );
        let lines = env.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].0, "error");
        assert!(lines[0].1.starts_with("Uncaught Error: boom"), "{lines:?}");
    });
}

#[test]
fn timers_do_not_outlive_the_runtime() {
    run(async {
        let env = env().await;
        env.ok("setInterval(() => console.log('tick'), 1); setTimeout(() => {}, 1e6); fetch('https://slow/'); return 0")
            .await;
        let lines = env.lines.clone();
        let outside = env.outside.clone();
        drop(env);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Every closure and task holding the host is gone with the runtime.
        assert_eq!(Rc::strong_count(&lines), 1);
        assert_eq!(Rc::strong_count(&outside), 1);
    });
}

#[test]
fn structured_clone_copies_cycles_and_collections() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const o = { n: 1, d: new Date(0), m: new Map([["k", { deep: [1, 2] }]]), s: new Set([1]), u: new Uint8Array([1, 2]), re: /x/gi };
            o.self = o; o.m.set("back", o);
            const c = structuredClone(o);
            const out = [c !== o, c.self === c, c.m.get("back") === c, c.m.get("k").deep.join(), c.d instanceof Date && c.d.getTime(),
                c.s.has(1), c.u instanceof Uint8Array && c.u.join(), c.re.flags, c.m.get("k") !== o.m.get("k"), c.u.buffer !== o.u.buffer];
            for (const v of [{ f() {} }, new Headers(), Symbol("s"), Promise.resolve()]) {
                try { structuredClone(v); } catch (e) { out.push(e.name); }
            }
            const e = structuredClone(new RangeError("r"));
            out.push(e instanceof RangeError, e.message, structuredClone(null), structuredClone([1, , 3]).length);
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"[true,true,true,"1,2",0,true,"1,2","gi",true,true,"DataCloneError","DataCloneError","DataCloneError","DataCloneError",true,"r",null,3]"#
        );
    });
}

#[test]
fn console_lines_reach_the_host() {
    run(async {
        let env = env().await;
        env.ok(r#"
            console.log("a", 1, { b: [1, "x"], c: null }, [1, 2], undefined);
            console.info("%s is %d years", "Bob", 42.5, "extra");
            console.warn(new Map([[1, { a: 1 }]]), new Set(["s"]));
            console.error(new TypeError("bad thing"));
            console.debug(new Uint8Array([1, 2]), () => 1, class Foo {}, Symbol("s"), 10n, -0);
            const cyc = { name: "c" }; cyc.me = cyc; console.log(cyc);
            console.log(new Headers({ a: "1" }), new URL("http://x/y"), { "needs quote": true, nested: { deep: { deeper: { deepest: 1 } } } });
            console.assert(1 === 2, "math");
            console.assert(true, "fine");
            console.log("lone \ud800 surrogate");
            return 0;"#)
            .await;
        let lines = env.lines();
        let expected = [
            (
                "log",
                r#"a 1 { b: [ 1, "x" ], c: null } [ 1, 2 ] undefined"#,
            ),
            ("info", "Bob is 42.5 years extra"),
            ("warn", r#"Map(1) { 1 => { a: 1 } } Set(1) { "s" }"#),
            (
                "debug",
                "Uint8Array(2) [ 1, 2 ] [Function: (anonymous)] [class Foo] Symbol(s) 10n -0",
            ),
            ("log", r#"{ name: "c", me: [Circular] }"#),
            (
                "log",
                r#"Headers { a: "1" } URL { href: "http://x/y" } { "needs quote": true, nested: { deep: { deeper: [Object] } } }"#,
            ),
            ("error", "Assertion failed: math"),
            ("log", "lone \u{fffd} surrogate"),
        ];
        assert_eq!(lines.len(), expected.len() + 1, "{lines:#?}");
        let mut lines = lines.into_iter();
        for (i, (level, message)) in expected.iter().enumerate() {
            if i == 3 {
                let (level, message) = lines.next().expect("error line");
                assert_eq!(level, "error");
                assert!(message.starts_with("TypeError: bad thing\n"), "{message}");
                assert!(
                    message.contains("at "),
                    "an error prints its stack: {message}"
                );
            }
            assert_eq!(
                lines.next().expect("line"),
                (level.to_string(), message.to_string())
            );
        }
    });
}

#[test]
fn fetch_goes_through_the_host() {
    run(async {
        let env = env().await;
        let got = env
            .ok(r#"
            const r = await fetch("https://api.example.com/x?y=1", { method: "POST", body: new URLSearchParams({ a: "1 2" }), headers: { "X-Token": "t" } });
            const out = [r.status, r.ok, r.url, r.redirected, r.headers.get("content-type"), await r.text()];
            try { r.headers.set("a", "b"); } catch (e) { out.push(e.name); }
            const g = await fetch(new URL("https://api.example.com/get"));
            out.push(await g.text());
            const s = await fetch(new Request("https://api.example.com/s", { method: "PUT", body: new ReadableStream({ start(c) { c.enqueue(new Uint8Array([65, 66])); c.close(); } }) }));
            out.push(await s.text());
            try { await fetch("https://unreachable.example/"); } catch (e) { out.push(e.name, e.message); }
            try { await fetch("not a url"); } catch (e) { out.push(e.name); }
            return out;"#)
            .await;
        assert_eq!(
            got,
            r#"[201,true,"https://api.example.com/x?y=1",false,"text/plain","POST https://api.example.com/x?y=1 a=1+2","TypeError","GET https://api.example.com/get ","PUT https://api.example.com/s AB","TypeError","connection refused","TypeError"]"#
        );
        let seen = env.outside.0.borrow();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].body, b"a=1+2");
        assert_eq!(
            seen[0].headers,
            vec![
                ("x-token".to_string(), "t".to_string()),
                (
                    "content-type".to_string(),
                    "application/x-www-form-urlencoded;charset=UTF-8".to_string()
                ),
            ]
        );
        assert!(seen[1].body.is_empty());
    });
}

#[test]
fn requests_and_responses_cross_the_boundary() {
    run(async {
        let env = env().await;
        let response = env
            .context
            .async_with(async |ctx| {
                let request = to_request(
                    &ctx,
                    HttpRequest {
                        method: "POST".into(),
                        url: "https://fn.example/hello?name=Ada".into(),
                        headers: vec![
                            ("Content-Type".into(), "application/json".into()),
                            ("X-Multi".into(), "1".into()),
                            ("x-multi".into(), "2".into()),
                        ],
                        body: br#"{"n":41}"#.to_vec(),
                    },
                )
                .catch(&ctx)
                .map_err(|e| e.to_string())?;
                let handler: Function = ctx
                    .eval(
                        r#"async (req) => {
                            const { n } = await req.json();
                            const u = new URL(req.url);
                            const body = { n: n + 1, name: u.searchParams.get("name"), method: req.method,
                                multi: req.headers.get("x-multi"), type: req.headers.get("CONTENT-TYPE") };
                            return new Response(JSON.stringify(body), { status: 202, headers: { "X-Out": "yes" } });
                        }"#,
                    )
                    .catch(&ctx)
                    .map_err(|e| e.to_string())?;
                let promise: Promise = handler.call((request,)).catch(&ctx).map_err(|e| e.to_string())?;
                let value: Value = promise.into_future().await.catch(&ctx).map_err(|e| e.to_string())?;
                read_response(&ctx, value, 1024).await
            })
            .await
            .expect("response");
        assert_eq!(response.status, 202);
        assert_eq!(
            response.headers,
            vec![
                ("x-out".to_string(), "yes".to_string()),
                (
                    "content-type".to_string(),
                    "text/plain;charset=UTF-8".to_string()
                ),
            ]
        );
        assert_eq!(
            String::from_utf8(response.body).expect("utf-8"),
            r#"{"n":42,"name":"Ada","method":"POST","multi":"1, 2","type":"application/json"}"#
        );
        let get = env
            .context
            .with(|ctx| -> std::result::Result<String, String> {
                let request = to_request(
                    &ctx,
                    HttpRequest {
                        method: "GET".into(),
                        url: "https://fn.example/".into(),
                        headers: vec![],
                        body: vec![],
                    },
                )
                .catch(&ctx)
                .map_err(|e| e.to_string())?;
                let show: Function = ctx
                    .eval("r => [r.method, r.url, r.body, r.bodyUsed, [...r.headers].length, String(r)].join()")
                    .catch(&ctx)
                    .map_err(|e| e.to_string())?;
                show.call((request,)).catch(&ctx).map_err(|e| e.to_string())
            })
            .await;
        assert_eq!(
            get.as_deref(),
            Ok("GET,https://fn.example/,,false,0,[object Request]")
        );
    });
}

#[test]
fn read_response_reads_stream_bodies() {
    run(async {
        let env = env().await;
        let response = env
            .respond(
                r#"new Response(new ReadableStream({
                    start(c) { c.enqueue(new TextEncoder().encode("hello ")); },
                    async pull(c) { await new Promise(r => setTimeout(r, 1)); c.enqueue(new TextEncoder().encode("world")); c.close(); },
                }), { headers: { "content-type": "text/plain" } })"#,
                1024,
            )
            .await
            .expect("response");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello world");
        let empty = env
            .respond("new Response(null, { status: 204 })", 0)
            .await
            .expect("empty");
        assert_eq!((empty.status, empty.body.len()), (204, 0));
        let exact = env
            .respond("new Response('x'.repeat(10))", 10)
            .await
            .expect("exact");
        assert_eq!(exact.body.len(), 10);
    });
}

#[test]
fn read_response_refuses_what_is_not_a_response_or_too_large() {
    run(async {
        let env = env().await;
        let refused = env.respond("undefined", 1024).await.expect_err("undefined");
        assert_eq!(refused, "the handler returned undefined, not a Response");
        let refused = env.respond("42", 1024).await.expect_err("number");
        assert_eq!(refused, "the handler returned a number, not a Response");
        let refused = env
            .respond("({ status: 200 })", 1024)
            .await
            .expect_err("object");
        assert_eq!(
            refused,
            "the handler returned an object (Object), not a Response"
        );
        let refused = env
            .respond("Response.error()", 1024)
            .await
            .expect_err("error");
        assert_eq!(refused, "the handler returned Response.error()");
        let refused = env
            .respond("new Response('x'.repeat(2000))", 1024)
            .await
            .expect_err("bytes");
        assert!(refused.contains("larger than"), "{refused}");
        assert!(
            refused.contains("2000") && refused.contains("1024"),
            "{refused}"
        );
        let refused = env
            .respond(
                r#"(globalThis.pulled = 0, new Response(new ReadableStream({
                    pull(c) { globalThis.pulled++; c.enqueue(new Uint8Array(600)); },
                    cancel() { globalThis.cancelled = true; },
                })))"#,
                1024,
            )
            .await
            .expect_err("stream");
        assert!(refused.contains("larger than"), "{refused}");
        assert!(
            refused.contains("1024") && refused.contains("1200"),
            "{refused}"
        );
        let after = env
            .ok("return [globalThis.pulled, globalThis.cancelled]")
            .await;
        assert_eq!(
            after, "[2,true]",
            "the stream is cancelled once past the limit"
        );
        let refused = env
            .respond(
                "new Response(new ReadableStream({ pull(c) { c.error(new Error('broken')); } }))",
                1024,
            )
            .await
            .expect_err("errored stream");
        assert_eq!(refused, "broken");
    });
}

/// Prints what a cold start spends here (run with `--release --nocapture`;
/// not asserted: machines differ).
#[test]
fn install_time() {
    run(async {
        const ROUNDS: usize = 200;
        let mut samples: [Vec<Duration>; 4] = Default::default();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let runtime = AsyncRuntime::new().expect("runtime");
            let context = AsyncContext::full(&runtime).await.expect("context");
            samples[0].push(started.elapsed());
            let host = Host {
                console: Rc::new(Lines::default()),
                outside: Rc::new(FakeOutside::default()),
            };
            let [installing, first, everything] = context
                .async_with(async |ctx| {
                    let started = Instant::now();
                    install(&ctx, host)
                        .catch(&ctx)
                        .map_err(|e| e.to_string())
                        .expect("install");
                    let installing = started.elapsed();
                    let started = Instant::now();
                    let request = HttpRequest {
                        method: "GET".into(),
                        url: "https://fn.example/".into(),
                        headers: vec![("accept".into(), "*/*".into())],
                        body: Vec::new(),
                    };
                    let request = to_request(&ctx, request).catch(&ctx).expect("request");
                    let handler: Function = ctx
                        .eval("req => new Response('hi ' + req.method)")
                        .expect("handler");
                    let value: Value = handler.call((request,)).expect("call");
                    read_response(&ctx, value, 1024).await.expect("response");
                    let first = started.elapsed();
                    let started = Instant::now();
                    let _: Value = ctx
                        .eval(
                            "[console, URL, TextEncoder, ReadableStream, crypto, structuredClone]",
                        )
                        .expect("all");
                    [installing, first, started.elapsed()]
                })
                .await;
            samples[1].push(installing);
            samples[2].push(first);
            samples[3].push(everything);
        }
        let report = |name: &str, samples: &mut Vec<Duration>| {
            samples.sort();
            let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
            println!(
                "{name}: median {:?}, min {:?}, mean {:?}",
                samples[samples.len() / 2],
                samples[0],
                mean
            );
        };
        report("new runtime + full context", &mut samples[0]);
        report("web::install (core section)", &mut samples[1]);
        report(
            "first request: to_request + handler + read_response (http section)",
            &mut samples[2],
        );
        report("every other section", &mut samples[3]);
    });
}
