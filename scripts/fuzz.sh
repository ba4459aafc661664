#!/usr/bin/env bash
# Runs libFuzzer targets (Tests/Fuzz, one executable swift-target-fuzz selecting the target
# by name) for SECONDS each, seeded with the committed corpus Tests/Fuzz/Corpus/TARGET (copied
# to a temporary working corpus: runs do not dirty the tree) and Tests/Fuzz/Dictionaries/
# TARGET.dict when there is one. Builds the fuzz build once into .build-fuzz
# (-sanitize=fuzzer,address; C targets with ASan and coverage too; -DFUZZING hands main to
# libFuzzer). Memory is bounded by -rss_limit_mb, each input by -timeout.
#
# Usage: scripts/fuzz.sh TARGET|all SECONDS
# Prints `fuzz[TARGET]: N executions, K crashes` per target; exits non-zero on any crash,
# leak, timeout or out-of-memory, keeping the input under ci-artifacts/fuzz/ (replay it with
# `.build-fuzz/debug/swift-target-fuzz TARGET FILE`, or with the plain build's
# `.build/debug/swift-target-fuzz TARGET FILE`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
[ $# = 2 ] || { echo "usage: $0 TARGET|all SECONDS" >&2; exit 2; }
which=$1; seconds=$2
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-2048}
input_timeout=${FUZZ_INPUT_TIMEOUT:-10}
out=${ARTIFACTS:-$here/ci-artifacts}/fuzz
mkdir -p "$out"

flags=(--product swift-target-fuzz --scratch-path "$here/.build-fuzz"
       -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
       -Xcc -fsanitize=fuzzer-no-link,address)
start=$(date +%s)
if ! nice -n 10 swift build "${flags[@]}" > "$out/build.log" 2>&1; then
  echo "fuzz build FAILED"; grep -E 'error' "$out/build.log" | head -20; exit 1
fi
echo "fuzz build: $(( $(date +%s) - start )) s"
bin=$(swift build "${flags[@]}" --show-bin-path)/swift-target-fuzz

if [ "$which" = all ]; then targets=$("$bin" --list); else targets=$which; fi
status=0
for t in $targets; do
  work=$(mktemp -d "/tmp/swtgt-fuzz-$t.XXXXXX")
  [ -d "Tests/Fuzz/Corpus/$t" ] && cp -R "Tests/Fuzz/Corpus/$t/." "$work/"
  extra=()
  [ -f "Tests/Fuzz/Dictionaries/$t.dict" ] && extra+=("-dict=Tests/Fuzz/Dictionaries/$t.dict")
  before=$(ls "$out" | grep -E "^$t-(crash|leak|timeout|oom)-" || true)
  rc=0
  # The Swift runtime's backtracer would catch the trap before libFuzzer's handler.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    timeout $((seconds + 300)) nice -n 10 "$bin" "$t" -max_total_time="$seconds" -print_final_stats=1 \
      -rss_limit_mb="$rss_limit_mb" -timeout="$input_timeout" -artifact_prefix="$out/$t-" \
      "${extra[@]}" "$work" > "$out/$t.log" 2>&1 || rc=$?
  rm -rf "$work"
  execs=$(awk '/stat::number_of_executed_units/ { n = $2 } END { print n + 0 }' "$out/$t.log")
  after=$(ls "$out" | grep -E "^$t-(crash|leak|timeout|oom)-" || true)
  new=$(comm -13 <(echo "$before") <(echo "$after") | grep . || true)
  crashes=$(echo -n "$new" | grep -c . || true)
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then crashes=1; fi
  echo "fuzz[$t]: $execs executions, $crashes crashes"
  if [ "$crashes" != 0 ]; then
    status=1
    grep -m 6 -E 'ERROR|Fatal error|fuzz invariant|SUMMARY|Test unit written' "$out/$t.log" | sed 's/^/  /' || true
    grep -m 3 -E '#[0-9]+ .*/(Sources|CModules)/' "$out/$t.log" | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in /  at /' \
      | swift demangle --simplified || true
    for f in $new; do echo "  input kept: ci-artifacts/fuzz/$f"; done
    [ -n "$new" ] || { echo "  libFuzzer exited with $rc:"; tail -5 "$out/$t.log" | sed 's/^/  /'; }
  fi
done
exit $status
