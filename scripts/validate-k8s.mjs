// Offline validation of Kubernetes manifests: parses every *.yaml in a directory (all documents)
// and validates each object against the Kubernetes OpenAPI schemas shipped by the npm package
// kubernetes-models. It does not catch unknown fields. Run through scripts/validate-k8s.sh.
//   node scripts/validate-k8s.mjs MODULES_DIR MANIFEST_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [modules, dir] = process.argv.slice(2);
if (!modules || !dir) {
  console.error("usage: node validate-k8s.mjs MODULES_DIR MANIFEST_DIR");
  process.exit(2);
}
const require = createRequire(path.resolve(modules) + "/");
const yaml = require("js-yaml");
const groups = {
  "v1": require("kubernetes-models/v1"),
  "apps/v1": require("kubernetes-models/apps/v1"),
  "policy/v1": require("kubernetes-models/policy/v1"),
  "networking.k8s.io/v1": require("kubernetes-models/networking.k8s.io/v1"),
  "autoscaling/v2": require("kubernetes-models/autoscaling/v2"),
};

let valid = 0, invalid = 0;
for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(path.join(dir, file), "utf8"));
  } catch (e) {
    console.error(`${file}: YAML: ${e.message}`);
    invalid++;
    continue;
  }
  for (const doc of docs) {
    if (doc == null) continue;
    const what = `${file}: ${doc.kind ?? "?"} ${doc.metadata?.name ?? "?"}`;
    const Kind = groups[doc.apiVersion]?.[doc.kind];
    if (!Kind) {
      console.error(`${what}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
      invalid++;
      continue;
    }
    try {
      new Kind(doc).validate();
      valid++;
    } catch (e) {
      console.error(`${what}: ${e.message}`);
      invalid++;
    }
  }
}
console.log(`k8s: ${valid} valid, ${invalid} invalid`);
process.exit(invalid ? 1 : 0);
