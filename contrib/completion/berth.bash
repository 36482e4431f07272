# bash completion for berth                                    -*- shell-script -*-
#
# Install: cp contrib/completion/berth.bash /usr/share/bash-completion/completions/berth
# (or `source` it). Completes commands, management-group verbs, flags, and
# container / image / volume / network names from the running daemon.

_berth_names() {
	local kind=$1
	case $kind in
	containers) berth ps -a --format '{{.Names}}' 2>/dev/null ;;
	running) berth ps --format '{{.Names}}' 2>/dev/null ;;
	images) berth images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' ;;
	volumes) berth volume ls -q 2>/dev/null ;;
	networks) berth network ls --format '{{.Name}}' 2>/dev/null ;;
	esac
}

# Flags of each verb (docker's spelling).
_berth_flags() {
	case $1 in
	run | create) echo "-d --detach -i --interactive -t --tty --rm --name -e --env --env-file -w --workdir
		-u --user --entrypoint -h --hostname -l --label --init --read-only --tmpfs --cap-add --cap-drop
		--privileged --security-opt --memory --cpus --cpu-shares --cpuset-cpus --pids-limit --ulimit
		--stop-signal --stop-timeout --restart -v --volume --mount --volumes-from --network -p --publish
		--health-cmd --health-interval --health-timeout --health-retries --health-start-period --help" ;;
	start) echo "-a --attach -i --interactive --help" ;;
	stop | restart) echo "-t --time --help" ;;
	kill) echo "-s --signal --help" ;;
	rm) echo "-f --force -v --volumes --help" ;;
	ps) echo "-a --all -q --quiet --filter --format --no-trunc --help" ;;
	logs) echo "-f --follow --tail --since --until -t --timestamps --help" ;;
	exec) echo "-i --interactive -t --tty -e --env -u --user -w --workdir -d --detach --help" ;;
	inspect) echo "-f --format --type --help" ;;
	images) echo "-q --quiet --format --help" ;;
	rmi) echo "-f --force --help" ;;
	pull) echo "--platform -q --quiet --help" ;;
	push) echo "-a --all-tags -q --quiet --help" ;;
	save) echo "-o --output --help" ;;
	load) echo "-i --input -q --quiet --help" ;;
	history) echo "--no-trunc -q --quiet --format -H --human --help" ;;
	login) echo "-u --username -p --password --password-stdin --help" ;;
	import) echo "-c --change --help" ;;
	events) echo "--since --until --format --help" ;;
	info) echo "--format --help" ;;
	build) echo "-t --tag -f --file --build-arg --target --no-cache --pull -q --quiet --output --help" ;;
	daemon) echo "--config-file --root --exec-root -H --host --runtime-path -p --pidfile -b --bridge
		-l --log-level --tls --tlsverify --tlscacert --tlscert --tlskey --allow-insecure-tcp --help" ;;
	volume-create) echo "--name -d --driver --label -o --opt --help" ;;
	volume-ls) echo "-q --quiet -f --filter --format --help" ;;
	volume-inspect) echo "-f --format --help" ;;
	volume-rm) echo "-f --force --help" ;;
	*-prune) echo "-f --force --filter -a --all --volumes --help" ;;
	system-df) echo "--format -v --verbose --help" ;;
	network-create) echo "-d --driver --subnet --gateway --ip-range --internal --label -o --opt --help" ;;
	network-ls) echo "-q --quiet -f --filter --format --help" ;;
	*) echo "--help" ;;
	esac
}

# What a verb's positional arguments are.
_berth_args() {
	case $1 in
	start | logs | inspect | rm | rename | wait | port | container-inspect | container-rm | container-start | \
		container-logs | container-wait | container-port | container-rename) _berth_names containers ;;
	stop | restart | kill | pause | unpause | exec | top | container-stop | container-restart | container-kill | \
		container-pause | container-unpause | container-exec | container-top) _berth_names running ;;
	run | create | rmi | tag | push | save | history | image-rm | image-inspect | image-tag | image-push | \
		image-save | image-history | container-run | container-create) _berth_names images ;;
	volume-inspect | volume-rm) _berth_names volumes ;;
	network-inspect | network-rm | network-connect | network-disconnect) _berth_names networks ;;
	help) echo "$_berth_commands" ;;
	esac
}

_berth_commands="version help runtime registry daemon run create start stop restart kill rm ps logs inspect
	exec wait pause unpause rename top images import rmi tag info events network port build builder pull
	push save load history login logout volume system container image attach update stats cp diff export commit"

_berth_subcommands() {
	case $1 in
	container) echo "attach commit cp create diff exec export inspect kill logs ls pause port prune rename restart rm
		run start stats stop top unpause update wait" ;;
	image) echo "build history import inspect load ls prune pull push rm save tag" ;;
	volume) echo "create inspect ls prune rm" ;;
	system) echo "df events info prune" ;;
	network) echo "connect create disconnect inspect ls prune rm" ;;
	builder) echo "prune" ;;
	registry) echo "serve gc" ;;
	esac
}

_berth() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local cmd="" sub="" i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=${COMP_WORDS[i]}
			elif [[ -z $sub && -n $(_berth_subcommands "$cmd") ]]; then
				sub=${COMP_WORDS[i]}
			fi
			;;
		esac
	done
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$_berth_commands --help --version" -- "$cur"))
		return
	fi
	if [[ -n $(_berth_subcommands "$cmd") && -z $sub ]]; then
		COMPREPLY=($(compgen -W "$(_berth_subcommands "$cmd") --help" -- "$cur"))
		return
	fi
	local key=$cmd
	[[ -n $sub ]] && key=$cmd-$sub
	# group aliases: `container ls` = ps, `image ls` = images
	case $key in
	container-ls | container-list) key=ps ;;
	image-ls | image-list) key=images ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_berth_flags "$key")" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -W "$(_berth_args "$key")" -- "$cur"))
}

complete -F _berth berth
