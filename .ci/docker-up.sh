#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; safe to run any number of times.
#
#   .ci/docker-up.sh            install docker.io and debootstrap if missing, start dockerd if needed
#
# Environment:
#   DOCKER_UP_TIMEOUT   seconds to wait for the daemon (default 60)
#   DOCKER_UP_DRIVERS   storage drivers to try, in order (default "overlay2 vfs")
#   DOCKER_UP_LOG       dockerd log file (default /tmp/dockerd.log)
#
# Storage driver: on this project's build machines (ext4 root, no systemd) overlay2 works and is
# much faster than vfs, which copies every layer and every container's root file system in full.
# vfs stays as the fallback for hosts whose file system cannot carry overlay mounts.
#
# Note: /usr/local/bin/docker on these machines is a newer client without buildx that comes first
# on PATH, so "command -v docker" proves nothing: only "docker info" does. BuildKit builds use
# Debian's /usr/bin/docker (see docker/build.py).
set -euo pipefail

timeout_s="${DOCKER_UP_TIMEOUT:-60}"
drivers="${DOCKER_UP_DRIVERS:-overlay2 vfs}"
log="${DOCKER_UP_LOG:-/tmp/dockerd.log}"

say() { echo "docker-up: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
as_root() { $SUDO "$@"; }

client() {
    # Prefer Debian's client (it has BuildKit); any client will do for "info".
    if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else docker "$@"; fi
}

engine_up() { client info >/dev/null 2>&1; }

apt_updated=0
apt_install() {
    # Without --no-install-recommends docker.io pulls needrestart, which hooks every later apt run.
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

missing=()
# An engine that already answers is kept, whoever installed it; otherwise Debian's docker.io (its
# /usr/bin/docker client has BuildKit built in).
if ! engine_up && ! { command -v dockerd >/dev/null 2>&1 && [ -x /usr/bin/docker ]; }; then
    missing+=(docker.io)
fi
# docker/build.py --local makes the base image with it.
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    start=$SECONDS
    apt_install "${missing[@]}"
    say "installed in $((SECONDS - start)) s"
fi

if engine_up; then
    say "engine already up ($(client info --format '{{.Driver}}' 2>/dev/null))"
    exit 0
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    # A daemon exists but does not answer (yet): give it the usual time before deciding.
    say "dockerd is running but not answering; waiting"
    deadline=$((SECONDS + timeout_s))
    until engine_up; do
        [ "$SECONDS" -lt "$deadline" ] || die "dockerd (pid $(pgrep -x dockerd | tr '\n' ' ')) does not answer after ${timeout_s} s; see $log"
        sleep 0.5
    done
    say "engine up"
    exit 0
fi

for driver in $drivers; do
    say "starting dockerd --storage-driver=$driver (log: $log)"
    start=$SECONDS
    # setsid: the daemon must not share this script's process group (terminal signals, CI teardown).
    $SUDO setsid nohup dockerd --storage-driver="$driver" >"$log" 2>&1 </dev/null &
    pid=$!
    deadline=$((SECONDS + timeout_s))
    while ! engine_up; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "dockerd with $driver exited; last lines of $log:"
            tail -n 5 "$log" >&2 || true
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "dockerd with $driver did not answer within ${timeout_s} s; stopping it"
            as_root kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    if engine_up; then
        actual="$(client info --format '{{.Driver}}')"
        say "engine up in $((SECONDS - start)) s, storage driver $actual"
        exit 0
    fi
done

die "could not start a Docker engine (tried: $drivers); see $log"
