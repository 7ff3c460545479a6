// Node module hook: outside the sandbox, `hookhost:plugin/<interface>@…`
// imports resolve to the in-memory host in ./fake.
export async function resolve(specifier, context, next) {
  const m = /^hookhost:plugin\/([a-z-]+)@/.exec(specifier);
  if (m) return { url: new URL(`./fake/${m[1]}.js`, import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
