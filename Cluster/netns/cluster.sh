#!/usr/bin/env bash
# A cluster of K "hosts" on one machine, for running and breaking MPI jobs the way real nodes do.
#
# Each host is a network namespace (ser-h1 … ser-hK) with its own address (10.77.0.11 …) on a
# bridge (ser-br0, 10.77.0.1) in the root namespace, and its own host name. mpirun runs in the root
# namespace and starts one Open MPI daemon (orted) per host through rsh-agent.sh, which plays the
# part of ssh; the ranks then talk TCP across the bridge, exactly as on separate machines.
# Cluster/README.md explains what Open MPI needed.
#
#   cluster.sh up K             create hosts ser-h1..ser-hK (needs root)
#   cluster.sh down             remove every namespace, link and file the harness made (idempotent)
#   cluster.sh status           hosts, addresses, link states, ranks
#   cluster.sh run [--hosts K] [--per-host R] [--cut HOST@SECONDS | --kill HOST@SECONDS]
#                  [--timeout SECONDS] [--keep] -- CMD [ARGS…]
#                               up K, mpirun CMD with R ranks on each host, report where each rank
#                               ran, down — also when the job fails or is interrupted
#   cluster.sh cut HOST         take HOST's link down (its ranks stay alive, unreachable)
#   cluster.sh restore HOST     bring HOST's link back up
#   cluster.sh kill HOST        SIGKILL the ranks running on HOST (the host's orted notices)
#   cluster.sh exec HOST -- CMD run a command on HOST (its namespace and host name)
#
# HOST is ser-h2, h2, 2 or 10.77.0.12. CMD `ser` means the built ser binary ($SER_BINARY, else `ser`
# on PATH, else .build/release/ser of this checkout). Faults and timeouts make the job end with a
# non-zero status; `run` exits with mpirun's status (124 after --timeout, 130 after Ctrl-C).
set -euo pipefail

readonly NET=10.77.0                     # hosts are $NET.(10+i); the bridge is $NET.1
readonly SUBNET=$NET.0/24
readonly PREFIX=ser-h                    # namespaces and host names ser-h1 … ser-hK
readonly BRIDGE=ser-br0
readonly VETH=ser-v                      # root-side ends ser-v1 …; the namespace side is eth0
readonly MAX_HOSTS=200
readonly STATE=${SER_CLUSTER_STATE:-/run/ser-cluster}
readonly LOCK=${SER_CLUSTER_LOCK:-/run/lock/ser-cluster.lock}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly SELF=$HERE/$(basename "${BASH_SOURCE[0]}")

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 2; }

# `down` removes the state directory: never let a mistyped variable point it at something else.
[[ $(basename "$STATE") == *ser-cluster* ]] || die "SER_CLUSTER_STATE must name a directory of its own containing 'ser-cluster' (got '$STATE')"

need_root() {
  [[ $(id -u) -eq 0 ]] || die "network namespaces need root: run as root (or with sudo)"
  command -v ip >/dev/null || die "the 'ip' command is missing: install iproute2 (Cluster/install-deps.sh does)"
}

# ser-h2 | h2 | 2 | 10.77.0.12  →  2
host_index() {
  local h=$1 i
  case $h in
    "$PREFIX"[0-9]*) i=${h#"$PREFIX"} ;;
    h[0-9]*) i=${h#h} ;;
    "$NET".[0-9]*) i=$(( ${h##*.} - 10 )) ;;
    [0-9]*) i=$h ;;
    *) i=x ;;
  esac
  [[ $i =~ ^[0-9]+$ ]] && (( i >= 1 && i <= MAX_HOSTS )) || die "'$h' is not a host of the harness (expected ser-hN, hN, N or $NET.(10+N))"
  echo $((10#$i))
}

address_of() { echo "$NET.$((10 + $1))"; }

# Namespaces of ours that exist now, in order.
our_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX[0-9]+\$" | sort -V || true
}

host_exists() { [[ -e /run/netns/$PREFIX$1 ]] || ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$PREFIX$1"; }

# SIGTERM, a short grace, then SIGKILL for every process inside a namespace. A namespace that is
# deleted while processes still run in it lives on with them, so this comes first.
kill_namespace_processes() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
  [[ -z ${pids// /} ]] && return 0
  kill -TERM $pids 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
    [[ -z ${pids// /} ]] && return 0
    sleep 0.2
  done
  kill -KILL $pids 2>/dev/null || true
  sleep 0.1
}

cmd_down() {
  need_root
  local ns link
  for ns in $(our_namespaces); do
    kill_namespace_processes "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  # Deleting a namespace deletes its veth end and so the pair; these are leftovers of a half-made host.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^$VETH[0-9]+\$" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$STATE"
}

cmd_up() {
  need_root
  local k=${1:-}
  [[ $k =~ ^[0-9]+$ ]] && (( k >= 1 && k <= MAX_HOSTS )) || die "up: give the number of hosts, 1 to $MAX_HOSTS (got '${k}')"
  if [[ -n $(our_namespaces) ]] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    die "a harness cluster already exists (see 'cluster.sh status'); remove it first with 'cluster.sh down'"
  fi
  # Refuse to shadow a network the machine already uses: our routes would hijack its traffic.
  if ip -o -4 addr show | awk '{print $4}' | grep -q "^$NET\."; then
    die "the subnet $SUBNET is already in use on this machine (ip -4 addr); the harness needs it for itself"
  fi
  mkdir -p "$STATE/ranks"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local i ns
  for ((i = 1; i <= k; i++)); do
    ns=$PREFIX$i
    ip netns add "$ns"
    ip link add "$VETH$i" type veth peer name eth0 netns "$ns"
    ip link set "$VETH$i" master "$BRIDGE" up
    ip -n "$ns" addr add "$(address_of "$i")/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    echo "$(address_of "$i") slots=1" >>"$STATE/hostfile"
  done
  echo "$k" >"$STATE/size"
}

cmd_status() {
  local ns i state pids f
  if [[ -z $(our_namespaces) ]]; then echo "no harness cluster"; return 0; fi
  echo "bridge $BRIDGE $(ip -o -4 addr show dev "$BRIDGE" 2>/dev/null | awk '{print $4}')"
  for ns in $(our_namespaces); do
    i=${ns#"$PREFIX"}
    state=$(ip -o link show "$VETH$i" 2>/dev/null | grep -q 'state UP' && echo up || echo down)
    pids=$(ip netns pids "$ns" 2>/dev/null | wc -l)
    echo "$ns $(address_of "$i") link $state, $pids process(es)"
  done
  for f in "$STATE"/ranks/*; do [[ -e $f ]] && echo "rank $(cat "$f")"; done
  return 0
}

cmd_cut() {
  need_root
  local i; i=$(host_index "$1")
  host_exists "$i" || die "cut: host $PREFIX$i does not exist"
  # The root-side end: the namespace keeps its address but no packet leaves or arrives, as when a
  # cable or switch port fails (TCP peers see silence, not a reset).
  ip link set "$VETH$i" down
  say "cut the link of $PREFIX$i ($(address_of "$i"))"
}

cmd_restore() {
  need_root
  local i; i=$(host_index "$1")
  host_exists "$i" || die "restore: host $PREFIX$i does not exist"
  ip link set "$VETH$i" up
  say "restored the link of $PREFIX$i ($(address_of "$i"))"
}

cmd_kill() {
  need_root
  local i f rank host pid killed=()
  i=$(host_index "$1")
  host_exists "$i" || die "kill: host $PREFIX$i does not exist"
  for f in "$STATE"/ranks/*; do
    [[ -e $f ]] || continue
    read -r rank host pid _ <"$f"
    if [[ $host == "$PREFIX$i" ]] && kill -KILL "$pid" 2>/dev/null; then killed+=("$rank"); fi
  done
  if ((${#killed[@]} == 0)); then
    say "kill: no rank of $PREFIX$i has started yet; killing every process on the host instead"
    local pids; pids=$(ip netns pids "$PREFIX$i" | tr '\n' ' ')
    [[ -n ${pids// /} ]] && kill -KILL $pids 2>/dev/null || true
  else
    say "killed rank(s) ${killed[*]} on $PREFIX$i ($(address_of "$i"))"
  fi
}

cmd_exec() {
  need_root
  local i; i=$(host_index "${1:-}"); shift
  [[ ${1:-} == -- ]] && shift
  (($# > 0)) || die "exec: give a command after the host"
  host_exists "$i" || die "exec: host $PREFIX$i does not exist"
  exec "$HERE/rsh-agent.sh" "$PREFIX$i" "$(printf '%q ' "$@")"
}

# Started by mpirun on a host in place of the user's command: records where this rank runs (for the
# report, and for `kill`), then becomes the command (same pid).
cmd_rank_exec() {
  local rank=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}
  mkdir -p "$STATE/ranks"
  echo "$rank $(hostname) $$ $(ip -o -4 addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)" >"$STATE/ranks/$rank"
  exec "$@"
}

resolve_ser() {
  if [[ -n ${SER_BINARY:-} ]]; then echo "$SER_BINARY"; return; fi
  if command -v ser >/dev/null; then command -v ser; return; fi
  local built; built=$(cd "$HERE/../.." && pwd)/.build/release/ser
  [[ -x $built ]] || die "cannot find ser: set SER_BINARY, put ser on PATH or build it (swift build -c release)"
  echo "$built"
}

# The state of one `run`, for the cleanup trap.
MPI_PID=
TIMERS=()
CLEANED=0

cleanup() {
  ((CLEANED)) && return 0
  CLEANED=1
  local t
  for t in "${TIMERS[@]}"; do kill -TERM "$t" 2>/dev/null || true; done
  if [[ -n $MPI_PID ]] && kill -0 "$MPI_PID" 2>/dev/null; then
    # mpirun forwards SIGTERM to the ranks and tells the daemons to stop; a daemon behind a cut link
    # never answers, so it gets a few seconds and then SIGKILL.
    kill -TERM "$MPI_PID" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$MPI_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$MPI_PID" 2>/dev/null || true
  fi
  if ((KEEP)); then
    say "--keep: the cluster stays up; remove it with 'cluster.sh down'"
  else
    cmd_down
  fi
}

report_ranks() {
  local f rank host pid addr
  for f in $(ls "$STATE"/ranks 2>/dev/null | sort -n); do
    read -r rank host pid addr <"$STATE/ranks/$f"
    say "rank $rank ran on $host ($addr)"
  done
}

KEEP=0

cmd_run() {
  need_root
  local k=2 r=1 fault= fault_kind= timeout=
  while (($#)); do
    case $1 in
      --hosts) k=${2:?--hosts needs a number}; shift 2 ;;
      --per-host) r=${2:?--per-host needs a number}; shift 2 ;;
      --cut|--kill)
        [[ -z $fault ]] || die "run: give one of --cut and --kill, once"
        fault_kind=${1#--}; fault=${2:?$1 needs HOST@SECONDS}; shift 2 ;;
      --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
      --keep) KEEP=1; shift ;;
      --) shift; break ;;
      *) die "run: unknown option '$1' (usage: cluster.sh run [--hosts K] [--per-host R] [--cut|--kill HOST@SECONDS] [--timeout S] [--keep] -- CMD…)" ;;
    esac
  done
  (($# > 0)) || die "run: give the command to run after --, e.g. cluster.sh run -- ser info --check"
  [[ $k =~ ^[0-9]+$ ]] && (( k >= 1 && k <= MAX_HOSTS )) || die "run: --hosts must be 1 to $MAX_HOSTS (got '$k')"
  [[ $r =~ ^[0-9]+$ ]] && (( r >= 1 )) || die "run: --per-host must be at least 1 (got '$r')"
  [[ -z $timeout || $timeout =~ ^[0-9]+([.][0-9]+)?$ ]] || die "run: --timeout takes seconds (got '$timeout')"
  local fault_host= fault_delay=
  if [[ -n $fault ]]; then
    [[ $fault == *@* ]] || die "run: --$fault_kind takes HOST@SECONDS, e.g. ser-h2@5 (got '$fault')"
    fault_host=$(host_index "${fault%@*}")
    fault_delay=${fault##*@}
    [[ $fault_delay =~ ^[0-9]+([.][0-9]+)?$ ]] || die "run: --$fault_kind $fault: the delay must be seconds"
    ((fault_host <= k)) || die "run: --$fault_kind $fault: there are only $k hosts"
  fi
  command -v mpirun >/dev/null || die "mpirun is missing: install openmpi-bin (Cluster/install-deps.sh does)"

  local cmd=("$@")
  [[ ${cmd[0]} == ser ]] && cmd[0]=$(resolve_ser)

  # One harness cluster at a time on a machine: the names and the subnet are fixed.
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  if ! flock -n 9; then
    say "another harness run holds $LOCK; waiting for it"
    flock -w "${SER_CLUSTER_LOCK_WAIT:-1800}" 9 || die "gave up waiting for $LOCK"
  fi

  trap cleanup EXIT
  trap 'say "interrupted"; exit 130' INT
  trap 'say "terminated"; exit 143' TERM HUP

  cmd_down                                # leftovers of a run that was killed before its trap ran
  cmd_up "$k"
  local i
  : >"$STATE/hostfile"
  for ((i = 1; i <= k; i++)); do
    echo "$(address_of "$i") slots=$r" >>"$STATE/hostfile"
  done

  local btl=tcp,self
  ((r > 1)) && btl=tcp,self,vader         # ranks sharing a host use shared memory, as on a real node
  local mpi=(mpirun --allow-run-as-root
    --hostfile "$STATE/hostfile" -np $((k * r)) --map-by "ppr:$r:node" --bind-to none
    --mca plm_rsh_agent "$HERE/rsh-agent.sh" --mca plm_rsh_no_tree_spawn 1
    --mca oob_tcp_if_include "$SUBNET" --mca btl_tcp_if_include "$SUBNET" --mca btl "$btl"
    --mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3
    "$SELF" rank-exec "${cmd[@]}")
  say "hosts: $(for ((i = 1; i <= k; i++)); do printf '%s=%s ' "$PREFIX$i" "$(address_of "$i")"; done)"
  say "$(printf '%q ' "${mpi[@]}")"

  # The agent parses what Open MPI sends it with bash (sh syntax), whatever the user's shell.
  SHELL=/bin/bash OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    SER_CLUSTER_STATE="$STATE" "${mpi[@]}" &
  MPI_PID=$!
  local t0=$SECONDS
  if [[ -n $fault ]]; then
    (
      trap 'kill "$sp" 2>/dev/null; exit 0' TERM
      sleep "$fault_delay" & sp=$!; wait "$sp"
      "cmd_$fault_kind" "$fault_host"
    ) &
    TIMERS+=($!)
  fi
  if [[ -n $timeout ]]; then
    (
      trap 'kill "$sp" 2>/dev/null; exit 0' TERM
      sleep "$timeout" & sp=$!; wait "$sp"
      touch "$STATE/timed-out"
      say "the job ran past --timeout $timeout s; stopping it"
      kill -TERM "$MPI_PID" 2>/dev/null || true
      sleep 5 & sp=$!; wait "$sp"
      kill -KILL "$MPI_PID" 2>/dev/null || true
    ) &
    TIMERS+=($!)
  fi
  local status=0
  wait "$MPI_PID" || status=$?
  MPI_PID=
  report_ranks
  if [[ -e $STATE/timed-out ]]; then
    status=124
  fi
  say "mpirun ended with status $status after $((SECONDS - t0)) s"
  exit "$status"
}

case ${1:-} in
  up) shift; mkdir -p "$(dirname "$LOCK")"; exec 9>"$LOCK"; flock -w 60 9 || die "another harness run holds $LOCK"; cmd_up "$@" ;;
  down) shift; cmd_down ;;
  status) shift; cmd_status ;;
  run) shift; cmd_run "$@" ;;
  cut) shift; cmd_cut "${1:?cut needs a HOST}" ;;
  restore) shift; cmd_restore "${1:?restore needs a HOST}" ;;
  kill) shift; cmd_kill "${1:?kill needs a HOST}" ;;
  exec) shift; cmd_exec "$@" ;;
  rank-exec) shift; cmd_rank_exec "$@" ;;
  ""|-h|--help|help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (up, down, status, run, cut, restore, kill, exec; --help)" ;;
esac
