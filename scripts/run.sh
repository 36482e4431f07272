#!/bin/sh
# make run: the whole platform on this host with its embedded defaults:
#   berth server  control plane (ECS-compatible API, CloudWatch Logs, ECR with the cluster
#                 registry on port 7444), state in /var/lib/berth/server (SQLite),
#                 https://127.0.0.1:7443 (BERTH_LISTEN=0.0.0.0:7443 to let other hosts join)
#   berth agent   this host as a node; it also serves the Docker API on /run/berth/berth.sock
# then loads a generated busybox image and prints the aws and docker commands to try.
# Ctrl-C stops both; containers keep running and the next start reattaches to them.
#
# Everything it uses can be moved (the printed commands follow), e.g. a second platform
# beside a running one, in a network namespace of its own (nsenter, not `ip netns exec`,
# which remounts /sys and hides the cgroup hierarchies the tasks' limits need):
#   ip netns add lab && ip -n lab link set lo up
#   BERTH_ROOT=/tmp/lab BERTH_EXEC_ROOT=/tmp/lab/run BERTH_LISTEN=127.0.0.1:17443 \
#   BERTH_REGISTRY=127.0.0.1:17444 BERTH_CGROUP_PARENT=lab nsenter --net=/run/netns/lab sh scripts/run.sh
# BERTH_ROOT (/var/lib/berth), BERTH_EXEC_ROOT (/run/berth: the Docker socket), BERTH_SERVER_ROOT
# ($BERTH_ROOT/server), BERTH_LISTEN, BERTH_REGISTRY (the listen host, port 7444),
# BERTH_CGROUP_PARENT (berth: the node's containers' cgroups), BERTH_BRIDGE (berth0).
set -eu
BIN=$(realpath "${1:-build/src/berth}")
HERE=$(dirname "$(realpath "$0")")
ROOT=${BERTH_ROOT:-/var/lib/berth}
EXEC_ROOT=${BERTH_EXEC_ROOT:-/run/berth}
SERVER_ROOT=${BERTH_SERVER_ROOT:-$ROOT/server}
LISTEN=${BERTH_LISTEN:-127.0.0.1:7443}
REGISTRY=${BERTH_REGISTRY:-${LISTEN%:*}:7444}
CGROUP_PARENT=${BERTH_CGROUP_PARENT:-berth}
BRIDGE=${BERTH_BRIDGE:-berth0}
SOCK="$EXEC_ROOT/berth.sock"
IMG=$(mktemp -d /tmp/berth-run-XXXXXX)
SPID= APID=
cleanup() {
	[ -z "$APID" ] || { kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null; }
	[ -z "$SPID" ] || { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
	rm -rf "$IMG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_until() { # what, command...
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "berth: $what did not come up" >&2; exit 1; }
		sleep 0.1
	done
}

"$BIN" server --root "$SERVER_ROOT" --listen "$LISTEN" --registry "$REGISTRY" >"$IMG/server.out" &
SPID=$!
wait_until "berth server" test -s "$SERVER_ROOT/join-token"
HOSTPORT=$LISTEN
case "$LISTEN" in 0.0.0.0:*) HOSTPORT="127.0.0.1:${LISTEN#*:}" ;; esac
ENDPOINT="https://$HOSTPORT"
wait_until "berth server" curl -sf --cacert "$SERVER_ROOT/pki/ca.pem" "$ENDPOINT/agent/v1/ca"

"$BIN" agent --server "$ENDPOINT" --token "$(cat "$SERVER_ROOT/join-token")" \
	--root "$ROOT" --exec-root "$EXEC_ROOT" --cgroup-parent "$CGROUP_PARENT" --bridge "$BRIDGE" &
APID=$!
wait_until "berth agent" curl -sf --unix-socket "$SOCK" http://berth/_ping

python3 "$HERE/mkimage" --docker-archive "$IMG/busybox.tar" >/dev/null
curl -sf --unix-socket "$SOCK" -X POST --data-binary @"$IMG/busybox.tar" \
	-H 'Content-Type: application/x-tar' http://berth/images/load >/dev/null

AWS="aws --region us-east-1 --endpoint-url $ENDPOINT --ca-bundle $SERVER_ROOT/pki/ca.pem"
cat <<MSG

berth is running: server $ENDPOINT (pid $SPID), this host joined as a node (agent pid $APID),
Docker API on $SOCK, busybox:latest loaded. Try the ECS API:

  export AWS_SHARED_CREDENTIALS_FILE=$SERVER_ROOT/credentials
  $AWS ecs list-container-instances
  $AWS ecs register-task-definition --family hello --network-mode awsvpc \\
      --container-definitions '[{"name":"hello","image":"busybox:latest","memory":32,"command":["sh","-c","echo hello; exec sleep 3600"]}]'
  $AWS ecs run-task --task-definition hello --count 2
  $AWS ecs list-tasks
  $AWS ecs stop-task --task TASK_ARN
  $AWS ecs create-service --service-name hello --task-definition hello --desired-count 2
  $AWS ecs wait services-stable --services hello
  $AWS ecs update-service --service hello --desired-count 3

load balancing, logs and the cluster registry (ECR), with the same credentials:

  export AWS_CA_BUNDLE=$SERVER_ROOT/pki/ca.pem AWS_ENDPOINT_URL=$ENDPOINT
  $BIN lb create web --port 8080            # then create-service --load-balancers targetGroupArn=...
  $BIN service ls && $BIN task ls
  $AWS logs describe-log-groups             # tasks with the awslogs log driver ship here
  $AWS ecr create-repository --repository-name hello
  mkdir -p /etc/docker/certs.d/$REGISTRY && cp $SERVER_ROOT/pki/ca.pem /etc/docker/certs.d/$REGISTRY/ca.crt
  $AWS ecr get-login-password | DOCKER_HOST=unix://$SOCK docker login --username AWS --password-stdin $REGISTRY
  DOCKER_HOST=unix://$SOCK docker tag busybox $REGISTRY/hello:1 && DOCKER_HOST=unix://$SOCK docker push $REGISTRY/hello:1

and the node's Docker API (the task containers are there):

  DOCKER_HOST=unix://$SOCK docker ps
  DOCKER_HOST=unix://$SOCK $BIN run --rm busybox echo hi
  DOCKER_HOST=unix://$SOCK python3 -c 'import docker; print(docker.from_env().containers.list())'

Another host joins with (start this one with BERTH_LISTEN=0.0.0.0:7443 first):

  berth agent --server https://THIS_HOST:${LISTEN#*:} --token $(cat "$SERVER_ROOT/join-token")

Ctrl-C stops the server and the agent (containers keep running).
MSG
wait "$APID"
