# bench/cluster-sweep.sh - sourced by bench/cluster.sh and bench/services.sh:
# sweep() removes what a run (PREFIX, DIR; PY the helper's pid) created, in
# order, also after an abrupt end: the helper, the daemons whose pidfiles are
# in DIR (only processes whose command line names DIR), the PREFIX-*
# namespaces, mounts under DIR, PREFIX cgroups, DIR itself.
sweep() {
	# the helper cleans up in order; this catches what an abrupt end left
	if [ -n "$PY" ] && kill -0 "$PY" 2>/dev/null; then
		kill -TERM "$PY" 2>/dev/null || true
		wait "$PY" 2>/dev/null || true
	fi
	for f in "$DIR"/s*/docker.pid "$DIR"/b*/agent.pid "$DIR"/server.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null || true)
		# only a process of this run (its command line names DIR), never a reused pid
		if [ -n "$pid" ] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q "$DIR"; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
		ip netns delete "$ns" 2>/dev/null || true
	done
	grep -o "$DIR[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	for d in /sys/fs/cgroup/"$PREFIX"* /sys/fs/cgroup/*/"$PREFIX"* /sys/fs/cgroup/unified/"$PREFIX"*; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
	rm -rf "$DIR"
}
