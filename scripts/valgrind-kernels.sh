#!/usr/bin/env bash
# Runs every test binary of the kernels crate (its unit tests and the six suites in
# kernels/tests) under valgrind's memcheck and fails on any memory error.
#
# valgrind's virtual CPU has no AVX-512, so the kernels' run-time dispatch takes the
# AVX2+FMA and portable paths here (the AVX-512 paths are checked by the normal test
# run). valgrind does not model the MXCSR flush-to-zero / denormals-are-zero bits, so
# the tests of `kernels::cpu::denormals` would fail under it for that reason alone:
# they are skipped, and every other test runs.
#
# Usage: scripts/valgrind-kernels.sh [extra libtest args, e.g. a test name filter]
# VALGRIND_SUITES="kernels norm reduce" limits the run to the binaries whose names
# start with those words (`kernels` is the unit tests; the suites are conv2d,
# elementwise, gemm, norm, reduce and stats). All of them take about half an hour on
# 2 cores (conv2d and gemm 10-12 minutes each); CI runs the unit tests, norm and
# reduce (about 70 s).
# Needs: valgrind (Debian: apt-get install valgrind). Prints one line per binary and
# exits non-zero if any binary reports a memory error or a failing test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "valgrind-kernels: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

# Build the test binaries and collect their paths from cargo's JSON messages.
mapfile -t binaries < <(
    cargo test --release -p kernels --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") and msg.get("executable"):
        print(msg["executable"])
'
)
if [ "${#binaries[@]}" -eq 0 ]; then
    echo "valgrind-kernels: cargo built no test binaries for kernels" >&2
    exit 2
fi

failed=0
ran=0
for bin in "${binaries[@]}"; do
    name=$(basename "$bin")
    if [ -n "${VALGRIND_SUITES:-}" ]; then
        wanted=0
        for suite in $VALGRIND_SUITES; do
            case "$name" in "$suite"-*) wanted=1 ;; esac
        done
        [ "$wanted" -eq 1 ] || continue
    fi
    ran=$((ran + 1))
    log=$(mktemp)
    start=$SECONDS
    # --error-exitcode makes a memory error fail the run even when every test passes.
    # Two test threads keep the run within the machine's cores.
    if valgrind --tool=memcheck --error-exitcode=99 --track-origins=no --quiet \
        "$bin" --test-threads=2 --skip denormals "$@" >"$log" 2>&1; then
        summary=$(grep -E '^test result:' "$log" | tail -1)
        echo "valgrind-kernels: $name: 0 memory errors; ${summary:-no test result line} ($((SECONDS - start)) s)"
    else
        code=$?
        failed=1
        if [ "$code" -eq 99 ]; then
            echo "valgrind-kernels: $name: MEMORY ERRORS ($((SECONDS - start)) s):"
        else
            echo "valgrind-kernels: $name: failed with exit status $code ($((SECONDS - start)) s):"
        fi
        grep -E '==[0-9]+==|^test .* FAILED|panicked' "$log" | head -40
    fi
    rm -f "$log"
done
if [ "$ran" -eq 0 ]; then
    echo "valgrind-kernels: no test binary matched VALGRIND_SUITES=\"${VALGRIND_SUITES:-}\"" >&2
    exit 2
fi
exit "$failed"
