import socket

import pytest

from mx_training_toolkit.errors import ConfigError
from mx_training_toolkit.ports import Port, channel_port, check_free, free_ps_port, rendezvous_port, scheduler_port


@pytest.mark.parametrize("rule,ps_port,expected", [
    (scheduler_port, 9000, Port(9000, "the scheduler", "_ps_port")),
    (rendezvous_port, 9000, Port(9000, "the rendezvous server", "_ps_port")),
    (channel_port, 9000, Port(9001, "the launchers' channel", "_ps_port + 1")),
    (channel_port, 65534, Port(65535, "the launchers' channel", "_ps_port + 1")),
    (channel_port, 65535, Port(65534, "the launchers' channel", "_ps_port - 1")),  # the words follow the rule
    (channel_port, 1, Port(2, "the launchers' channel", "_ps_port + 1")),
])
def test_each_port_rule(rule, ps_port, expected):
    assert rule(ps_port) == expected


@pytest.mark.parametrize("port,advice", [
    (Port(9000, "the scheduler", "_ps_port"),
     "choose another with the hyperparameter _ps_port (hyperparameters.json field '_ps_port')"),
    (Port(65534, "the launchers' channel", "_ps_port - 1"),
     "the port is _ps_port - 1: choose another _ps_port (hyperparameters.json field '_ps_port')"),
])
def test_the_advice_names_the_rule(port, advice):
    assert port.advice == advice


def test_a_taken_port_is_a_configuration_error_naming_what_cannot_start():
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen(1)
        number = busy.getsockname()[1]
        with pytest.raises(ConfigError) as raised:
            check_free(rendezvous_port(number), "algo-1")
    assert str(raised.value) == (
        "port {} on algo-1 is already in use, so the rendezvous server cannot start (Address already in use); "
        "choose another with the hyperparameter _ps_port (hyperparameters.json field '_ps_port')".format(number))
    check_free(rendezvous_port(number), "algo-1")  # free again


def test_mx_trains_ps_port_has_a_free_channel_port_too():
    port = free_ps_port()
    for number in (port, channel_port(port).number):
        with socket.socket() as s:
            s.bind(("", number))
