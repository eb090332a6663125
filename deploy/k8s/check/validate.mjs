// Validates Kubernetes objects offline against the Kubernetes API schemas
// shipped in the npm package kubernetes-models (pinned in package-lock.json).
//
//   node validate.mjs LABEL < rendered.yaml
//
// Every document must be a kind the package knows for its apiVersion; every
// object is checked with the model's validate() (types, required fields,
// enums, and no field the schema does not name). Prints one line per object
// problem and "LABEL: N objects valid" or exits 1.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const label = process.argv[2] || "stdin";
const docs = parseAllDocuments(readFileSync(0, "utf8"));
let bad = 0;
let count = 0;
const kinds = {};

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
if (count === 0) fail("input", "no objects");
if (bad) process.exit(1);
const list = Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(", ");
console.log(`${label}: ${count} objects valid (${list})`);
