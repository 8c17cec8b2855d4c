# Shared set-up for scripts/run, scripts/test and scripts/bench (sourced, not run).
# Installs and starts what is missing on loopback: NATS with JetStream, PostgreSQL.
# Harmless when all is there.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
STATE_DIR="${GANTRY_STATE_DIR:-$ROOT/.gantry}"
mkdir -p "$STATE_DIR"

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

ensure_packages() {
  local missing=()
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_nats() {
  port_open 4222 && return 0
  say "starting nats-server with JetStream on 127.0.0.1:4222"
  mkdir -p "$STATE_DIR/nats"
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd "$STATE_DIR/nats" >"$STATE_DIR/nats.log" 2>&1 &
  wait_port 4222 || { say "nats-server did not start; see $STATE_DIR/nats.log"; exit 1; }
}

ensure_postgres() {
  if ! port_open 5432; then
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$version" ]; then say "no PostgreSQL cluster found under /etc/postgresql"; exit 1; fi
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port 5432 || { say "PostgreSQL did not start"; exit 1; }
  fi
  if ! psql -h 127.0.0.1 -U root -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian cluster knows no role "root" and wants passwords on loopback.
    say "allowing role root on loopback without a password"
    as_root su postgres -c "psql -qc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF; END \\\$\\\$;\"" >/dev/null
    local hba
    hba="$(as_root su postgres -c "psql -Atc 'SHOW hba_file'")"
    if ! as_root grep -q '^host all root 127.0.0.1/32 trust' "$hba"; then
      as_root sed -i '1i host all root 127.0.0.1/32 trust' "$hba"
      as_root su postgres -c "psql -qc 'SELECT pg_reload_conf()'" >/dev/null
    fi
  fi
}

# Local services are only started when Gantry is pointed at the local defaults.
ensure_services() {
  ensure_packages
  case "${GANTRY_NATS_URL:-nats://127.0.0.1:4222}" in
    *127.0.0.1:4222*|*localhost:4222*) ensure_nats ;;
  esac
  case "${GANTRY_DATABASE_URL:-postgres://root@127.0.0.1:5432/gantry}" in
    *127.0.0.1:5432*|*localhost:5432*) ensure_postgres ;;
  esac
}
