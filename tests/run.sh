#!/usr/bin/env bash
# Runs test projects and keeps their TRX results, so one summary can be counted over all of them.
#
#   tests/run.sh unit RESULTS_DIR     unit and integration tests, plus the published-binary E2E tests
#   tests/run.sh e2e  RESULTS_DIR     the real-component suite (root: CRIU, containerd, registry)
#   tests/run.sh summary RESULTS_DIR  prints "N passed, N failed, N skipped" over every TRX in RESULTS_DIR
#                                     (with CRSC_TEST_DETAILS=1 also why each failed test failed)
#
# `dotnet test`'s own summary is per project; the closing line printed here sums them all.
set -uo pipefail
cd "$(dirname "$0")/.."
phase=${1:?usage: tests/run.sh unit|e2e|summary RESULTS_DIR}
results=${2:?usage: tests/run.sh unit|e2e|summary RESULTS_DIR}
mkdir -p "$results"

# Why each failed test failed, from its TRX: the assertion message, the top of the stack and the end of
# what the test wrote (ITestOutputHelper), so a CI log alone says what went wrong. Kept short: a CI record
# may keep only the last lines of the log.
failure_details() {
  command -v python3 >/dev/null || return 0
  python3 - "$1" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
def tail(text, n):
    lines = (text or "").rstrip().splitlines()
    return lines[-n:] if len(lines) > n else lines
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") != "Failed":
        continue
    print(f"---- {r.get('testName')} ({r.get('duration')})")
    out = r.find("t:Output", ns)
    if out is None:
        continue
    msg = out.findtext("t:ErrorInfo/t:Message", default="", namespaces=ns)
    stack = out.findtext("t:ErrorInfo/t:StackTrace", default="", namespaces=ns)
    for line in (msg or "").rstrip().splitlines()[:14]:
        print("  | " + line[:300])
    for line in [l for l in (stack or "").splitlines() if l.strip()][:3]:
        print("  | " + line.strip()[:300])
    for line in tail(out.findtext("t:StdOut", default="", namespaces=ns), 8):
        print("  > " + line[:300])
PY
}

summary() {
  local details=${CRSC_TEST_DETAILS:-0}
  local passed=0 failed=0 skipped=0 f line
  shopt -s nullglob
  for f in "$results"/*.trx "$results"/*/*.trx; do
    line=$(grep -o '<Counters [^>]*>' "$f" | head -n1)
    [ -n "$line" ] || { failed=$((failed + 1)); echo "no counters in $f (test run aborted?)" >&2; continue; }
    get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$line"; }
    passed=$((passed + $(get passed)))
    failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
    skipped=$((skipped + $(get total) - $(get executed)))
    # name what failed, so a red line says where to look
    grep -o '<UnitTestResult [^>]*outcome="Failed"[^>]*>' "$f" | sed -n 's/.*testName="\([^"]*\)".*/  FAILED: \1/p' >&2
    [ "${details:-}" = 1 ] && failure_details "$f" >&2
  done
  for f in "$results"/*.runerror "$results"/*/*.runerror; do
    [ -e "$f" ] || continue
    failed=$((failed + 1)); echo "  RUN ERROR: $(cat "$f")" >&2
  done
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

run_project() { # project filter
  local project=$1 filter=$2 name rc
  name=$(basename "$project" .csproj)
  echo "== $name ($filter)"
  dotnet test "$project" --no-build -nodeReuse:false --filter "$filter" \
    --logger "trx;LogFileName=$name-$phase.trx" --results-directory "$results" >"$results/$name-$phase.log" 2>&1
  rc=$?
  grep -E 'Passed!|Failed!|error|\[FAIL\]|Skipped ' "$results/$name-$phase.log" | tail -n "${TEST_OUTPUT_LINES:-30}"
  if [ "$rc" -ne 0 ] && [ ! -s "$results/$name-$phase.trx" ]; then
    tail -n 40 "$results/$name-$phase.log"
    echo "$name: dotnet test exited $rc without results (log: $results/$name-$phase.log)" > "$results/$name-$phase.runerror"
  fi
}

case "$phase" in
  unit)
    dotnet restore crsc.sln -nodeReuse:false >/dev/null || { echo "restore failed" > "$results/restore.runerror"; summary; exit 1; }
    dotnet build crsc.sln --no-restore -nodeReuse:false -v:q -clp:ErrorsOnly || { echo "build failed" > "$results/build.runerror"; summary; exit 1; }
    for p in tests/*.Tests/*.csproj; do run_project "$p" "Category!=RealComponents"; done
    ;;
  e2e)
    dotnet build tests/Crsc.E2E.Tests -nodeReuse:false -v:q -clp:ErrorsOnly || { echo "e2e build failed" > "$results/e2e-build.runerror"; summary; exit 1; }
    run_project tests/Crsc.E2E.Tests/Crsc.E2E.Tests.csproj "Category=RealComponents"
    ;;
  summary) ;;
  *) echo "unknown phase $phase (unit, e2e, summary)" >&2; exit 2 ;;
esac
summary
