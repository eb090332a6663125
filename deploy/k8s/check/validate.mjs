// Validates Kubernetes objects offline against the Kubernetes API schemas
// shipped in the npm package kubernetes-models (pinned in package-lock.json).
//
//   node validate.mjs LABEL < rendered.yaml
//
// Every document must be a kind the package knows for its apiVersion; every
// object is checked with the model's validate() (types, required fields,
// enums, and no field the schema does not name). The package has no CRDs:
// a Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1) is checked
// here by hand (the fields the CRD names that we use, their types and
// formats) and must select a Service of the same render with the port it
// scrapes, whose selector matches a pod template that has that named port.
// Prints one line per object problem and "LABEL: N objects valid" or exits 1.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const label = process.argv[2] || "stdin";
const docs = parseAllDocuments(readFileSync(0, "utf8"));
let bad = 0;
let count = 0;
const kinds = {};
const objects = [];

// Prometheus durations, as the ServiceMonitor CRD's pattern has them.
const DURATION = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
const SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
const seconds = (d) => [...d.matchAll(/([0-9]+)(ms|y|w|d|h|m|s)/g)].reduce((t, m) => t + m[1] * SECONDS[m[2]], 0);
const isObj = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
const strMap = (x) => isObj(x) && Object.values(x).every((v) => typeof v === "string");

function extra(o, allowed, path, out) {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) out.push(`${path}: unknown field ${k}`);
}

// The shape of a ServiceMonitor: the problems found, [] when none.
function serviceMonitorProblems(obj) {
  const out = [];
  extra(obj, ["apiVersion", "kind", "metadata", "spec"], "/", out);
  const meta = obj.metadata || {};
  if (typeof meta.name !== "string" || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(meta.name)) {
    out.push("/metadata/name: not a DNS subdomain");
  }
  if (meta.labels !== undefined && !strMap(meta.labels)) out.push("/metadata/labels: not a map of strings");
  const spec = obj.spec;
  if (!isObj(spec)) return [...out, "/spec: missing"];
  extra(spec, ["selector", "endpoints", "podTargetLabels", "targetLabels", "namespaceSelector", "jobLabel"],
    "/spec", out);
  const ml = spec.selector && spec.selector.matchLabels;
  if (!strMap(ml) || Object.keys(ml).length === 0) out.push("/spec/selector/matchLabels: missing or not strings");
  for (const f of ["podTargetLabels", "targetLabels"]) {
    if (spec[f] !== undefined && !(Array.isArray(spec[f]) && spec[f].every((x) => typeof x === "string"))) {
      out.push(`/spec/${f}: not a list of strings`);
    }
  }
  if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0) return [...out, "/spec/endpoints: empty"];
  spec.endpoints.forEach((ep, i) => {
    const at = `/spec/endpoints/${i}`;
    if (!isObj(ep)) return out.push(`${at}: not an object`);
    extra(ep, ["port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels"], at, out);
    if (typeof ep.port !== "string" || ep.port === "") out.push(`${at}/port: a port name is required`);
    if (ep.path !== undefined && !(typeof ep.path === "string" && ep.path.startsWith("/"))) {
      out.push(`${at}/path: must start with /`);
    }
    if (ep.scheme !== undefined && !["http", "https"].includes(ep.scheme)) out.push(`${at}/scheme: http or https`);
    for (const f of ["interval", "scrapeTimeout"]) {
      if (ep[f] !== undefined && !(typeof ep[f] === "string" && DURATION.test(ep[f]))) {
        out.push(`${at}/${f}: not a duration`);
      }
    }
    if (DURATION.test(ep.interval || "") && DURATION.test(ep.scrapeTimeout || "") &&
      seconds(ep.scrapeTimeout) > seconds(ep.interval)) {
      out.push(`${at}/scrapeTimeout: longer than interval`);
    }
    if (ep.honorLabels !== undefined && typeof ep.honorLabels !== "boolean") out.push(`${at}/honorLabels: boolean`);
  });
  return out;
}

const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);

// What a ServiceMonitor scrapes: for each endpoint, a Service it selects with
// that port, and a pod template that Service selects with the target port.
function serviceMonitorTargets(sm) {
  const out = [];
  const services = objects.filter((o) => o.kind === "Service" &&
    (o.metadata.namespace || "") === (sm.metadata.namespace || "") &&
    matches(sm.spec.selector.matchLabels, o.metadata.labels));
  if (services.length === 0) return ["selects no Service of this render"];
  for (const ep of sm.spec.endpoints) {
    const hits = services.flatMap((svc) => (svc.spec.ports || []).filter((p) => p.name === ep.port)
      .map((p) => ({ svc, target: p.targetPort === undefined ? p.port : p.targetPort })));
    if (hits.length === 0) {
      out.push(`endpoint port ${ep.port}: no selected Service has a port of that name`);
      continue;
    }
    const scraped = hits.some(({ svc, target }) => objects.some((o) => {
      const tpl = o.spec && o.spec.template;
      if (!tpl || !matches(svc.spec.selector, tpl.metadata && tpl.metadata.labels)) return false;
      return (tpl.spec.containers || []).some((c) => (c.ports || []).some((p) =>
        (typeof target === "string" ? p.name === target : p.containerPort === target)));
    }));
    if (!scraped) out.push(`endpoint port ${ep.port}: no pod template behind its Service has that port`);
  }
  return out;
}

function fail(where, msg) {
  console.log(`${label}: ${where}: ${msg}`);
  bad++;
}

for (const doc of docs) {
  if (doc.errors.length) {
    fail("YAML", doc.errors.map((e) => e.message).join("; "));
    continue;
  }
  const obj = doc.toJS();
  if (obj === null) continue;
  count++;
  const where = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
  if (!obj.apiVersion || !obj.kind) {
    fail(where, "no apiVersion or kind");
    continue;
  }
  objects.push(obj);
  if (obj.apiVersion === "monitoring.coreos.com/v1" && obj.kind === "ServiceMonitor") {
    const problems = serviceMonitorProblems(obj);
    if (problems.length) fail(where, problems.join("; "));
    else kinds[obj.kind] = (kinds[obj.kind] || 0) + 1;
    continue;
  }
  let Model;
  try {
    Model = (await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`))[obj.kind];
  } catch {
    fail(where, `unknown kind ${obj.kind} in ${obj.apiVersion}`);
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message}` +
      (x.params && x.params.additionalProperty ? ` (${x.params.additionalProperty})` : ""));
    fail(where, details.length ? details.join("; ") : e.message);
    continue;
  }
  kinds[obj.kind] = (kinds[obj.kind] || 0) + 1;
}
for (const sm of objects.filter((o) => o.kind === "ServiceMonitor" && kinds.ServiceMonitor)) {
  const problems = serviceMonitorProblems(sm).length ? [] : serviceMonitorTargets(sm);
  if (problems.length) fail(`ServiceMonitor/${sm.metadata.name}`, problems.join("; "));
}
if (count === 0) fail("input", "no objects");
if (bad) process.exit(1);
const list = Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(", ");
console.log(`${label}: ${count} objects valid (${list})`);
