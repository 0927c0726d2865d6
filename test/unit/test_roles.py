import pytest

from mx_training_toolkit import roles
from mx_training_toolkit.errors import HorovodError, ParameterServerError, PipInstallError, UserScriptError
from mx_training_toolkit.outcome import Facts, JobResult, result_message, result_step, title
from mx_training_toolkit.roles import Role

# The whole table: every role, what it is to the run loop, its failure step and words, its start error.
TABLE = [
    Role("scheduler", "support", "parameter server", "the scheduler process", ParameterServerError),
    Role("server", "support", "parameter server", "the server process", ParameterServerError),
    Role("worker", "worker", "user script", "{entry}", UserScriptError),
    Role("rank", "worker", "user script", "{entry} (rank {rank})", UserScriptError),
    Role("rendezvous", "service", "horovod", "the rendezvous process", HorovodError),
    Role("pip", "helper", "pip install", "the pip process", PipInstallError),
    Role("launcher", "host", "peer host", "the launcher on the host"),
    Role("channel", "host", "host channel", "the launchers' channel"),
    Role("stall", "host", "stalled", "the job"),
]


def test_the_role_table():
    assert list(roles.TABLE.values()) == TABLE
    assert all(name == role.name for name, role in roles.TABLE.items())


def test_the_run_loops_groups_of_roles():
    assert roles.PS_ROLES == ("scheduler", "server")
    assert roles.SERVICE_ROLES == ("rendezvous",)
    assert roles.SUPPORT_ROLES == ("scheduler", "server", "rendezvous")


@pytest.mark.parametrize("name,rank,expected", [
    ("worker", None, "worker"), ("worker", 3, "rank"), ("server", None, "server"), ("rendezvous", None, "rendezvous"),
    ("launcher", None, "launcher"), ("someone-new", None, None)])
def test_role_of(name, rank, expected):
    role = roles.role_of(name, rank)
    assert (role.name if role else None) == expected


@pytest.mark.parametrize("name,status,error_type,exit_code,first_words", [
    ("scheduler", 127, ParameterServerError, 127, "Parameter server failed"),
    ("worker", 126, UserScriptError, 126, "User script failed"),
    ("rendezvous", 127, HorovodError, 127, "Horovod rendezvous failed"),
    ("pip", 127, PipInstallError, 4, "pip install failed"),  # pip's failure has its step's own status
])
def test_a_process_that_cannot_start_fails_its_roles_step(name, status, error_type, exit_code, first_words):
    error = roles.TABLE[name].cannot_start("cannot start x", status)
    assert type(error) is error_type and error.exit_code == exit_code and str(error) == "cannot start x"
    assert title(error.step) == first_words


@pytest.mark.parametrize("result,step,message", [
    (JobResult("worker", "algo-2", 1), "user script", "train.py on algo-2 exited with status 1"),
    (JobResult("worker", "algo-2", 1, rank=3), "user script", "train.py (rank 3) on algo-2 exited with status 1"),
    (JobResult("server", "algo-1", 2), "parameter server", "the server process on algo-1 exited with status 2"),
    (JobResult("rendezvous", "algo-1", 1), "horovod", "the rendezvous process on algo-1 exited with status 1"),
    (JobResult("someone-new", "algo-2", 1), "peer host", "the someone-new process on algo-2 exited with status 1"),
])
def test_a_results_step_and_words_come_from_the_table(result, step, message):
    facts = Facts("algo-1", True, "train.py")
    assert (result_step(result), result_message(result, facts)) == (step, message)
