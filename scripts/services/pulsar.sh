#!/usr/bin/env bash
# Apache Pulsar standalone for tests and benchmarks.
#
#   scripts/services/pulsar.sh up|down|start|stop|restart|status|url|admin-url
#
# With PULSAR_URL set (and not exported by `services.sh env` itself): starts
# nothing; `up`/`status` wait (bounded) until the broker at PULSAR_ADMIN_URL
# answers its health check; start/stop/restart refuse.
#
# Otherwise: fetches the official binary distribution from Maven Central with
# Maven (checksums verified), unpacks it into the cache dir (outside the repo),
# writes the project's standalone.conf, and runs `pulsar standalone` in the
# background bound to 127.0.0.1, with its data, log and pid file in the cache.
#   up      = start if not already running and healthy (idempotent, fast no-op)
#   start   = same as up
#   stop    = SIGTERM, bounded wait, then SIGKILL; data kept
#   down    = stop
#   restart = stop + start, waits until healthy (integration tests use it)
#
# Environment:
#   PULSAR_URL, PULSAR_ADMIN_URL   use an existing broker (see above)
#   PULSAR_BROKER_PORT  (6650)     binary protocol port
#   PULSAR_HTTP_PORT    (8080)     admin/HTTP port
#   PULSAR_BOOKIE_PORT  (3181)     port of the embedded bookie (only read when
#                                  the data dir is new: the bookie cookie pins it)
#   OUTBOX_CACHE_DIR    (~/.cache/outbox-engine)
#   OUTBOX_PULSAR_WAIT_SECS (180)  bound on waiting for health
#   OUTBOX_PULSAR_STOP_SECS (30)   bound on graceful stop before SIGKILL
#   OUTBOX_PULSAR_JOURNAL_SYNC (false)  bookie journalSyncData (stock standalone: false)
#   OUTBOX_PULSAR_JOURNAL_FLUSH_EMPTY (true)  journalFlushWhenQueueEmpty (stock: false)
#   OUTBOX_PULSAR_NEW_ENTRIES_DELAY_MS (1)  managedLedgerNewEntriesCheckDelayInMillis (stock: 10)
#   OUTBOX_PULSAR_FAST_START (0)   1 = C1-only JIT: (re)starts faster on a busy
#                                  machine, runs slower; tests only, not benchmarks
#   PULSAR_MEM, PULSAR_GC          JVM options (defaults sized for 2 cores / 24 GiB)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SVC_NAME=pulsar
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PULSAR_VERSION=4.0.8
PULSAR_ARTIFACT="org.apache.pulsar:pulsar-server-distribution:$PULSAR_VERSION:tar.gz:bin"

BROKER_PORT=${PULSAR_BROKER_PORT:-6650}
HTTP_PORT=${PULSAR_HTTP_PORT:-8080}
BOOKIE_PORT=${PULSAR_BOOKIE_PORT:-3181}
# TLS service port (pulsar+ssl://), for engine/tests/pulsar_tls.rs.
TLS_PORT=${PULSAR_TLS_PORT:-6651}
WAIT_SECS=${OUTBOX_PULSAR_WAIT_SECS:-180}
STOP_SECS=${OUTBOX_PULSAR_STOP_SECS:-30}
JOURNAL_SYNC=${OUTBOX_PULSAR_JOURNAL_SYNC:-false}
FAST_START=${OUTBOX_PULSAR_FAST_START:-0}

LOCAL_URL="pulsar://127.0.0.1:$BROKER_PORT"
LOCAL_ADMIN_URL="http://127.0.0.1:$HTTP_PORT"

CACHE=$OUTBOX_CACHE_DIR
DIST=$CACHE/apache-pulsar-$PULSAR_VERSION
DATA=$CACHE/pulsar-data
CONF=$CACHE/pulsar-conf/standalone.conf
LOG=$CACHE/pulsar.log
JVM_LOG_DIR=$CACHE/pulsar-logs
PIDFILE=$CACHE/pulsar.pid
# The broker's TLS material: a CA, a broker certificate naming 127.0.0.1 and localhost
# (what the broker advertises in lookups), a client certificate of the same CA, and a
# second CA with a client certificate of its own that the broker does not trust.
TLS_DIR=${OUTBOX_PULSAR_TLS_DIR:-$CACHE/pulsar-tls}

# Token authentication (engine/tests/pulsar_auth.rs): the broker checks every token a
# client presents against secret.key (HS256) and refuses a forged one; a client that
# presents none is let in as "anonymous" (authorisation stays off), so the rest of the
# suite needs no token. relay.token is valid; forged.token is signed with another key.
AUTH_DIR=${OUTBOX_PULSAR_AUTH_DIR:-$CACHE/pulsar-auth}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# An HS256 JWT for subject $2, signed with the key in file $1.
sign_token() {
  local header payload key sig
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '{"sub":"%s"}' "$2" | b64url)
  key=$(od -An -tx1 -v "$1" | tr -d ' \n')
  sig=$(printf '%s.%s' "$header" "$payload" \
    | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | b64url)
  printf '%s.%s.%s\n' "$header" "$payload" "$sig"
}

ensure_auth() {
  mkdir -p "$AUTH_DIR"
  [ -f "$AUTH_DIR/forged.token" ] && return 0
  command -v openssl >/dev/null 2>&1 || svc_apt_install openssl
  svc_log "making the broker's token secret and test tokens in $AUTH_DIR"
  (
    cd "$AUTH_DIR"
    openssl rand 32 >secret.key
    openssl rand 32 >other.key
    sign_token secret.key outbox-relay >relay.token
    sign_token other.key outbox-relay >forged.token
    chmod 0600 secret.key other.key relay.token forged.token
  ) || svc_die "could not make the token material in $AUTH_DIR"
}

# A certificate $1.crt / $1.key (PKCS#8, which the broker's Netty wants) for CN $2 with
# subjectAltName $3, signed by the CA $4 (default: ca) in the current directory.
issue_cert() { # name cn san [ca]
  local ca=${4:-ca}
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key.tmp" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 3650 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$1.key.tmp" -out "$1.key"
  rm -f "$1.key.tmp" "$1.csr"
}

# Returns 0 when it made new material (the running broker must then restart), 1 if not.
ensure_tls() {
  mkdir -p "$TLS_DIR"
  [ -f "$TLS_DIR/stranger.key" ] && return 1
  command -v openssl >/dev/null 2>&1 || svc_apt_install openssl
  svc_log "making the broker's TLS certificates in $TLS_DIR"
  (
    set -e
    cd "$TLS_DIR"
    if [ ! -f elsewhere.key ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=outbox pulsar test CA" \
        -keyout ca.key -out ca.crt 2>/dev/null
      issue_cert server localhost "IP:127.0.0.1,DNS:localhost"
      # The same CA's certificate for another host: the tests' impostor, which hostname
      # verification must refuse (adapters/tests/tls_hostname.rs).
      issue_cert elsewhere elsewhere.example "DNS:elsewhere.example"
      # A CA that signed nothing the broker trusts: the tests' "untrusted broker".
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=some other CA" \
        -keyout other-ca.key -out other-ca.crt 2>/dev/null
    fi
    # Client certificates (engine/tests/pulsar_mtls.rs): the relay's, signed by the CA
    # the broker trusts (its CN is the role the broker gives it), and a stranger's,
    # signed by the other CA, which the broker must refuse.
    issue_cert client outbox-relay "DNS:outbox-relay"
    issue_cert stranger outbox-stranger "DNS:outbox-stranger" other-ca
  ) || svc_die "openssl could not make the TLS certificates in $TLS_DIR"
}

# ----------------------------------------------------------------- health
# The broker health endpoint produces and consumes a message on the broker's
# heartbeat topic (a real round trip through the bookie). The lookup makes sure
# public/default (where clients auto-create their topics) is served as well.
healthy() { # admin-url
  local h
  h=$(curl -sf --max-time 10 "$1/admin/v2/brokers/health" 2>/dev/null) || return 1
  [ "$h" = ok ] || return 1
  curl -sf --max-time 10 -o /dev/null \
    "$1/lookup/v2/topic/persistent/public/default/outbox-healthcheck" 2>/dev/null
}

need_curl() { command -v curl >/dev/null 2>&1 || svc_apt_install curl; }

# ----------------------------------------------------------------- external
external() {
  local admin=${PULSAR_ADMIN_URL:-http://127.0.0.1:8080}
  case "$1" in
    up|status)
      need_curl
      local secs deadline
      secs=$([ "$1" = up ] && echo "$WAIT_SECS" || echo 10)
      deadline=$(( $(svc_now) + secs ))
      until healthy "$admin"; do
        if [ "$(svc_now)" -ge "$deadline" ]; then
          printf '\n' >&2
          svc_die "Pulsar at PULSAR_ADMIN_URL=$admin did not become healthy within $secs s (PULSAR_URL=$PULSAR_URL)"
        fi
        printf '.' >&2
        sleep 1
      done
      svc_log "PULSAR_URL=$PULSAR_URL is healthy (admin $admin); nothing started"
      ;;
    down) svc_log "PULSAR_URL is set; not stopping an external broker" ;;
    start|stop|restart)
      svc_die "PULSAR_URL is set (external broker): '$1' is only possible for the broker this script runs" ;;
    url) printf '%s\n' "$PULSAR_URL" ;;
    admin-url) printf '%s\n' "$admin" ;;
  esac
}

# ----------------------------------------------------------------- install
ensure_java() {
  if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
    svc_apt_install openjdk-17-jre-headless
  fi
  local java=${JAVA_HOME:+$JAVA_HOME/bin/}java major
  major=$({ "$java" -version 2>&1 || true; } | sed -nE 's/.*version "(1\.)?([0-9]+).*/\2/p' | head -1)
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    svc_die "Pulsar $PULSAR_VERSION needs Java 17+; '$java' is version '${major:-unknown}' (install openjdk-17-jre-headless or set JAVA_HOME)"
  fi
}

ensure_dist() {
  [ -f "$DIST/.outbox-complete" ] && return 0
  command -v mvn >/dev/null 2>&1 || svc_apt_install maven
  local dl=$CACHE/download tmp
  mkdir -p "$dl"
  svc_log "fetching $PULSAR_ARTIFACT from Maven Central (~235 MiB)"
  # -C: fail on checksum mismatch (Maven's default policy only warns).
  if ! (cd "$dl" && mvn -B -q -C dependency:copy \
          -Dartifact="$PULSAR_ARTIFACT" -DoutputDirectory="$dl" </dev/null >"$dl/mvn.log" 2>&1); then
    sed 's/\x1b\[[0-9;]*m//g' "$dl/mvn.log" | tail -n 30 >&2
    svc_die "download of $PULSAR_ARTIFACT with Maven failed (network? Maven Central reachable? see output above)"
  fi
  local tarball=$dl/pulsar-server-distribution-$PULSAR_VERSION-bin.tar.gz
  [ -s "$tarball" ] || svc_die "Maven reported success but $tarball is missing"
  tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  svc_log "unpacking into $DIST"
  tar -xzf "$tarball" -C "$tmp" || { rm -rf "$tmp"; svc_die "could not unpack $tarball"; }
  [ -x "$tmp/apache-pulsar-$PULSAR_VERSION/bin/pulsar" ] \
    || { rm -rf "$tmp"; svc_die "unexpected layout in $tarball"; }
  rm -rf "$DIST"
  mv "$tmp/apache-pulsar-$PULSAR_VERSION" "$DIST"
  rm -rf "$tmp" "$dl"   # Maven keeps its own copy of the tarball in ~/.m2
  touch "$DIST/.outbox-complete"
}

# Set key=value in a Java-properties style file: replace the active line if
# there is one, else append.
set_key() { # file key value
  if grep -qE "^$2=" "$1"; then
    sed -i "s|^$2=.*|$2=$3|" "$1"
  else
    printf '%s=%s\n' "$2" "$3" >>"$1"
  fi
}

loopback_iface() {
  local d
  for d in /sys/class/net/*; do
    # ARPHRD_LOOPBACK = 772
    if [ "$(cat "$d/type" 2>/dev/null)" = 772 ]; then echo "${d##*/}"; return; fi
  done
  echo lo
}

# Writes $CONF from the distribution's stock standalone.conf plus our changes.
# Returns 0 when the file changed.
write_conf() {
  mkdir -p "$(dirname "$CONF")"
  local tmp=$CONF.tmp
  cp "$DIST/conf/standalone.conf" "$tmp"
  {
    printf '\n### Changes by outbox-engine scripts/services/pulsar.sh (regenerated on up/start)\n'
    # Deduplication stays off broker-wide: tests turn it on per namespace
    # (engine/tests/dedup.rs), so both behaviours are exercised. The stock
    # Rust producer must never reuse a producer name with dedup on (it
    # restarts its ids at 0); the engine producer is built for it.
    printf '# brokerDeduplicationEnabled=false: see scripts/services/pulsar.sh\n'
  } >>"$tmp"
  set_key "$tmp" bindAddress 127.0.0.1
  set_key "$tmp" advertisedAddress 127.0.0.1
  set_key "$tmp" brokerServicePort "$BROKER_PORT"
  # TLS beside the plain port. The broker asks clients for a certificate and checks any
  # they present against ca.crt (mutual TLS); one that presents none is still let in.
  set_key "$tmp" brokerServicePortTls "$TLS_PORT"
  set_key "$tmp" tlsCertificateFilePath "$TLS_DIR/server.crt"
  set_key "$tmp" tlsKeyFilePath "$TLS_DIR/server.key"
  set_key "$tmp" tlsTrustCertsFilePath "$TLS_DIR/ca.crt"
  # Tokens are checked when presented (see ensure_auth), and so are client certificates
  # under the "tls" method (the role is the certificate's CN); neither: "anonymous".
  set_key "$tmp" authenticationEnabled true
  set_key "$tmp" authenticationProviders org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls
  set_key "$tmp" tokenSecretKey "file://$AUTH_DIR/secret.key"
  set_key "$tmp" anonymousUserRole anonymous
  # Expired credentials are looked for every 2 s instead of 60 (pulsar_oauth2.rs: a
  # client that supports it is challenged for fresh ones; others are disconnected).
  set_key "$tmp" authenticationRefreshCheckSeconds 2
  set_key "$tmp" webServicePort "$HTTP_PORT"
  set_key "$tmp" brokerDeleteInactiveTopicsEnabled false
  set_key "$tmp" allowAutoTopicCreation true
  set_key "$tmp" allowAutoTopicCreationType non-partitioned
  set_key "$tmp" brokerDeduplicationEnabled false
  # The embedded bookie reads this same file (Pulsar 4.0 standalone with the
  # RocksDB metadata store: BKCluster). Without listeningInterface it binds
  # 0.0.0.0; without allowEphemeralPorts=true it ignores --bookkeeper-port and
  # picks a random port, which its cookie then pins for all later starts.
  set_key "$tmp" listeningInterface "$(loopback_iface)"
  set_key "$tmp" allowLoopback true
  set_key "$tmp" allowEphemeralPorts true
  # Stock standalone value is false: entries reach the journal file (so they
  # survive a killed JVM) but are not fsync'ed before the ack.
  set_key "$tmp" journalSyncData "$JOURNAL_SYNC"
  # Stock: the journal waits up to journalMaxGroupWaitMSec (1 ms here) to group
  # writes before acknowledging them, even when nothing else is queued. Writing as
  # soon as the queue is empty takes that wait off every low-rate publish; under
  # load the queue is rarely empty and grouping goes on as before.
  set_key "$tmp" journalFlushWhenQueueEmpty "${OUTBOX_PULSAR_JOURNAL_FLUSH_EMPTY:-true}"
  # The standalone has one bookie. The broker's bookie health check quarantines
  # a bookie for 30 minutes after 5 errors a minute (an oversized entry, a
  # slow disk), and with its only bookie quarantined the broker can create no
  # topic at all: every later test fails with "Not enough non-faulty bookies".
  set_key "$tmp" bookkeeperClientHealthCheckEnabled false
  # A caught-up subscription learns of new entries up to this late (stock 10 ms).
  # Pulsar's advice for the lowest end-to-end latency is 0 (apache/pulsar#10660);
  # 1 ms gave the same p50 here with a bound on re-polling (docs/benchmarks.md,
  # "2026-12-06").
  set_key "$tmp" managedLedgerNewEntriesCheckDelayInMillis "${OUTBOX_PULSAR_NEW_ENTRIES_DELAY_MS:-1}"
  # maxMessageSize: stock default (5 MiB) kept on purpose.
  if cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$CONF"
  return 0
}

# ----------------------------------------------------------------- process
read_pid() { if [ -f "$PIDFILE" ]; then tr -dc 0-9 <"$PIDFILE" 2>/dev/null || true; fi; }

# Our broker: alive (not a zombie) and started by this script with our data dir.
is_ours() { # pid
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  state=$(sed -nE 's/^[0-9]+ \(.*\) (.) .*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)
  [ "$state" != Z ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$DATA/bookkeeper"
}

running_pid() {
  local pid
  pid=$(read_pid)
  if is_ours "$pid"; then echo "$pid"; fi
}

check_ports_free() {
  local p
  for p in "$BROKER_PORT" "$TLS_PORT" "$HTTP_PORT" "$BOOKIE_PORT"; do
    if svc_port_open "$p"; then
      svc_log "127.0.0.1:$p is already in use by something that is not our Pulsar (pid file $PIDFILE):"
      svc_port_owner "$p" >&2 || true
      svc_die "port $p taken; stop that process, or set PULSAR_BROKER_PORT/PULSAR_HTTP_PORT/PULSAR_BOOKIE_PORT, or set PULSAR_URL (+PULSAR_ADMIN_URL) to use an existing broker"
    fi
  done
}

launch() {
  check_ports_free
  mkdir -p "$DATA" "$JVM_LOG_DIR"
  if [ -f "$LOG" ]; then mv -f "$LOG" "$LOG.1"; fi
  svc_log "starting Pulsar $PULSAR_VERSION standalone (log: $LOG)"
  (
    cd "$DIST"
    # Sized for a 2-core / 24 GiB machine (stock: 2g heap, 4g direct, ZGC
    # with AlwaysPreTouch, which slows every start). Caller's values win.
    export PULSAR_MEM=${PULSAR_MEM:-"-Xms1g -Xmx1g -XX:MaxDirectMemorySize=1g"}
    export PULSAR_GC=${PULSAR_GC:-"-XX:+UseG1GC -XX:MaxGCPauseMillis=10 -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:+PerfDisableSharedMem"}
    # Start-up costs ~12 s of CPU, much of it JIT. C1-only restarted in 9.5 s
    # instead of 14 s while cargo was compiling next to it (no gain when idle)
    # but runs slower: opt-in for test runs, never for benchmarks.
    if [ "$FAST_START" = 1 ]; then PULSAR_GC="$PULSAR_GC -XX:TieredStopAtLevel=1"; fi
    # One GC log file set, rotated, instead of 10 x 20 MB per pid per restart.
    export PULSAR_GC_LOG=${PULSAR_GC_LOG:-"-Xlog:gc*,safepoint:file=$JVM_LOG_DIR/pulsar_gc.log:time,uptime,tags:filecount=2,filesize=20M"}
    export PULSAR_LOG_DIR=$JVM_LOG_DIR
    export PULSAR_STANDALONE_CONF=$CONF
    # setsid: own session, so no terminal signal or process-group kill from
    # the caller (make, CI) reaches it. $! is the JVM's pid: the subshell
    # execs setsid, which execs bin/pulsar, which execs java.
    (
      svc_closefds
      exec setsid nohup bin/pulsar standalone \
        --no-functions-worker --no-stream-storage \
        --advertised-address 127.0.0.1 \
        --bookkeeper-port "$BOOKIE_PORT" \
        --bookkeeper-dir "$DATA/bookkeeper" \
        --metadata-dir "$DATA/metadata"
    ) </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
  )
}

fail_start() {
  svc_log "$1"
  # Do not leave a wedged half-started broker behind: the next `up` would
  # only wait for it again.
  if [ -n "$(running_pid)" ]; then do_stop; fi
  local errors
  errors=$(grep -E 'ERROR|Exception|Caused by' "$LOG" 2>/dev/null | tail -n 15 || true)
  if [ -n "$errors" ]; then
    svc_log "last errors in $LOG:"
    printf '%s\n' "$errors" | cut -c1-300 | sed 's/^/    /' >&2
  fi
  svc_die "$1"
}

wait_healthy() {
  local start deadline pid now last
  start=$(svc_now)
  deadline=$(( start + WAIT_SECS ))
  last=$start
  svc_log "waiting for the broker to become healthy (at most $WAIT_SECS s)"
  # Poll often (a refused connection costs nothing), print a dot per second.
  until healthy "$LOCAL_ADMIN_URL"; do
    pid=$(running_pid)
    [ -n "$pid" ] || { printf '\n' >&2; fail_start "Pulsar exited during startup; see $LOG"; }
    now=$(svc_now)
    if [ "$now" -ge "$deadline" ]; then
      printf '\n' >&2
      fail_start "Pulsar did not become healthy within $WAIT_SECS s; see $LOG"
    fi
    if [ "$now" != "$last" ]; then printf '.' >&2; last=$now; fi
    sleep 0.25
  done
  printf '\n' >&2
  svc_log "healthy after $(( $(svc_now) - start )) s: $LOCAL_URL (admin $LOCAL_ADMIN_URL, pid $(read_pid))"
}

# After an unclean stop (a reboot, SIGKILL) the metadata store can keep the
# old bookie's registration; the new bookie and that record then take the
# lock on /ledgers/available/<bookie> from each other thousands of times a
# second: 150% CPU while idle, ~4,600 log lines a second, and ledger
# creations failing with "Not enough bookies". Seen here on 2026-12-06 after a
# reboot; a clean stop and start ends it. So: watch the first seconds after
# health, and restart once if the registration flaps.
registration_flaps() {
  local before after
  before=$(grep -c 'was invalidated' "$LOG" 2>/dev/null || true)
  sleep 2
  after=$(grep -c 'was invalidated' "$LOG" 2>/dev/null || true)
  [ $(( ${after:-0} - ${before:-0} )) -gt 20 ]
}

# Launch, wait for health, and restart once if the bookie's registration flaps.
launch_settled() {
  launch
  wait_healthy
  if registration_flaps; then
    svc_log "the bookie's registration is flapping (stale record after an unclean stop); restarting once"
    do_stop
    launch
    wait_healthy
    if registration_flaps; then
      svc_log "WARNING: still flapping after a clean restart; the broker works but burns CPU (see $LOG)"
    fi
  fi
}

do_stop() {
  local pid i
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    rm -f "$PIDFILE"
    svc_log "not running"
    return 0
  fi
  svc_log "stopping pid $pid (SIGTERM, at most $STOP_SECS s; data kept)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_SECS * 5; i++)); do
    is_ours "$pid" || break
    sleep 0.2
  done
  if is_ours "$pid"; then
    svc_log "still alive after $STOP_SECS s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do is_ours "$pid" || break; sleep 0.2; done
    is_ours "$pid" && svc_die "pid $pid survived SIGKILL"
  fi
  rm -f "$PIDFILE"
  svc_log "stopped"
}

prepare() {
  ensure_java
  need_curl
  ensure_dist
  CONF_CHANGED=0
  if ensure_tls; then CONF_CHANGED=1; fi
  ensure_auth
  if write_conf; then CONF_CHANGED=1; fi
}

do_up() {
  prepare
  local changed=$CONF_CHANGED pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    if [ "$changed" = 1 ]; then
      svc_log "configuration changed; restarting"
      do_stop
    elif healthy "$LOCAL_ADMIN_URL"; then
      svc_log "already running and healthy: $LOCAL_URL (pid $pid)"
      return 0
    else
      # Probably still starting (another caller launched it): just wait.
      wait_healthy
      return 0
    fi
  fi
  launch_settled
}

do_status() {
  local pid
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    svc_log "not running (pid file $PIDFILE, log $LOG)"
    return 3
  fi
  if healthy "$LOCAL_ADMIN_URL"; then
    svc_log "running (pid $pid) and healthy: $LOCAL_URL (admin $LOCAL_ADMIN_URL, log $LOG)"
  else
    svc_log "running (pid $pid) but NOT healthy: $LOCAL_URL (admin $LOCAL_ADMIN_URL, log $LOG)"
    return 3
  fi
}

cmd=${1:-}
case "$cmd" in
  up|down|start|stop|restart|status|url|admin-url) ;;
  *) echo "usage: $0 up|down|start|stop|restart|status|url|admin-url" >&2; exit 2 ;;
esac

# services.sh env exports PULSAR_URL with OUTBOX_PULSAR_MANAGED=1 when the
# broker is ours, so tests that inherit that env can still restart it.
if [ -n "${PULSAR_URL:-}" ] && [ "${OUTBOX_PULSAR_MANAGED:-}" != 1 ]; then
  external "$cmd"
  exit 0
fi

case "$cmd" in
  up|start) svc_lock pulsar; do_up ;;
  stop|down) svc_lock pulsar; do_stop ;;
  # Everything that can be done before stopping is, to keep the gap short.
  restart) svc_lock pulsar; prepare; do_stop; launch_settled ;;
  status) do_status ;;
  url) printf '%s\n' "$LOCAL_URL" ;;
  admin-url) printf '%s\n' "$LOCAL_ADMIN_URL" ;;
esac
