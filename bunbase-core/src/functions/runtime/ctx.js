// Makes the `ctx` of each invocation. `call` is the host bridge; it is
// captured here and never reachable from user code.
(call) => {
  class BunbaseError extends Error {
    constructor(code, message) {
      super(message);
      this.name = "BunbaseError";
      this.code = code;
    }
  }
  const invoke = async (method, args) => {
    const reply = JSON.parse(await call(method, JSON.stringify(args)));
    if (reply.error) throw new BunbaseError(reply.error.code, reply.error.message);
    return reply.ok;
  };
  const bytesOf = (body) => {
    if (typeof body === "string") return new TextEncoder().encode(body);
    if (body instanceof ArrayBuffer) return new Uint8Array(body);
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    throw new TypeError("storage.put body must be a string, an ArrayBuffer or a typed array");
  };
  const toBase64 = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const bunbase = Object.freeze({
    docs: Object.freeze({
      get: (collection, id) => invoke("docs.get", { collection, id }),
      query: (collection, query = {}) => invoke("docs.query", { collection, query }),
      create: (collection, data, id) => invoke("docs.create", { collection, data, id }),
      update: (collection, id, data) => invoke("docs.update", { collection, id, data }),
      delete: (collection, id) => invoke("docs.delete", { collection, id }),
    }),
    kv: Object.freeze({
      get: (key) => invoke("kv.get", { key }),
      set: (key, value, options = {}) => invoke("kv.set", { key, value, ttl: options.ttl }),
      incr: (key, by = 1) => invoke("kv.incr", { key, by }),
      delete: (key) => invoke("kv.delete", { key }),
    }),
    events: Object.freeze({
      publish: (topic, data) => invoke("events.publish", { topic, data }),
    }),
    storage: Object.freeze({
      get: async (bucket, key) => {
        const found = await invoke("storage.get", { bucket, key });
        if (found === null) return null;
        const bytes = fromBase64(found.body);
        return {
          key, size: found.size, contentType: found.content_type, etag: found.etag,
          bytes: () => bytes,
          text: () => new TextDecoder().decode(bytes),
          json: () => JSON.parse(new TextDecoder().decode(bytes)),
        };
      },
      put: (bucket, key, body, options = {}) =>
        invoke("storage.put", { bucket, key, body: toBase64(bytesOf(body)), content_type: options.contentType }),
      sign: (bucket, key, options = {}) =>
        invoke("storage.sign", { bucket, key, method: options.method || "GET", expires: options.expiresIn || 3600 }),
    }),
  });
  return (details) => Object.freeze({
    env: Object.freeze(details.env || {}),
    project: details.project,
    function: details.function,
    version: details.version,
    invocation: details.invocation,
    trigger: details.trigger,
    auth: details.auth,
    bunbase,
    BunbaseError,
  });
}
