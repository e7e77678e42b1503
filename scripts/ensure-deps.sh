#!/usr/bin/env bash
# ensure-deps.sh — make sure this host has what `capydb server` and the test
# suite need: the PostgreSQL server binaries (initdb, postgres), the client
# tools (pg_dump, pg_restore, psql) next to them, pgbouncer, go, a C
# compiler (make test runs some packages under the race detector, which needs cgo),
# Node.js with npm (the OpenAPI lint test, the dashboard build), Chromium
# (the dashboard's browser test) and pgbackrest (point-in-time recovery).
#
# Missing PostgreSQL / pgBouncer / C compiler / Node.js packages are installed with apt-get when we
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

# pgBouncer 1.21 added protocol-level prepared statements
# (max_prepared_statements); older ones break prepared statements on the
# pooled URL. When none is installed, the next Debian release's source
# package is built into TOOLS_DIR (see build_pgbouncer).
PGBOUNCER_MIN=1.21
PGBOUNCER_SUITE=trixie
# TOOLS_DIR must match localcluster.ToolsDir: a stable path the postgres
# user can traverse (pgbouncer runs as postgres when capydb runs as root).
if [[ -n ${CAPYDB_TOOLS_DIR:-} ]]; then
	TOOLS_DIR=$CAPYDB_TOOLS_DIR
elif [[ $(id -u) -eq 0 ]]; then
	TOOLS_DIR=/usr/local/lib/capydb/tools
else
	TOOLS_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/capydb/tools
fi

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

# pgbouncer_candidates prints every pgbouncer this host has, in the order
# capydb server tries them (internal/localcluster/bouncerbin.go): PATH,
# /usr/sbin/pgbouncer, then the one this script builds into TOOLS_DIR.
pgbouncer_candidates() {
	type -P -a pgbouncer 2>/dev/null || true
	printf '%s\n' /usr/sbin/pgbouncer "$TOOLS_DIR/bin/pgbouncer"
}

# version_of_pgbouncer BIN — "1.24.1" from `BIN --version`, empty on failure.
version_of_pgbouncer() {
	"$1" --version 2>/dev/null | head -n1 | sed -nE 's/^[Pp]g[Bb]ouncer ([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/p'
}

# version_ok V — V is at least PGBOUNCER_MIN.
version_ok() {
	[[ -n $1 ]] && [[ $(printf '%s\n%s\n' "$PGBOUNCER_MIN" "$1" | sort -V | head -n1) == "$PGBOUNCER_MIN" ]]
}

# find_pgbouncer sets PGBOUNCER to the first candidate >= PGBOUNCER_MIN and
# PGBOUNCER_OLD to the first older one (used only to say what is there).
find_pgbouncer() {
	PGBOUNCER=""
	PGBOUNCER_OLD=""
	local p
	while IFS= read -r p; do
		[[ -n $p && -f $p && -x $p ]] || continue
		if version_ok "$(version_of_pgbouncer "$p")"; then
			PGBOUNCER=$p
			return 0
		fi
		[[ -n $PGBOUNCER_OLD ]] || PGBOUNCER_OLD=$p
	done < <(pgbouncer_candidates)
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
	# PostGIS (an allowlisted extension, docs/database-settings.md) only when
	# the operator asks: CAPYDB_WITH_POSTGIS=1 installs postgresql-<major>-postgis-3.
	if [[ ${CAPYDB_WITH_POSTGIS:-0} == 1 && -n $PG_BINDIR ]]; then
		local pg_major
		pg_major=$("$PG_BINDIR/postgres" --version 2>/dev/null | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')
		if [[ -n $pg_major && ! -f /usr/share/postgresql/$pg_major/extension/postgis.control ]]; then
			MISSING_PKGS+=("postgresql-$pg_major-postgis-3")
			MISSING_DESC+=("PostGIS for PostgreSQL $pg_major (CAPYDB_WITH_POSTGIS=1)")
		fi
	fi
	# pgbouncer >= PGBOUNCER_MIN is not an apt package on Debian 12: main
	# builds it (build_pgbouncer) after the packages below are installed.
	find_pgbouncer
	# The driver tests (internal/drivertest) run psycopg 3; node and npm below.
	if ! /usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1; then
		MISSING_PKGS+=(python3-psycopg)
		MISSING_DESC+=("python3-psycopg (the psycopg 3 driver test)")
	fi
	# cgo needs a C compiler: the Studio guard embeds Postgres's parser
	# (pg_query_go), and make test runs the concurrent packages under -race.
	if ! find_exe gcc >/dev/null && ! find_exe cc >/dev/null; then
		MISSING_PKGS+=(gcc)
		MISSING_DESC+=("a C compiler (cgo: the Studio SQL parser and go test -race)")
	fi
	# The driver, TLS and OpenAPI lint tests run node-postgres, Redocly, Spectral,
	# openapi-ts and tsc from npm (tools/node/*, installed with npm ci; Node >= 18.17).
	if ! find_exe node >/dev/null; then
		MISSING_PKGS+=(nodejs)
		MISSING_DESC+=("node (driver, TLS and OpenAPI lint tests)")
	fi
	if ! find_exe npm >/dev/null; then
		MISSING_PKGS+=(npm)
		MISSING_DESC+=("npm (driver, TLS and OpenAPI lint tests)")
	fi
	# The index advisor's extensions (pg_qualstats, hypopg), packaged per major.
	if [[ -n $PG_BINDIR ]]; then
		local major ext
		major=$("$PG_BINDIR/postgres" --version 2>/dev/null | sed -nE 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/p' | head -n1)
		for ext in pg_qualstats hypopg; do
			if [[ -n $major && ! -f /usr/share/postgresql/$major/extension/$ext.control ]]; then
				MISSING_PKGS+=("postgresql-$major-${ext//_/-}")
				MISSING_DESC+=("the $ext extension for PostgreSQL $major")
			fi
		done
	fi
	# The type-generation tests compile their output: tsc (npm ci in
	# tools/node/typegen, node and npm above), mypy --strict with pydantic.
	if ! find_exe mypy >/dev/null; then
		MISSING_PKGS+=(mypy)
		MISSING_DESC+=("mypy (type-generation tests)")
	fi
	if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c 'import pydantic' 2>/dev/null; then
		MISSING_PKGS+=(python3-pydantic)
		MISSING_DESC+=("python3-pydantic (type-generation tests)")
	fi
	# Point-in-time recovery archives WAL and takes base backups with pgBackRest (docs/pitr.md).
	if ! find_exe ip >/dev/null; then
		MISSING_PKGS+=(iproute2)
		MISSING_DESC+=("iproute2 (ip netns: the multi-host fleet test, e2e/fleet)")
	fi
	if ! find_exe pgbackrest >/dev/null; then
		MISSING_PKGS+=(pgbackrest)
		MISSING_DESC+=("pgbackrest (WAL archiving and point-in-time recovery)")
	fi
	# The dashboard's end-to-end test drives Debian's Chromium with
	# playwright-core (executablePath /usr/bin/chromium); browsers are never downloaded.
	if [[ ! -x /usr/bin/chromium ]]; then
		MISSING_PKGS+=(chromium)
		MISSING_DESC+=("chromium (dashboard browser test)")
	fi
	if ! find_exe chromedriver >/dev/null; then
		MISSING_PKGS+=(chromium-driver)
		MISSING_DESC+=("chromium-driver (dashboard browser test)")
	fi
	# The preview-database GitHub Action's script (TestPreviewAction) uses
	# jq and curl, as GitHub's runners provide them.
	if ! find_exe jq >/dev/null; then
		MISSING_PKGS+=(jq)
		MISSING_DESC+=("jq (the GitHub Action test)")
	fi
	if ! find_exe curl >/dev/null; then
		MISSING_PKGS+=(curl)
		MISSING_DESC+=("curl (the GitHub Action test)")
	fi
	# The highly available control database test runs a real Patroni pair on
	# etcd (docs/ha-control-database.md); Patroni talks to etcd with python3-etcd.
	if ! find_exe patroni >/dev/null; then
		MISSING_PKGS+=(patroni)
		MISSING_DESC+=("patroni (HA control database test)")
	fi
	if ! find_exe etcd >/dev/null; then
		MISSING_PKGS+=(etcd-server)
		MISSING_DESC+=("etcd-server (HA control database test)")
	fi
	if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c 'import etcd' 2>/dev/null; then
		MISSING_PKGS+=(python3-etcd)
		MISSING_DESC+=("python3-etcd (Patroni's etcd client)")
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
		printf '    Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y postgresql pgbackrest iproute2 gcc nodejs npm python3-psycopg postgresql-15-pg-qualstats postgresql-15-hypopg mypy python3-pydantic chromium chromium-driver patroni etcd-server python3-etcd\n'
		printf '    macOS:          brew install postgresql@15 pgbouncer node\n'
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

# debian_mirror prints the URI of the first enabled Debian archive entry for
# this release's own suite (e.g. "bookworm", not "bookworm-security") in the
# system's apt sources, one-line or deb822. The system files are only read.
debian_mirror() {
	local etc=${ENSURE_DEPS_ETC:-/etc} codename # ENSURE_DEPS_ETC: tests only
	codename=$(. "$etc/os-release" 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")
	[[ -n $codename ]] || return 1
	{
		# one-line format: deb [opts] URI SUITE COMPONENTS...
		cat "$etc/apt/sources.list" "$etc"/apt/sources.list.d/*.list 2>/dev/null |
			sed -E 's/#.*//; s/\[[^]]*\]//' |
			awk -v s="$codename" '($1 == "deb" || $1 == "deb-src") && $3 == s { print $2 }' || true
		# deb822: a stanza per blank-line-separated block.
		local f
		for f in "$etc"/apt/sources.list.d/*.sources; do
			[[ -f $f ]] || continue
			awk -v s="$codename" '
				function flush() {
					if (uris != "" && enabled && (" " suites " ") ~ (" " s " ")) { split(uris, u, " "); print u[1] }
					uris = ""; suites = ""; enabled = 1
				}
				BEGIN { enabled = 1 }
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { flush(); next }
				tolower($1) == "uris:" { $1 = ""; uris = $0 }
				tolower($1) == "suites:" { $1 = ""; suites = $0 }
				tolower($1) == "enabled:" && tolower($2) == "no" { enabled = 0 }
				END { flush() }' "$f"
		done
	} | sed -E 's/^[ \t]+//; s:/+$::' | awk '/^https?:\/\// && !found { print; found = 1 } END { exit !found }'
}

# build_pgbouncer builds the PGBOUNCER_SUITE source package of pgbouncer
# into TOOLS_DIR/pgbouncer-<version> and points TOOLS_DIR/bin/pgbouncer at
# it. The source comes from `apt-get source` through a private apt
# configuration (own sources list, state and cache under TOOLS_DIR) that
# reuses the system's Debian mirror, so apt checks the suite's Release
# signature against debian-archive-keyring and every file's checksum. The
# system's apt configuration is never changed. Runs once per machine: later
# runs find the binary.
build_pgbouncer() {
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg mirror
	# Debian's next release's source builds on Debian; other systems (Ubuntu, …)
	# get their pgbouncer >= 1.21 from a package instead.
	if [[ $(. /etc/os-release 2>/dev/null && printf '%s' "${ID:-}") != debian ]]; then
		log "not Debian: install pgbouncer >= $PGBOUNCER_MIN from a package (e.g. https://wiki.postgresql.org/wiki/Apt)"
		return 1
	fi
	if ! mirror=$(debian_mirror) || [[ -z $mirror ]]; then
		log "no Debian mirror found in /etc/apt/sources.list{,.d} to fetch the $PGBOUNCER_SUITE pgbouncer source from"
		return 1
	fi
	log "building pgbouncer >= $PGBOUNCER_MIN from Debian $PGBOUNCER_SUITE's source package (mirror $mirror) into $TOOLS_DIR (~30 s, once)"
	local deps=() d
	for d in dpkg-dev gcc make pkgconf libevent-dev libssl-dev libc-ares-dev debian-archive-keyring gnupg; do
		dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q 'install ok installed' || deps+=("$d")
	done
	if [[ ${#deps[@]} -gt 0 ]] && ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${deps[@]}" >&2; then
		log "apt-get install ${deps[*]} failed"
		return 1
	fi
	if ! gpg --show-keys "$keyring" 2>/dev/null | grep -q "Archive Automatic Signing Key ([0-9]*/$PGBOUNCER_SUITE)"; then
		# apt would refuse the suite anyway; say why up front.
		log "$keyring has no $PGBOUNCER_SUITE archive key (upgrade debian-archive-keyring)"
		return 1
	fi
	mkdir -p "$TOOLS_DIR"
	chmod 755 "$TOOLS_DIR" "$(dirname "$TOOLS_DIR")" 2>/dev/null || true
	local apt="$TOOLS_DIR/apt"
	mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d" "$apt/preferences.d"
	printf 'deb-src [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$PGBOUNCER_SUITE" >"$apt/sources.list"
	local opts=(
		-o "Dir::Etc::SourceList=$apt/sources.list"
		-o "Dir::Etc::SourceParts=$apt/sources.list.d"
		-o "Dir::Etc::PreferencesParts=$apt/preferences.d"
		-o "Dir::State=$apt/state"
		-o "Dir::State::status=/var/lib/dpkg/status"
		-o "Dir::Cache=$apt/cache"
		-o "APT::Sandbox::User=root"
	)
	if ! apt-get -qq "${opts[@]}" update >&2; then
		log "apt-get update of the private $PGBOUNCER_SUITE deb-src list failed"
		return 1
	fi
	local work
	work=$(mktemp -d "$TOOLS_DIR/.build.XXXXXX")
	# shellcheck disable=SC2064 # expand work now
	trap "rm -rf '$work'" RETURN
	if ! (cd "$work" && apt-get -qq "${opts[@]}" source pgbouncer >"$work/source.log" 2>&1); then
		cat "$work/source.log" >&2
		log "apt-get source pgbouncer ($PGBOUNCER_SUITE) failed"
		return 1
	fi
	local src
	src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'pgbouncer-*' | head -n1)
	local debver
	debver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version 2>/dev/null || true)
	[[ -n $debver ]] || debver=$(basename "$src" | sed 's/^pgbouncer-//')
	local dest="$TOOLS_DIR/pgbouncer-${debver//[^A-Za-z0-9.+~-]/_}"
	if ! (cd "$src" && ./configure --without-systemd --without-pam --with-cares && make -j"$(nproc 2>/dev/null || echo 2)") >"$work/build.log" 2>&1; then
		log "building pgbouncer $debver failed; the end of its output:"
		tail -n 30 "$work/build.log" >&2
		return 1
	fi
	rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/bin"
	install -m 755 "$src/pgbouncer" "$dest.tmp/bin/pgbouncer"
	printf '%s\n' "$debver" >"$dest.tmp/DEBIAN_VERSION"
	rm -rf "$dest" && mv "$dest.tmp" "$dest"
	mkdir -p "$TOOLS_DIR/bin"
	ln -sfn "$dest/bin/pgbouncer" "$TOOLS_DIR/bin/pgbouncer.tmp"
	mv -T "$TOOLS_DIR/bin/pgbouncer.tmp" "$TOOLS_DIR/bin/pgbouncer"
	rm -rf "$apt/state/lists" "$apt/cache" # ~20 MB of indexes, fetched again if ever needed
	log "built $("$TOOLS_DIR/bin/pgbouncer" --version | head -n1) (Debian $debver) at $TOOLS_DIR/bin/pgbouncer"
}

# ensure_pgbouncer makes PGBOUNCER a pgbouncer >= PGBOUNCER_MIN, building
# one when the host has none. The build is serialized by a lock, so
# concurrent `make test`s build it once.
ensure_pgbouncer() {
	[[ -z $PGBOUNCER ]] || return 0
	if ! is_root || ! find_exe apt-get >/dev/null; then
		log "missing: pgbouncer >= $PGBOUNCER_MIN${PGBOUNCER_OLD:+ ($PGBOUNCER_OLD is $(version_of_pgbouncer "$PGBOUNCER_OLD"))}"
		log "install it (e.g. from the PostgreSQL apt repository https://wiki.postgresql.org/wiki/Apt,"
		log "or brew install pgbouncer), or re-run this script as root on Debian to build it into $TOOLS_DIR"
		return 1
	fi
	mkdir -p "$TOOLS_DIR"
	exec 9>"$TOOLS_DIR/.lock"
	flock 9
	find_pgbouncer # another run may have built it while we waited
	if [[ -z $PGBOUNCER ]]; then
		build_pgbouncer || { exec 9>&-; return 1; }
		find_pgbouncer
	fi
	exec 9>&-
	if [[ -z $PGBOUNCER ]]; then
		log "pgbouncer >= $PGBOUNCER_MIN is still missing after the build"
		return 1
	fi
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
				! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${pkgs[@]}" >&2; then
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

	ensure_pgbouncer || exit 1
	ensure_postgres_user

	printf 'dependencies ok: postgres %s at %s, pgbouncer %s at %s\n' \
		"$(pg_version)" "$PG_BINDIR" "$(pgbouncer_version)" "$PGBOUNCER"
}

# Sourced (by a test) it only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
