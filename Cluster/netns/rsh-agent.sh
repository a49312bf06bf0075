#!/usr/bin/env bash
# Open MPI's "ssh" for the netns harness (mpirun --mca plm_rsh_agent …/rsh-agent.sh).
#
# mpirun calls it as ssh:  rsh-agent.sh HOST WORD…  where the words, joined by spaces, are a shell
# command line (`orted -mca ess "env" …`, sometimes preceded by PATH=…; export PATH; …). It runs that
# line on HOST, i.e. inside the host's network namespace, under a fresh UTS namespace that carries
# the host's name, so that MPI_Get_processor_name and Open MPI's own node names differ per host as
# on real machines. The environment passes through, as ssh with a shared home and SendEnv would.
#
# HOST is what the hostfile says: the address 10.77.0.(10+i) or the name ser-hI.
set -euo pipefail

net=10.77.0
prefix=ser-h

host=${1:-}
shift || true
if [[ $host == -* ]]; then
  echo "rsh-agent.sh: ssh options are not supported (got '$host'); Open MPI passes none to a custom agent" >&2
  exit 255
fi
case $host in
  "$net".*) index=$(( ${host##*.} - 10 )) ;;
  "$prefix"*) index=${host#"$prefix"} ;;
  *) index=x ;;
esac
ns=$prefix$index
if ! [[ $index =~ ^[0-9]+$ ]] || ! [[ -e /run/netns/$ns ]]; then
  echo "rsh-agent.sh: '$host' is not a host of the running harness cluster (no namespace $ns; see cluster.sh status)" >&2
  exit 255
fi
(($# > 0)) || { echo "rsh-agent.sh: no command for $host (interactive logins are not supported)" >&2; exit 255; }

# ssh hands its arguments, joined by spaces, to the remote shell; so do we.
line="$*"
if unshare --uts true 2>/dev/null; then
  exec ip netns exec "$ns" unshare --uts -- /bin/bash -c 'hostname "$1" && eval "$2"' rsh-agent "$ns" "$line"
fi
echo "rsh-agent.sh: cannot create a UTS namespace here; host names will not differ between hosts" >&2
exec ip netns exec "$ns" /bin/bash -c "$line"
