#!/usr/bin/env bash
# Smoke-fuzz every zk-proto target for a fixed time: seed the corpora from the golden frames,
# build all targets once, run each for TARGET_SECONDS, print one summary line per target.
# Exits non-zero if any target crashes, times out, leaks past the RSS limit or fails to build.
#
# Usage: fuzz/run-smoke.sh [TARGET_SECONDS]   (default 20; runs from any directory)
set -euo pipefail

secs="${1:-20}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [TARGET_SECONDS]  (a positive integer, got '$secs')" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

targets=(frame_chunking response_decode request_decode roundtrip)

if ! command -v cargo-fuzz >/dev/null 2>&1 && [[ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]]; then
    echo "cargo-fuzz not found; installing it" >&2
    cargo install cargo-fuzz --locked
fi

# libFuzzer needs nightly rustc flags; use the nightly toolchain, or bootstrap stable.
if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    echo "no nightly toolchain; using RUSTC_BOOTSTRAP=1 with the default toolchain" >&2
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi

python3 "$here/seed_corpus.py"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

start="$(now)"
"${fuzz[@]}" build
echo "build: $(elapsed "$start" "$(now)") s"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

declare -a summary
failed=0
for t in "${targets[@]}"; do
    log="$logs/$t.log"
    touch "$logs/$t.mark"
    start="$(now)"
    rc=0
    # The corpus dir is given explicitly; new inputs are added to it (it is gitignored).
    "${fuzz[@]}" run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -max_len=4096 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    took="$(elapsed "$start" "$(now)")"
    # A crash during corpus loading prints no stats: tolerate missing lines.
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1 || true)"
    cov="$( (grep -Eo 'cov: [0-9]+' "$log" || true) | tail -n 1 | awk '{print $2}')"
    corpus="$(find "corpus/$t" -type f | wc -l | tr -d ' ')"
    if [[ "$rc" -eq 0 ]]; then
        status=ok
    else
        status="FAILED (exit $rc)"
        failed=1
        echo "---- $t: last 60 lines of the libFuzzer log ----" >&2
        tail -n 60 "$log" >&2
        echo "---- new artifacts in $here/artifacts/$t/ (reproduce: cargo +nightly fuzz run $t FILE) ----" >&2
        if [[ -d "artifacts/$t" ]]; then
            find "artifacts/$t" -type f -newer "$logs/$t.mark" -print0 |
                while IFS= read -r -d '' f; do
                    echo "$f: $(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().hex())' "$f")" >&2
                done
        fi
    fi
    line="$t: $status, ${execs:-?} execs in $took s (${rate:-?} exec/s), cov ${cov:-?}, corpus $corpus"
    summary+=("$line")
    echo "$line"
done

echo "== fuzz smoke summary (${secs} s per target) =="
printf '%s\n' "${summary[@]}"
exit "$failed"
