# Shared by scripts/test.sh and scripts/bench.sh: install what the tests
# need and run a throwaway ClickHouse server for them.

# as_root runs a command as root (directly, or through sudo).
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

have_clickhouse() {
	command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || command -v clickhouse >/dev/null 2>&1
}

# have_chromium: a headless-capable Chromium is on PATH.
have_chromium() {
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1
}

# ensure_packages installs Debian's clickhouse-server, kcat and chromium
# (the browser tests) when missing.
ensure_packages() {
	local missing=()
	have_clickhouse || missing+=(clickhouse-server)
	command -v kcat >/dev/null 2>&1 || command -v kafkacat >/dev/null 2>&1 || missing+=(kcat)
	have_chromium || missing+=(chromium)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]} (Debian packages)"
		export DEBIAN_FRONTEND=noninteractive
		as_root apt-get update -qq
		# The package's own service may fail to start in a container; the
		# tests run a server of their own, so that is fine.
		as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
			have_clickhouse && command -v kcat >/dev/null 2>&1 && have_chromium || { echo "could not install ${missing[*]}" >&2; exit 1; }
		}
	fi
}

# start_clickhouse starts a server on free loopback ports with its own data
# directory, exports BWTEST_CLICKHOUSE, and stops it when the script exits.
start_clickhouse() {
	CH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/breachwatch-clickhouse.XXXXXX")
	go build -o "$CH_DIR/chserver" ./internal/testenv/chserver
	trap stop_clickhouse EXIT
	BWTEST_CLICKHOUSE=$("$CH_DIR/chserver" start "$CH_DIR/server")
	export BWTEST_CLICKHOUSE
	echo "== throwaway ClickHouse on $BWTEST_CLICKHOUSE (data in $CH_DIR/server)"
}

stop_clickhouse() {
	if [ -n "${CH_DIR:-}" ]; then
		"$CH_DIR/chserver" stop "$CH_DIR/server" || true
		rm -rf "$CH_DIR"
	fi
}
