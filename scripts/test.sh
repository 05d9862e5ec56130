#!/usr/bin/env bash
# `npm test`: the type check, then the tap suite, on the Node on PATH. Under CI=true it
# runs that on every supported Node version instead (scripts/test-matrix.sh), so CI and
# the README name one command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ "${CI:-}" == "true" && -z "${TEST_MATRIX_RUN:-}" ]]; then
  exec bash scripts/test-matrix.sh
fi
npm run typecheck
exec npx tap
