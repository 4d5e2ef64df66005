#!/usr/bin/env bash
# Offline validation of k8s/*.yaml against the Kubernetes schemas (npm kubernetes-models), and of
# docker-compose.yml with Debian's docker-compose when installed. Not part of the test command:
# it needs the npm registry once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tool=${K8S_VALIDATOR_DIR:-/tmp/learnapp-k8s-validate}
mkdir -p "$tool"
[ -d "$tool/node_modules/kubernetes-models" ] ||
  npm install --silent --prefix "$tool" kubernetes-models js-yaml >/dev/null
cat >"$tool/validate.mjs" <<'JS'
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const require = createRequire(process.argv[2] + "/");
const yaml = require("js-yaml");
const dir = process.argv[3];
const groups = {
  "v1": require("kubernetes-models/v1"),
  "apps/v1": require("kubernetes-models/apps/v1"),
  "policy/v1": require("kubernetes-models/policy/v1"),
};
let n = 0, bad = 0;
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  for (const doc of yaml.loadAll(fs.readFileSync(path.join(dir, f), "utf8"))) {
    if (!doc) continue;
    n++;
    const Kind = groups[doc.apiVersion]?.[doc.kind];
    if (!Kind) { console.error(`${f}: unknown ${doc.apiVersion} ${doc.kind}`); bad++; continue; }
    try { new Kind(doc).validate(); } catch (e) { console.error(`${f}: ${doc.kind}: ${e.message}`); bad++; }
  }
}
console.log(`k8s: ${n - bad} valid, ${bad} invalid`);
process.exit(bad ? 1 : 0);
JS
node "$tool/validate.mjs" "$tool" "$root/k8s"
if command -v docker-compose >/dev/null 2>&1; then
  JWT_SECRET=x docker-compose -f "$root/docker-compose.yml" config -q && echo "compose: valid"
fi
