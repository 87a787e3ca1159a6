# shellcheck shell=bash
# Helpers shared by scripts/services/*.sh. Source it; do not run it.

# Cache for downloaded distributions, data, logs and pid files. Lives outside
# the repository on purpose (hundreds of MB, survives `git clean`).
OUTBOX_CACHE_DIR=${OUTBOX_CACHE_DIR:-${HOME:-/root}/.cache/outbox-engine}

# runuser, and some Debian admin tools, live in sbin; a minimal PATH lacks it.
case ":$PATH:" in
  *:/usr/sbin:*) ;;
  *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;;
esac

svc_log() { printf '[%s] %s\n' "${SVC_NAME:-services}" "$*" >&2; }
svc_die() { printf '[%s] ERROR: %s\n' "${SVC_NAME:-services}" "$*" >&2; exit 1; }

# Seconds since the epoch, integer.
svc_now() { date +%s; }

# True when something accepts TCP connections on 127.0.0.1:$1.
svc_port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Best-effort description of who listens on TCP port $1 (for error messages).
svc_port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /'
  fi
}

# Take an exclusive lock for the rest of the script (fd 9), so that concurrent
# `up`/`restart` calls (e.g. `make -j`) do not race each other.
svc_lock() {
  mkdir -p "$OUTBOX_CACHE_DIR"
  exec 9>"$OUTBOX_CACHE_DIR/$1.lock"
  if ! flock -w "${2:-600}" 9; then
    svc_die "could not take lock $OUTBOX_CACHE_DIR/$1.lock"
  fi
}

# apt-get install, non-interactively, running `apt-get update` first once.
svc_apt_install() {
  command -v apt-get >/dev/null 2>&1 || svc_die "apt-get not found; please install: $*"
  [ "$(id -u)" = 0 ] || svc_die "need root to apt-get install $* (or install it yourself)"
  svc_log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${SVC_APT_UPDATED:-}" ]; then
    apt-get update -qq >&2 || svc_die "apt-get update failed"
    SVC_APT_UPDATED=1
  fi
  apt-get install -y -qq "$@" >&2 </dev/null \
    || svc_die "apt-get install $* failed"
}

# Close every file descriptor above 2 in the current (sub)shell. Use it, in a
# subshell, before exec'ing anything that leaves a daemon behind (pg_ctlcluster,
# the Pulsar JVM): otherwise the daemon inherits our lock (fd 9) and whatever
# pipes the caller (make, CI) had open, and holds them for its whole life.
svc_closefds() {
  local fd
  for fd in /proc/self/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}
