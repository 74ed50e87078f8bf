#!/usr/bin/env bash
# Builds the fuzz targets with cargo-fuzz on stable Rust (no sanitizer, so no nightly flags) and runs each one for
# FUZZ_SECONDS (default 20) against a temporary copy of its committed corpus in fuzz/corpus/<target>, two at a
# time. Fails if any target crashes, times out or runs out of memory; the crashing input is printed (and kept in
# $FUZZ_ARTIFACTS, default a temporary folder). New corpus entries go to the temporary copy, never into the
# repository.
#
#   bash fuzz/run.sh                 # every target, 20 s each
#   FUZZ_SECONDS=300 bash fuzz/run.sh jwt filter
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
# its own build cache: instrumented release builds share nothing with the workspace's
target_dir="${FUZZ_TARGET_DIR:-/var/tmp/wsoauth-fuzz-target}"
cargo_fuzz_version=0.13.2
all_targets=(params basic_auth scope redirect_uri jwt filter)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$target.rs" ]; then
        echo "unknown fuzz target $target (known: ${all_targets[*]})"
        exit 2
    fi
done

if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    echo "installing cargo-fuzz $cargo_fuzz_version"
    # built in a temporary folder, not in the workspace's CARGO_TARGET_DIR
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi
cargo fuzz --version

# --sanitizer none: the code under test is safe Rust, and AddressSanitizer needs a nightly compiler.
# Release with debug assertions and overflow checks (cargo-fuzz's default); 16 codegen units for a faster build.
build_flags=(--fuzz-dir fuzz --sanitizer none --codegen-units 16 --target-dir "$target_dir")
started=$SECONDS
cargo fuzz build "${build_flags[@]}"
echo "built in $((SECONDS - started)) s"
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
artifacts="${FUZZ_ARTIFACTS:-$work/artifacts}"
mkdir -p "$artifacts"

# Inputs longer than a limit must reach the code that refuses them.
max_len() {
    case "$1" in
        filter) echo 5000 ;; # MAX_LEN 4096
        jwt) echo 9000 ;;    # MAX_TOKEN_LEN 8192
        *) echo 4096 ;;
    esac
}

run_one() {
    local target="$1"
    mkdir -p "$work/corpus/$target"
    cp -R "fuzz/corpus/$target/." "$work/corpus/$target/"
    "$bin_dir/$target" "$work/corpus/$target" \
        -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$target-" >"$work/$target.log" 2>&1
}

failed=()
report() {
    local target="$1" status="$2"
    local runs
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$' || echo '?')"
    if [ "$status" -eq 0 ]; then
        echo "$target: ok, $runs runs in ${FUZZ_SECONDS} s, corpus $(find "$work/corpus/$target" -type f | wc -l) inputs"
    else
        echo "$target: FAILED (exit $status)"
        tail -n 60 "$work/$target.log"
        for artifact in "$artifacts/$target-"*; do
            [ -e "$artifact" ] || continue
            echo "crashing input $artifact (base64): $(base64 -w0 "$artifact")"
        done
        failed+=("$target")
    fi
}

# Two at a time, one per core.
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pair=("${targets[@]:i:2}")
    pids=()
    for target in "${pair[@]}"; do
        run_one "$target" &
        pids+=($!)
    done
    for j in "${!pair[@]}"; do
        status=0
        wait "${pids[$j]}" || status=$?
        report "${pair[$j]}" "$status"
    done
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]}"
    exit 1
fi
echo "fuzzing: ${#targets[@]} targets, no crash"
