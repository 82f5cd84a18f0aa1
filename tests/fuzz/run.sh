#!/bin/sh
# run.sh - runs one libFuzzer target for a bounded time (make fuzz calls it).
#
#   tests/fuzz/run.sh BUILD TARGET SECONDS MAX_LEN [libFuzzer options...]
#
# The working corpus is BUILD/corpus/TARGET: the seeds and regressions from
# git are copied into it, and libFuzzer adds what it finds there, so the
# files under tests/fuzz/ are never written and a later run resumes from
# where this one stopped.  Crashing inputs land in BUILD/artifacts/TARGET/,
# the full log in BUILD/TARGET.log.  Exits non-zero when the target failed.
set -u
build=$1 target=$2 seconds=$3 max_len=$4
shift 4
corpus=$build/corpus/$target
artifacts=$build/artifacts/$target/
log=$build/$target.log
mkdir -p "$corpus" "$artifacts"
for d in seeds regressions; do
	for f in tests/fuzz/$target/$d/*; do
		[ -f "$f" ] && cp -f "$f" "$corpus/"
	done
done
dict=
[ -f "tests/fuzz/$target.dict" ] && dict=-dict=tests/fuzz/$target.dict
echo "fuzz: $target for ${seconds}s (corpus $corpus, crashes in $artifacts, log $log)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	"$build/$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
	$dict "$@" "$corpus" >"$log" 2>&1
rc=$?
# the last status line (coverage, features, corpus size) and the final stats
grep -E '^#[0-9]+' "$log" | tail -n 1
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | tr '\n' ' '
echo
if [ $rc -ne 0 ]; then
	echo "fuzz: $target FAILED (exit $rc); the report:"
	if grep -qE '^==[0-9]+==|fuzz invariant violated|runtime error' "$log"; then
		grep -E -A 30 '^==[0-9]+==|fuzz invariant violated|runtime error' "$log" | head -n 60
	else
		tail -n 20 "$log"
	fi
fi
exit $rc
