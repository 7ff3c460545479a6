// The in-memory host the fake imports call while testing.js runs a handler.
export function host() {
  const h = globalThis.__hookhostLocal;
  if (!h) throw new Error("not in the Hookhost sandbox: run the handler through testing.run");
  return h;
}
