#!/usr/bin/env bash
# The IaC checks (ctest iac_cdk_terraform): type-check the CDK construct and the tests, then jest
# (CDK assertions/snapshot/cdk-nag, the construct-vs-template drift test, the Terraform module vs
# the template). Needs node_modules from `npm ci` here, which scripts/setup.sh runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -x node_modules/.bin/jest || ! -x node_modules/.bin/tsc ]]; then
  echo "iac: node_modules missing or incomplete: run scripts/setup.sh (npm ci in iac/)" >&2
  exit 1
fi
node_modules/.bin/tsc --noEmit -p .
exec node_modules/.bin/jest --ci "$@"
