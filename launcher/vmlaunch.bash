# bash completion for vmlaunch: options, config files, and running VM names for the verbs that take one.
_vmlaunch_names()
{
	local root=/run/vmlaunch
	[ "$(id -u)" = 0 ] || root="${XDG_RUNTIME_DIR:-/run}/vmlaunch"
	local d
	for d in "$root"/*.lock; do
		[ -e "$d" ] && basename "${d%.lock}"
	done
}

_vmlaunch()
{
	local cur prev
	cur="${COMP_WORDS[COMP_CWORD]}"
	prev="${COMP_WORDS[COMP_CWORD-1]}"
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		# after "--" everything is the guest command's
		[ "${COMP_WORDS[i]}" = "--" ] && return 0
	done
	case "$prev" in
	--status|--cleanup|--stop|--ssh|--console)
		COMPREPLY=($(compgen -W "$(_vmlaunch_names)" -- "$cur"))
		return 0
		;;
	-s|--set)
		COMPREPLY=($(compgen -W "vm.name= vm.cpus= vm.memory= vm.accel= boot.append= memory.hugepages= cpu.pin= qemu.allocator=" -- "$cur"))
		compopt -o nospace 2>/dev/null
		return 0
		;;
	--wait|--env)
		return 0
		;;
	--share)
		compopt -o nospace 2>/dev/null
		return 0
		;;
	esac
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "--dry-run --explain --set --share --env --snapshot --cleanup --wait --list --status --stop --ssh --console --json --verbose --help --version" -- "$cur"))
		return 0
	fi
	COMPREPLY=($(compgen -f -X '!*.conf' -- "$cur") $(compgen -d -- "$cur"))
	compopt -o filenames 2>/dev/null
}
complete -F _vmlaunch vmlaunch
