#!/usr/bin/env bash
# A real XRootD server on localhost serving a directory in the CMS record's layout, for testing the
# open-data path (`root://` inputs, Snakemake storage, uproot over XRootD) for real.
#
# Usage (as root, Debian/Ubuntu):
#   tests/xrootd/server.sh install   # apt-get install xrootd-server xrootd-client (Debian packages)
#   tests/xrootd/server.sh start     # write the config, start xrootd (as user xrootd), wait until it answers
#   tests/xrootd/server.sh url       # print the base URL, root://localhost:PORT/
#   tests/xrootd/server.sh status    # is it up (xrdfs stat /eos)
#   tests/xrootd/server.sh stop      # stop (by pid) the daemon that `start` started
#
# Files under $HHFM_XROOTD_STATE/export (default /tmp/hhfm-xrootd/export) are served at
# root://localhost:$HHFM_XROOTD_PORT//<path below export>; only /eos is exported, as on CERN's EOS
# (root://localhost:11094//eos/x.root is $STATE/export/eos/x.root). The daemon refuses to run as root,
# so it runs as Debian's `xrootd` user: everything it serves must be readable by that user (the export
# tree is 0755, write files with a 022 umask). It listens on all interfaces: tests only use localhost.
set -euo pipefail

STATE=${HHFM_XROOTD_STATE:-/tmp/hhfm-xrootd}
PORT=${HHFM_XROOTD_PORT:-11094}
NAME=hhfm-test
PIDFILE=$STATE/run/xrootd.pid

die() { echo "server.sh: $*" >&2; exit 1; }
ours() { local pid; pid=$(cat "$PIDFILE" 2>/dev/null || true); [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null \
    && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == xrootd ]]; }
answers() { timeout 10 xrdfs "localhost:$PORT" stat /eos >/dev/null 2>&1; }

install() {
    [[ $(id -u) == 0 ]] || die "install needs root"
    if command -v xrootd >/dev/null && command -v xrdfs >/dev/null; then
        echo "xrootd-server and xrootd-client already installed"; return
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q xrootd-server xrootd-client
}

start() {
    [[ $(id -u) == 0 ]] || die "start needs root (the daemon is started as user xrootd)"
    command -v xrootd >/dev/null || die "xrootd not installed; run: $0 install"
    if ours; then echo "xrootd already running (pid $(cat "$PIDFILE")) on port $PORT"; return; fi
    mkdir -p "$STATE/export/eos" "$STATE/run"
    chmod 0755 "$STATE" "$STATE/export" "$STATE/export/eos"
    chown xrootd:xrootd "$STATE/run"
    cat > "$STATE/xrd.cfg" <<CONF
# written by hhfm tests/xrootd/server.sh
all.export /eos
oss.localroot $STATE/export
xrd.port $PORT
xrd.network nodnr
all.adminpath $STATE/run
all.pidpath $STATE/run
CONF
    rm -f "$PIDFILE"
    # the daemon makes its home directory (<cwd>/<name>) and pid file as user xrootd: both under run/
    (cd "$STATE/run" && xrootd -b -R xrootd -c "$STATE/xrd.cfg" -n "$NAME" -l "$STATE/run/xrootd.log" -s "$PIDFILE") \
        || die "xrootd did not start; see $STATE/run/"
    for _ in $(seq 100); do answers && break; sleep 0.1; done
    answers || die "xrootd started but does not answer on localhost:$PORT; see $STATE/run/"
    echo "XRootD up: root://localhost:$PORT//eos -> $STATE/export/eos (pid $(cat "$PIDFILE"))"
}

stop() {
    if ! ours; then echo "no xrootd started by server.sh"; rm -f "$PIDFILE"; return; fi
    local pid; pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$PIDFILE"
    echo "stopped xrootd ($pid)"
}

status() { if ours && answers; then echo "up: root://localhost:$PORT//eos"; else echo "down"; return 1; fi; }

case ${1:-} in
    install) install;;
    start) start;;
    stop) stop;;
    status) status;;
    url) echo "root://localhost:$PORT/";;
    *) echo "usage: $0 install|start|stop|status|url" >&2; exit 2;;
esac
