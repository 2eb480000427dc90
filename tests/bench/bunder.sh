#!/usr/bin/env bash
# Bunder beside redis-server, in one run: redis-benchmark against each (no
# persistence), unpipelined (-P 1) and pipelined (-P 16), one server at a
# time, then a table with the ratio bunder/redis (medians of ROUNDS runs).
# Also the RSS of each after loading 1M small keys.
#
#   bash tests/bench/bunder.sh            (builds bunder in release first)
#   TESTS="set,get,incr" N=200000 bash tests/bench/bunder.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

TESTS=${TESTS:-set,get,incr,lpush,hset,lpop,sadd,zadd}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
KEYS_FOR_RSS=${KEYS_FOR_RSS:-1000000}

for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "needs $tool (Debian redis-server)" >&2; exit 1; }
done
cargo build --release -q -p bunbase-shells --bin bunder

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
BUNDER_PORT=$(free_port)
BUNDER1_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS_PID=$!
# Bunder twice: its default (a thread per core) and one thread like Redis.
# On a 2-core machine redis-benchmark keeps one core busy, so the second
# thread mostly contends; on bigger machines the default is the one to use.
./target/release/bunder --listen "127.0.0.1:$BUNDER_PORT" >/dev/null 2>&1 &
BUNDER_PID=$!
./target/release/bunder --listen "127.0.0.1:$BUNDER1_PORT" --threads 1 >/dev/null 2>&1 &
BUNDER1_PID=$!
trap 'kill $REDIS_PID $BUNDER_PID $BUNDER1_PID 2>/dev/null || true' EXIT
for port in "$REDIS_PORT" "$BUNDER_PORT" "$BUNDER1_PORT"; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

# rps PORT PIPELINE TEST -> requests per second
rps() {
    redis-benchmark -p "$1" -t "$3" -n "$N" -c "$CLIENTS" -P "$2" -q 2>/dev/null \
        | tr '\r' '\n' | grep 'requests per second' | tail -1 \
        | sed -E 's/^.*: ([0-9.]+) requests per second.*/\1/'
}

# The servers never run at the same time: per test, redis then bunder,
# ROUNDS times alternating, and the median of each is printed (the machine
# has 2 cores; redis-benchmark itself needs one).
ROUNDS=${ROUNDS:-3}
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
cores=$(nproc)
printf '%-14s %12s %14s %6s %14s %6s\n' "test" "redis" "bunder x1" "ratio" "bunder x$cores" "ratio"
for pipeline in 1 16; do
    for test in ${TESTS//,/ }; do
        redis_runs=() one_runs=() all_runs=()
        for _ in $(seq "$ROUNDS"); do
            redis_runs+=("$(rps "$REDIS_PORT" "$pipeline" "$test")")
            one_runs+=("$(rps "$BUNDER1_PORT" "$pipeline" "$test")")
            all_runs+=("$(rps "$BUNDER_PORT" "$pipeline" "$test")")
        done
        redis=$(median "${redis_runs[@]}")
        one=$(median "${one_runs[@]}")
        all=$(median "${all_runs[@]}")
        ratio() { python3 -c "print(f'{$1/$redis:.2f}' if $redis > 0 else 'n/a')"; }
        printf '%-14s %12.0f %14.0f %6s %14.0f %6s\n' "${test^^} -P$pipeline" "$redis" "$one" "$(ratio "$one")" "$all" "$(ratio "$all")"
    done
done
echo "(requests per second, median of $ROUNDS runs each; x1 = bunder --threads 1, x$cores = its default)"

# Memory for many small keys (RSS, from /proc).
load_keys() {
    python3 - "$1" "$KEYS_FOR_RSS" <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys
n = int(sys.argv[2])
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%d" % i
    v = b"v%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# Fresh servers, so memory kept from the benchmark above doesn't count.
kill $REDIS_PID $BUNDER_PID 2>/dev/null || true
wait $REDIS_PID $BUNDER_PID 2>/dev/null || true
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS_PID=$!
./target/release/bunder --listen "127.0.0.1:$BUNDER_PORT" >/dev/null 2>&1 &
BUNDER_PID=$!
for port in "$REDIS_PORT" "$BUNDER_PORT"; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
echo
printf 'RSS empty: redis %s MiB, bunder %s MiB\n' "$(rss_mib $REDIS_PID)" "$(rss_mib $BUNDER_PID)"
load_keys "$REDIS_PORT"
load_keys "$BUNDER_PORT"
printf 'RSS with %d small keys: redis %s MiB, bunder %s MiB (dbsize %s / %s)\n' "$KEYS_FOR_RSS" \
    "$(rss_mib $REDIS_PID)" "$(rss_mib $BUNDER_PID)" \
    "$(redis-cli -p "$REDIS_PORT" dbsize)" "$(redis-cli -p "$BUNDER_PORT" dbsize)"
