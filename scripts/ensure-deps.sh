#!/usr/bin/env bash
# ensure-deps.sh — make sure this host has what `capydb server` and the test
# suite need: the PostgreSQL server binaries (initdb, postgres), the client
# tools (pg_dump, pg_restore, psql) next to them, pgbouncer, go, and a C
# compiler (make test runs some packages under the race detector, which needs cgo).
#
# Missing PostgreSQL / pgBouncer / C compiler packages are installed with apt-get when we
# are root on Debian/Ubuntu; otherwise the script prints what to install and
# exits 1. When everything is present it prints a single line and exits 0, so
# it is safe to run before every `make run` / `make test`.
#
# Note: on a host with systemd, Debian's packages start their own
# postgresql/pgbouncer services on 5432/6432. That is fine: capydb falls back
# to other ports (15432/16432 upward). This script never stops them.
set -euo pipefail

PG_SERVER_TOOLS=(initdb postgres)
PG_CLIENT_TOOLS=(pg_dump pg_restore psql)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'ensure-deps: %s\n' "$*" >&2; }

# find_exe NAME — print the first regular, executable file called NAME on PATH.
find_exe() {
	local p
	while IFS= read -r p; do
		if [[ -f $p && -x $p ]]; then
			printf '%s\n' "$p"
			return 0
		fi
	done < <(type -P -a "$1" 2>/dev/null || true)
	return 1
}

# has_all DIR TOOL... — every TOOL is an executable file in DIR.
has_all() {
	local dir=$1 t
	shift
	[[ -n $dir && -d $dir ]] || return 1
	for t in "$@"; do
		[[ -f $dir/$t && -x $dir/$t ]] || return 1
	done
}

# pg_bindir_candidates prints candidate PostgreSQL bin directories, best first:
# pg_config --bindir, then /usr/lib/postgresql/<highest>/bin, then the
# directory of `initdb` on PATH.
pg_bindir_candidates() {
	local d
	if d=$(find_exe pg_config); then
		d=$("$d" --bindir 2>/dev/null || true)
		[[ -n $d ]] && printf '%s\n' "$d"
	fi
	if compgen -G '/usr/lib/postgresql/*/bin' >/dev/null; then
		# highest major version first
		printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -V -r
	fi
	if d=$(find_exe initdb); then
		d=$(dirname "$(readlink -f "$d" 2>/dev/null || printf '%s' "$d")")
		printf '%s\n' "$d"
	fi
}

# find_pg_bindir sets PG_BINDIR to the first candidate holding the server
# binaries (and, preferably, the client tools too). Empty when none.
find_pg_bindir() {
	PG_BINDIR=""
	PG_CLIENTS_OK=0
	local d first_server=""
	while IFS= read -r d; do
		[[ -n $d ]] || continue
		has_all "$d" "${PG_SERVER_TOOLS[@]}" || continue
		if has_all "$d" "${PG_CLIENT_TOOLS[@]}"; then
			PG_BINDIR=$d
			PG_CLIENTS_OK=1
			return 0
		fi
		[[ -n $first_server ]] || first_server=$d
	done < <(pg_bindir_candidates)
	PG_BINDIR=$first_server
}

find_pgbouncer() {
	PGBOUNCER=""
	if PGBOUNCER=$(find_exe pgbouncer); then
		return 0
	fi
	PGBOUNCER=""
	if [[ -f /usr/sbin/pgbouncer && -x /usr/sbin/pgbouncer ]]; then
		PGBOUNCER=/usr/sbin/pgbouncer
	fi
}

# check fills MISSING_PKGS (apt package names) and MISSING_DESC (human text).
check() {
	MISSING_PKGS=()
	MISSING_DESC=()
	find_pg_bindir
	if [[ -z $PG_BINDIR ]]; then
		MISSING_PKGS+=(postgresql)
		MISSING_DESC+=("PostgreSQL server binaries (initdb, postgres)")
	elif [[ $PG_CLIENTS_OK -ne 1 ]]; then
		MISSING_PKGS+=(postgresql)
		MISSING_DESC+=("PostgreSQL client tools (pg_dump, pg_restore, psql) in $PG_BINDIR")
	fi
	find_pgbouncer
	if [[ -z $PGBOUNCER ]]; then
		MISSING_PKGS+=(pgbouncer)
		MISSING_DESC+=("pgbouncer")
	fi
	# cgo needs a C compiler: the Studio guard embeds Postgres's parser
	# (pg_query_go), and make test runs the concurrent packages under -race.
	if ! find_exe gcc >/dev/null && ! find_exe cc >/dev/null; then
		MISSING_PKGS+=(gcc)
		MISSING_DESC+=("a C compiler (cgo: the Studio SQL parser and go test -race)")
	fi
	GO_OK=1
	find_exe "${GO:-go}" >/dev/null || GO_OK=0
}

# missing_text joins MISSING_DESC with ", ".
missing_text() {
	local out="" d
	for d in "${MISSING_DESC[@]}"; do
		out+="${out:+, }$d"
	done
	printf '%s' "$out"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

go_hint() {
	local want
	want=$(sed -nE 's/^go ([0-9.]+).*/\1/p' "$REPO_ROOT/go.mod" 2>/dev/null | head -n1)
	log "Go is not installed (or not on PATH). Install Go ${want:+$want or newer }from https://go.dev/dl/"
	log "(Debian's golang package is usually too old) and put its bin directory on PATH, e.g.:"
	printf '    curl -fsSL https://go.dev/dl/go%s.linux-amd64.tar.gz | sudo tar -C /usr/local -xz\n' "${want:-<version>}" >&2
	printf '    export PATH=/usr/local/go/bin:$PATH\n' >&2
}

install_hint() {
	{
		printf 'ensure-deps: missing: %s\n' "$(missing_text)"
		printf 'ensure-deps: install them, then re-run:\n'
		printf '    Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y postgresql pgbouncer gcc\n'
		printf '    macOS:          brew install postgresql@15 pgbouncer\n'
		printf '                    export PATH="$(brew --prefix postgresql@15)/bin:$PATH"  # keg-only formula\n'
	} >&2
}

# ensure_postgres_user: when capydb runs as root it starts postgres and
# pgbouncer as the `postgres` system user (both refuse to run as root).
ensure_postgres_user() {
	is_root || return 0
	if id -u postgres >/dev/null 2>&1; then
		return 0
	fi
	if ! find_exe useradd >/dev/null; then
		log "the 'postgres' system user is missing and useradd is not available; create it by hand"
		return 1
	fi
	log "creating the 'postgres' system user"
	local args=(--system --home /var/lib/postgresql --shell /bin/bash)
	if getent group postgres >/dev/null 2>&1; then
		args+=(--gid postgres)
	fi
	useradd "${args[@]}" postgres
}

pg_version() {
	"$PG_BINDIR/postgres" --version 2>/dev/null | head -n1 | sed -E 's/^postgres \(PostgreSQL\) //'
}

pgbouncer_version() {
	"$PGBOUNCER" --version 2>/dev/null | head -n1 | sed -E 's/^[Pp]g[Bb]ouncer //'
}

main() {
	check

	if [[ ${#MISSING_PKGS[@]} -gt 0 ]]; then
		if is_root && find_exe apt-get >/dev/null; then
			# de-duplicate while keeping order
			local pkgs=() p
			for p in "${MISSING_PKGS[@]}"; do
				[[ " ${pkgs[*]-} " == *" $p "* ]] || pkgs+=("$p")
			done
			log "installing ${pkgs[*]} with apt-get"
			if ! apt-get update -qq >&2 ||
				! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2; then
				log "apt-get install ${pkgs[*]} failed"
				exit 1
			fi
			check
			if [[ ${#MISSING_PKGS[@]} -gt 0 ]]; then
				log "still missing after apt-get install: $(missing_text)"
				exit 1
			fi
		else
			install_hint
			[[ $GO_OK -eq 1 ]] || go_hint
			exit 1
		fi
	fi

	if [[ $GO_OK -ne 1 ]]; then
		go_hint
		exit 1
	fi

	ensure_postgres_user

	printf 'dependencies ok: postgres %s at %s, pgbouncer %s\n' \
		"$(pg_version)" "$PG_BINDIR" "$(pgbouncer_version)"
}

main "$@"
