import pytest

from mx_training_toolkit.errors import ConfigError, HostResolutionError
from mx_training_toolkit.network import parse_address_map, wait_for_hosts
from fakes import FakeClock


def resolver(table, appear_after=None):
    """Resolve from ``table``; a host in ``appear_after`` resolves only after that many calls."""
    calls = {}

    def resolve(host):
        calls[host] = calls.get(host, 0) + 1
        if host in (appear_after or {}) and calls[host] <= appear_after[host]:
            raise OSError("not yet")
        if host not in table:
            raise OSError("unknown host")
        return table[host]
    return resolve


def test_resolves_at_once_without_sleeping():
    fake = FakeClock()
    out = wait_for_hosts(["a", "b"], {}, 10, resolver({"a": "10.0.0.1", "b": "10.0.0.2"}), fake.sleep, fake.clock)
    assert out == {"a": "10.0.0.1", "b": "10.0.0.2"}
    assert fake.sleeps == []


def test_address_map_wins_over_dns():
    fake = FakeClock()
    out = wait_for_hosts(["a"], {"a": "127.0.0.2"}, 10, resolver({}), fake.sleep, fake.clock)
    assert out == {"a": "127.0.0.2"}


def test_backoff_until_a_late_host_resolves():
    fake = FakeClock()
    out = wait_for_hosts(["a", "b"], {}, 60, resolver({"a": "1.1.1.1", "b": "2.2.2.2"}, {"b": 4}),
                         fake.sleep, fake.clock)
    assert out["b"] == "2.2.2.2"
    assert fake.sleeps == [0.1, 0.2, 0.4, 0.8]


def test_bounded_wait_names_the_missing_host():
    fake = FakeClock()
    with pytest.raises(HostResolutionError) as info:
        wait_for_hosts(["a", "ghost"], {}, 20, resolver({"a": "1.1.1.1"}), fake.sleep, fake.clock)
    assert "ghost" in str(info.value) and "20 s" in str(info.value)
    assert fake.now == pytest.approx(20)
    assert max(fake.sleeps) == 5.0


@pytest.mark.parametrize("text,expected", [("", {}), ('{"algo-1": "127.0.0.2"}', {"algo-1": "127.0.0.2"})])
def test_parse_address_map(text, expected):
    assert parse_address_map(text) == expected


@pytest.mark.parametrize("text", ["{", "[]", '{"a": 1}'])
def test_parse_address_map_rejects(text):
    with pytest.raises(ConfigError):
        parse_address_map(text)


def test_no_wait_at_all_means_one_attempt():
    fake = FakeClock()
    with pytest.raises(HostResolutionError, match="ghost did not resolve within 0 s"):
        wait_for_hosts(["ghost"], {}, 0, resolver({}), fake.sleep, fake.clock)
    assert fake.sleeps == []


def test_slow_lookups_count_against_the_wait():
    fake = FakeClock()
    calls = []

    def slow(host):
        calls.append(fake.now)
        fake.now += 4.0  # each lookup takes 4 s (a DNS server that does not answer)
        raise OSError("timed out")

    with pytest.raises(HostResolutionError):
        wait_for_hosts(["ghost"], {}, 10, slow, fake.sleep, fake.clock)
    assert calls == pytest.approx([0.0, 4.1, 8.3])
    assert fake.sleeps == pytest.approx([0.1, 0.2])
