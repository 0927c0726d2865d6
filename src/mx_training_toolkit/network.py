"""Host names -> addresses: wait (bounded, with backoff, logged) until every host resolves."""

import json
import time

from . import backoff
from .errors import ConfigError, HostResolutionError
from .log import get_logger
from .names import HOST_ADDRESSES_ENV

log = get_logger(__name__)



def parse_address_map(text):
    """The host-to-address map given by the local multi-host runner (no /etc/hosts edits)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError("{}: invalid JSON: {}".format(HOST_ADDRESSES_ENV, e)) from e
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError("{}: expected a JSON object of host names to addresses".format(HOST_ADDRESSES_ENV))
    return data


def resolve_ipv4(host):
    import socket  # only multi-host jobs resolve names

    return socket.gethostbyname(host)


def wait_for_hosts(hosts, address_map, timeout, resolve=resolve_ipv4, sleep=time.sleep, clock=time.monotonic):
    """Return ``{host: ip}`` for every host, retrying lookups with backoff until ``timeout`` seconds.

    Raises ``HostResolutionError`` naming the hosts that never resolved."""
    addresses = {}
    missing = []
    tries = backoff.attempts(timeout, first=0.1, cap=5.0, clock=clock, sleep=sleep)
    for attempt, waited in enumerate(tries, 1):
        if attempt > 1:
            log.info("hosts: waiting for %s to resolve (%.1f s so far)", ", ".join(missing), waited)
        missing = []
        for host in hosts:
            if host in addresses:
                continue
            if host in address_map:
                addresses[host] = address_map[host]
                continue
            try:
                addresses[host] = resolve(host)
            except (OSError, ValueError):  # ValueError: UnicodeError (a label too long), NUL
                missing.append(host)
        if not missing:
            if attempt > 1:
                log.info("hosts: all %d resolved after %.1f s", len(hosts), waited)
            return {h: addresses[h] for h in hosts}
    raise HostResolutionError(
        "host name(s) {} did not resolve within {:.0f} s (resourceconfig.json field 'hosts')".format(
            ", ".join(missing), timeout))
