#!/usr/bin/env bash
# Offline validation of the deployment files: k8s/*.yaml against the Kubernetes schemas (npm
# kubernetes-models + js-yaml, installed once into K8S_VALIDATOR_DIR), and docker-compose.yml with
# Debian's docker-compose (`config`, no engine needed) when it is installed. Not part of the test
# command: the first run needs the npm registry.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tool=${K8S_VALIDATOR_DIR:-/tmp/learnapp-k8s-validate}
mkdir -p "$tool"
if [ ! -d "$tool/node_modules/kubernetes-models" ] || [ ! -d "$tool/node_modules/js-yaml" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tool" kubernetes-models js-yaml >/dev/null
fi
node "$root/scripts/validate-k8s.mjs" "$tool/node_modules" "$root/k8s"
if command -v docker-compose >/dev/null 2>&1; then
  JWT_SECRET=validation-only-secret-validation-only \
    docker-compose -f "$root/docker-compose.yml" config -q && echo "compose: valid"
else
  echo "compose: not checked (apt-get install docker-compose)"
fi
