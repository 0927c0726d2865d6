import pytest

from mx_training_toolkit import config, jobfiles
from mx_training_toolkit.user_code import LEGACY_RUNNER, SCRIPT_RUNNER, UserCode, runner_bootstrap
from mx_training_toolkit.errors import ConfigError
from mx_training_toolkit.horovod import rank_env, horovod_options, horovod_slots
from mx_training_toolkit.plan import LaunchPlan, ProcessSpec, Strategy, choose, plan_hosts, plan_job, ps_env
from mx_training_toolkit.ports import Port
from mx_training_toolkit.stacks import arm_code

PY = "/usr/bin/python3"
# How the launcher starts its own runners (never ``-m``: a user module could take the package's name).
RUNNER = (PY, "-c", runner_bootstrap(SCRIPT_RUNNER))
LEGACY = (PY, "-c", runner_bootstrap(LEGACY_RUNNER))
SHOWN = (PY, "-m", SCRIPT_RUNNER, "train.py", "--epochs", "2")  # the runner as the run line shows it
CODE = "/job/code"
STATUS = "/s/worker-status"


def make_config(hosts=("algo-1",), current="algo-1", **fields):
    """A job description built in memory: the planner needs no files."""
    return config.JobConfig(paths=config.Paths("/job"), hosts=tuple(hosts), current_host=current, **fields)


def script(kind="script", target="train.py", args=("--epochs", "2")):
    return UserCode(kind, target, tuple(args), "test", False, False)


ADDRESSES = {"algo-1": "10.0.0.1", "algo-2": "10.0.0.2", "algo-3": "10.0.0.3"}


def launch(cfg, code=None, gpus=0, status_dir="/s", base=None, installed=lambda module: True):
    base = {"A": "1"} if base is None else dict(base)
    return plan_job(cfg, plan_hosts(cfg, gpus), code or script(), base, ADDRESSES, PY, status_dir, installed)


def dmlc(role, root="10.0.0.1", node="10.0.0.1", n=2, port=9000):
    return {"A": "1", "DMLC_ROLE": role, "DMLC_PS_ROOT_URI": root, "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_SERVER": str(n), "DMLC_NUM_WORKER": str(n), "DMLC_NODE_HOST": node, "PS_VERBOSE": "0"}


def stacks(name):
    """A Python process's stacks file (its environment's variable, and the spec's field)."""
    return {"MX_TRAINING_STACKS_FILE": "/s/stacks-" + name}


def ps_role(role, host, **env):
    return ProcessSpec(role, (PY, "-c", arm_code() + "import mxnet"), {**dmlc(role, **env), **stacks(role)}, CODE,
                       "[{} {}] ".format(role, host), stacks_file="/s/stacks-" + role)


def ps_worker(**env):
    return ProcessSpec("worker", RUNNER + ("train.py", "--epochs", "2"),
                       {**dmlc("worker", **env), "MX_TRAINING_STATUS_FILE": STATUS, **stacks("worker")}, CODE,
                       status_file=STATUS, stacks_file="/s/stacks-worker")


def plain_worker(env=None):
    return ProcessSpec("worker", RUNNER + ("train.py", "--epochs", "2"),
                       {"A": "1", "MX_TRAINING_STATUS_FILE": STATUS, **stacks("worker"), **(env or {})}, CODE,
                       status_file=STATUS, stacks_file="/s/stacks-worker")


CHANNEL_9001 = Port(9001, "the launchers' channel", "_ps_port + 1")
SCHEDULER_9000 = Port(9000, "the scheduler", "_ps_port")
RENDEZVOUS_9000 = Port(9000, "the rendezvous server", "_ps_port")
TWO = ("algo-1", "algo-2")
GROUPS = (config.InstanceGroup("train1", "ml.c5.xlarge", ("algo-1", "algo-2")),
          config.InstanceGroup("data", "ml.m5.large", ("algo-3",)))


def grouped(current, distribution, legacy_ps=True):
    return make_config(("algo-1", "algo-2", "algo-3"), current, parameter_server_enabled=legacy_ps, ps_port=9000,
                       instance_groups=GROUPS, distribution_instance_groups=distribution,
                       current_instance_group="data" if current == "algo-3" else "train1")


def ps_note(roles, root="algo-1", address="10.0.0.1", n=2):
    return ("parameter server: {} import MXNet (a few seconds), then wait until the scheduler on {} ({}:9000) has "
            "heard from all {} servers and {} workers".format(roles, root, address, n, n),)


def horovod_config(current, **fields):
    return make_config(TWO, current, mpi_enabled=True, mpi_processes_per_host=2, ps_port=9000,
                       network_interface_name="lo", **fields)


def rank(cfg, number, options=""):
    slot = horovod_slots(cfg.hosts, 2)[number]
    status = "{}.rank{}".format(STATUS, number)
    env = {"A": "1", **rank_env(cfg, slot, "10.0.0.1", horovod_options(options)), "MX_TRAINING_STATUS_FILE": status,
           **stacks("rank{}".format(number))}
    return ProcessSpec("worker", RUNNER + ("train.py", "--epochs", "2"), env, CODE, "[rank {}] ".format(number),
                       status, number, "/s/stacks-rank{}".format(number))


RENDEZVOUS = ProcessSpec("rendezvous", (PY, "-c", runner_bootstrap("mx_training_toolkit.rendezvous")),
                         {"A": "1", "MX_TRAINING_HOROVOD_HOSTS": "algo-1:2,algo-2:2",
                          "MX_TRAINING_HOROVOD_BIND": "10.0.0.1", "MX_TRAINING_HOROVOD_PORT": "9000",
                          **stacks("rendezvous")}, CODE, "[rendezvous] ", stacks_file="/s/stacks-rendezvous")
def unarmed(spec):
    """``spec`` for an executable: no stacks file (it cannot arm the dumper)."""
    env = {k: v for k, v in spec.env.items() if k != "MX_TRAINING_STACKS_FILE"}
    return spec._replace(env=env, stacks_file=None)


OPTIONS = "-x NCCL_DEBUG=WARN --mca btl_tcp_if_include eth0"


# One row per strategy and host: the configuration and code -> the whole LaunchPlan.
PLANS = [
    ("plain, one host", make_config(ps_port=9000), script(),
     LaunchPlan(Strategy.PLAIN, (plain_worker(),), shown=SHOWN)),
    ("plain, an executable records nothing", make_config(ps_port=9000), script("executable", "run.sh"),
     LaunchPlan(Strategy.PLAIN, (ProcessSpec("worker", ("./run.sh", "--epochs", "2"), {"A": "1"}, CODE),),
                shown=("./run.sh", "--epochs", "2"))),
    ("plain, two hosts", make_config(TWO, "algo-2", ps_port=9000), script(),
     LaunchPlan(Strategy.PLAIN, (plain_worker(),), channel_port=CHANNEL_9001, shown=SHOWN)),
    ("plain, _ps_port 65535: the channel takes the port before", make_config(TWO, ps_port=65535), script(),
     LaunchPlan(Strategy.PLAIN, (plain_worker(),), channel_port=Port(65534, "the launchers' channel",
                                                                     "_ps_port - 1"), shown=SHOWN)),
    ("parameter server, the scheduler's host", make_config(TWO, parameter_server_enabled=True, ps_port=9000), script(),
     LaunchPlan(Strategy.PARAMETER_SERVER, (ps_role("scheduler", "algo-1"), ps_role("server", "algo-1"), ps_worker()),
                (SCHEDULER_9000,), CHANNEL_9001, ps_note("scheduler, server, worker"), SHOWN,
                " (with the parameter server: scheduler, server)")),
    ("parameter server, another host", make_config(TWO, "algo-2", parameter_server_enabled=True, ps_port=9000),
     script(),
     LaunchPlan(Strategy.PARAMETER_SERVER, (ps_role("server", "algo-2", node="10.0.0.2"),
                                            ps_worker(node="10.0.0.2")),
                (), CHANNEL_9001, ps_note("server, worker"), SHOWN, " (with the parameter server: server)")),
    ("parameter server, a legacy script on two hosts", make_config(TWO, "algo-2", ps_port=9000), script("legacy"),
     LaunchPlan(Strategy.PARAMETER_SERVER, (ps_role("server", "algo-2", node="10.0.0.2"),
                                            ps_worker(node="10.0.0.2")._replace(argv=LEGACY)),
                (), CHANNEL_9001, ps_note("server, worker"), (PY, "-m", LEGACY_RUNNER),
                " (with the parameter server: server)")),
    ("parameter server, the scheduler goes where the distribution group is", grouped("algo-3", ("data",)), script(),
     LaunchPlan(Strategy.PARAMETER_SERVER, (ps_role("scheduler", "algo-3", root="10.0.0.3", node="10.0.0.3", n=1),
                                            ps_role("server", "algo-3", root="10.0.0.3", node="10.0.0.3", n=1),
                                            ps_worker(root="10.0.0.3", node="10.0.0.3", n=1)),
                (SCHEDULER_9000,), CHANNEL_9001, ps_note("scheduler, server, worker", "algo-3", "10.0.0.3", 1), SHOWN,
                " (with the parameter server: scheduler, server)")),
    ("outside the parameter server: its group is left out", grouped("algo-3", ("train1",)), script(),
     LaunchPlan(Strategy.OUTSIDE, (plain_worker(),), (), CHANNEL_9001,
                ("parameter server: algo-3 (instance group data) is not in the distribution instance groups train1: "
                 "its script runs on its own",), SHOWN)),
    ("horovod, the first host", horovod_config("algo-1"), script(),
     LaunchPlan(Strategy.HOROVOD, (RENDEZVOUS, rank(horovod_config("algo-1"), 0), rank(horovod_config("algo-1"), 1)),
                (RENDEZVOUS_9000,), CHANNEL_9001, (), SHOWN, " (Horovod: ranks 0, 1 of 4)")),
    ("horovod, another host, with mpirun options", horovod_config("algo-2", mpi_custom_options=OPTIONS), script(),
     LaunchPlan(Strategy.HOROVOD, tuple(rank(horovod_config("algo-2"), n, OPTIONS) for n in (2, 3)),
                (), CHANNEL_9001,
                ("horovod: sagemaker_mpi_custom_mpi_options: NCCL_DEBUG=INFO; set for every rank: NCCL_DEBUG; "
                 "ignored (no mpirun here): --mca btl_tcp_if_include eth0",), SHOWN, " (Horovod: ranks 2, 3 of 4)")),
    ("horovod, an executable still gets status files", horovod_config("algo-2"), script("executable", "run.sh"),
     LaunchPlan(Strategy.HOROVOD, tuple(unarmed(rank(horovod_config("algo-2"), n))._replace(
                                            argv=("./run.sh", "--epochs", "2")) for n in (2, 3)),
                (), CHANNEL_9001, (), ("./run.sh", "--epochs", "2"), " (Horovod: ranks 2, 3 of 4)")),
]


@pytest.mark.parametrize("name,cfg,code,expected", PLANS, ids=[row[0] for row in PLANS])
def test_the_launch_plan_of_each_strategy(name, cfg, code, expected):
    assert launch(cfg, code) == expected
    assert launch(cfg, code) == launch(cfg, code)  # pure: same in, same out


@pytest.mark.parametrize("enabled,legacy,hosts,expected", [
    (False, False, 1, Strategy.PLAIN), (False, False, 2, Strategy.PLAIN), (True, False, 1, Strategy.PARAMETER_SERVER),
    (False, True, 1, Strategy.PLAIN), (False, True, 2, Strategy.PARAMETER_SERVER),
    (True, True, 2, Strategy.PARAMETER_SERVER)])
def test_when_the_parameter_server_is_used(enabled, legacy, hosts, expected):
    names = tuple("algo-{}".format(i + 1) for i in range(hosts))
    assert choose(make_config(names, parameter_server_enabled=enabled), legacy) is expected


def test_horovod_wins_and_groups_left_out_run_alone():
    assert choose(make_config(TWO, mpi_enabled=True, parameter_server_enabled=True), True) is Strategy.HOROVOD
    assert [choose(grouped(h, ("train1",)), False) for h in ("algo-1", "algo-2", "algo-3")] == [
        Strategy.PARAMETER_SERVER, Strategy.PARAMETER_SERVER, Strategy.OUTSIDE]
    # A legacy script on several hosts uses the parameter server even without the switch.
    assert [choose(grouped(h, ("train1",), legacy_ps=False), True) for h in ("algo-1", "algo-3")] == [
        Strategy.PARAMETER_SERVER, Strategy.OUTSIDE]
    assert choose(grouped("algo-1", ("train1",), legacy_ps=False), False) is Strategy.PLAIN


def test_ps_port_given_as_string_or_int(tmp_path):
    for value in (8123, "8123"):
        base = tmp_path / type(value).__name__
        jobfiles.write_job(base, {"sagemaker_program": "train.py", "sagemaker_parameter_server_enabled": True,
                                "_ps_port": value}, {"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]})
        cfg = config.load(str(base), {})
        assert ps_env(cfg, ADDRESSES, "server")["DMLC_PS_ROOT_PORT"] == "8123"
        assert plan_hosts(cfg, 0).channel_port == Port(8124, "the launchers' channel", "_ps_port + 1")


@pytest.mark.parametrize("kind,target,records", [("legacy", "train.py", True), ("script", "train.py", True),
                                                 ("module", "pkg.train", True), ("executable", "run.sh", False)])
def test_a_python_worker_records_its_status_and_error_without_the_parameter_server(kind, target, records):
    """Any Python worker runs through a runner, which records the error that ended it (for line 1
    of the failure file) and arms the stack dumper; an executable can do neither."""
    worker = launch(make_config(), script(kind, target), base={}).worker
    assert worker.status_file == (STATUS if records else None)
    assert worker.stacks_file == ("/s/stacks-worker" if records else None)
    assert worker.env == ({"MX_TRAINING_STATUS_FILE": STATUS, **stacks("worker")} if records else {})
    assert (worker.argv[:2] == RUNNER[:2] or kind == "legacy") if records else worker.argv[0] == "./run.sh"


@pytest.mark.parametrize("code,record,argv", [
    (script(), False, (PY, "train.py", "--epochs", "2")),
    (script(), True, RUNNER + ("train.py", "--epochs", "2")),
    (script("module", "pkg.train"), False, (PY, "-m", "pkg.train", "--epochs", "2")),
    (script("module", "pkg.train"), True, RUNNER + ("--module", "pkg.train", "--epochs", "2")),
    (script("legacy"), True, LEGACY),
    (script("legacy"), False, LEGACY),
    (script("executable", "run.sh"), True, ("./run.sh", "--epochs", "2")),
])
def test_worker_argv(code, record, argv):
    assert code.argv(PY, record_status=record) == argv


def test_without_a_status_directory_nothing_records():
    assert launch(make_config(), status_dir=None).worker == ProcessSpec(
        "worker", (PY, "train.py", "--epochs", "2"), {"A": "1"}, CODE)


@pytest.mark.parametrize("distribution,current,roles,root,n", [
    (("train1",), "algo-1", ["scheduler", "server", "worker"], "10.0.0.1", "2"),
    (("train1",), "algo-2", ["server", "worker"], "10.0.0.1", "2"),
    (("train1",), "algo-3", ["worker"], None, None),  # its group trains on its own
    (("data",), "algo-3", ["scheduler", "server", "worker"], "10.0.0.3", "1"),  # the scheduler goes where the job is
    (("data",), "algo-1", ["worker"], None, None),
    (None, "algo-3", ["server", "worker"], "10.0.0.1", "3"),  # no groups named: every host, as before
])
def test_the_distribution_groups_form_the_parameter_server_job(distribution, current, roles, root, n):
    plan = launch(grouped(current, distribution))
    assert [s.role for s in plan.specs] == roles
    assert plan.strategy is (Strategy.OUTSIDE if root is None else Strategy.PARAMETER_SERVER)
    for spec in plan.specs:
        if root is None:
            assert spec.env == {"A": "1", "MX_TRAINING_STATUS_FILE": STATUS, **stacks("worker")}  # no kvstore variable
        else:
            assert (spec.env["DMLC_PS_ROOT_URI"], spec.env["DMLC_NUM_SERVER"], spec.env["DMLC_NUM_WORKER"]) == (
                root, n, n)


def test_horovod_needs_horovod_and_a_script_mode_script():
    with pytest.raises(ConfigError, match="^hyperparameters.json: field 'sagemaker_mpi_enabled' is true, but Horovod "
                                          "is not installed"):
        launch(horovod_config("algo-1"), installed=lambda module: module != "horovod")
    with pytest.raises(ConfigError, match="train.py is a legacy script"):
        launch(make_config(mpi_enabled=True), script("legacy"))


# ---- Horovod ----------------------------------------------------------------------------------

def test_horovod_ranks_follow_the_order_of_hosts():
    from mx_training_toolkit.horovod import Slot
    assert horovod_slots(["algo-1", "algo-2"], 2) == [
        Slot(0, 4, 0, 2, 0, 2, "algo-1"), Slot(1, 4, 1, 2, 0, 2, "algo-1"),
        Slot(2, 4, 0, 2, 1, 2, "algo-2"), Slot(3, 4, 1, 2, 1, 2, "algo-2")]


@pytest.mark.parametrize("current,roles,ranks", [
    ("algo-1", ["rendezvous", "worker", "worker"], [0, 1]),
    ("algo-2", ["worker", "worker"], [2, 3]),
])
def test_horovod_plan_per_host(current, roles, ranks):
    cfg = make_config(("algo-1", "algo-2"), current, mpi_enabled=True, mpi_processes_per_host=2, ps_port=9100,
                      network_interface_name="lo", mpi_custom_options="-x NCCL_DEBUG=INFO -x HOROVOD_RANK=7 "
                                                                       "--mca btl_tcp_if_include eth0")
    plan = launch(cfg)
    assert [s.role for s in plan.specs] == roles
    assert [w.rank for w in plan.workers] == ranks
    for worker in plan.workers:
        env = worker.env
        assert env["HOROVOD_RANK"] == str(worker.rank) and env["HOROVOD_SIZE"] == "4"
        assert env["HOROVOD_LOCAL_RANK"] == str(worker.rank % 2) and env["HOROVOD_LOCAL_SIZE"] == "2"
        assert env["HOROVOD_CROSS_RANK"] == str(worker.rank // 2) and env["HOROVOD_CROSS_SIZE"] == "2"
        assert env["HOROVOD_HOSTNAME"] == current
        assert (env["HOROVOD_GLOO_RENDEZVOUS_ADDR"], env["HOROVOD_GLOO_RENDEZVOUS_PORT"]) == ("10.0.0.1", "9100")
        assert (env["HOROVOD_CONTROLLER"], env["HOROVOD_CPU_OPERATIONS"], env["HOROVOD_GLOO_IFACE"]) == \
            ("gloo", "gloo", "lo")
        assert env["NCCL_DEBUG"] == "INFO" and env["A"] == "1"
        assert worker.prefix == "[rank {}] ".format(worker.rank)
        assert worker.status_file == env["MX_TRAINING_STATUS_FILE"] == "/s/worker-status.rank{}".format(worker.rank)
        assert worker.argv[:2] == (PY, "-c") and worker.argv[-3:] == ("train.py", "--epochs", "2")
    if current == "algo-1":
        server = plan.specs[0]
        assert (server.env["MX_TRAINING_HOROVOD_HOSTS"], server.env["MX_TRAINING_HOROVOD_BIND"],
                server.env["MX_TRAINING_HOROVOD_PORT"]) == ("algo-1:2,algo-2:2", "10.0.0.1", "9100")


@pytest.mark.parametrize("options,variables,nccl_debug,ignored", [
    ("", {}, "INFO", ()),
    ("-x NCCL_DEBUG=INFO", {"NCCL_DEBUG": "INFO"}, "INFO", ()),
    ("-x FOO", {}, "INFO", ()),  # exported from the environment the ranks inherit anyway
    ("-x HOROVOD_SIZE=9 -x 1BAD=x -x OMPI_COMM_WORLD_RANK=5", {}, "INFO",
     ("-x HOROVOD_SIZE=9", "-x 1BAD=x", "-x OMPI_COMM_WORLD_RANK=5")),  # a slot's variables are the launcher's
    ("--mca btl_tcp_if_include eth0 -x A='b c'", {"A": "b c"}, "INFO", ("--mca", "btl_tcp_if_include", "eth0")),
    ("-x 'unterminated", {}, "INFO", ("-x 'unterminated",)),
    # The reference's own option, in either form; the last one wins.
    ("--NCCL_DEBUG WARN", {}, "WARN", ()),
    ("--NCCL_DEBUG=TRACE", {}, "TRACE", ()),
    ("--NCCL_DEBUG=WARN -x B=1 --NCCL_DEBUG VERSION", {"B": "1"}, "VERSION", ()),
    ("--NCCL_DEBUG=", {}, "", ()),
    # The SDK's docstring example: -verbose only makes mpirun talk; it is accepted without a word.
    ("-verbose --NCCL_DEBUG=INFO", {}, "INFO", ()),
    ("--verbose -bind-to none", {}, "INFO", ("-bind-to", "none")),
])
def test_what_is_honoured_of_the_mpirun_options(options, variables, nccl_debug, ignored):
    from mx_training_toolkit.horovod import MpiOptions, horovod_options
    assert horovod_options(options) == MpiOptions(variables, nccl_debug, ignored)


@pytest.mark.parametrize("options", ["--NCCL_DEBUG", "-x A=1 --NCCL_DEBUG", "--NCCL_DEBUG -verbose"])
def test_nccl_debug_without_a_value_is_a_configuration_error(options):
    from mx_training_toolkit.errors import ConfigError
    from mx_training_toolkit.horovod import horovod_options
    with pytest.raises(ConfigError, match="^hyperparameters.json: field 'sagemaker_mpi_custom_mpi_options': "
                                          "--NCCL_DEBUG needs a value"):
        horovod_options(options)


@pytest.mark.parametrize("instance_type,efa", [
    ("local", {}),
    ("ml.p3.16xlarge", {}),
    ("ml.c5.xlarge", {}),
    ("ml.g4dn.12xlarge", {"FI_PROVIDER": "efa", "NCCL_PROTO": "simple"}),
    ("ml.p3dn.24xlarge", {"FI_PROVIDER": "efa", "NCCL_PROTO": "simple"}),
    ("ml.p4d.24xlarge", {"FI_PROVIDER": "efa", "NCCL_PROTO": "simple", "FI_EFA_USE_DEVICE_RDMA": "1"}),
    ("ml.p6e-gb200.36xlarge", {"FI_PROVIDER": "efa", "NCCL_PROTO": "simple", "FI_EFA_USE_DEVICE_RDMA": "1"}),
])
def test_nccl_and_efa_variables_by_instance_type(instance_type, efa):
    from mx_training_toolkit.horovod import nccl_env
    assert nccl_env("ens5", instance_type, "WARN") == {
        "NCCL_MIN_NRINGS": "4", "NCCL_SOCKET_IFNAME": "ens5", "NCCL_DEBUG": "WARN", **efa}


def test_the_instance_type_lists_are_the_references():
    from mx_training_toolkit.horovod import EFA_INSTANCE_TYPES, EFA_RDMA_INSTANCE_TYPES
    assert sorted(EFA_INSTANCE_TYPES) == sorted([
        "ml.g4dn.8xlarge", "ml.g4dn.12xlarge", "ml.g5.48xlarge", "ml.p3dn.24xlarge", "ml.p4d.24xlarge",
        "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.trn1.32xlarge", "ml.p6e-gb200.36xlarge"])
    assert sorted(EFA_RDMA_INSTANCE_TYPES) == sorted([
        "ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.trn1.32xlarge",
        "ml.p6e-gb200.36xlarge"])


def _rank_env(options, instance_type="ml.p4d.24xlarge", base=None):
    """The whole environment of rank 3 (algo-2's second) of a 2 x 2 job, inheriting ``base``."""
    cfg = make_config(("algo-1", "algo-2"), "algo-2", mpi_enabled=True, mpi_processes_per_host=2, ps_port=9100,
                      network_interface_name="ens5", current_instance_type=instance_type,
                      mpi_custom_options=options)
    return launch(cfg, base=base or {}, status_dir=None).workers[1].env


def test_a_ranks_whole_environment():
    assert _rank_env("") == {
        "HOROVOD_RANK": "3", "HOROVOD_SIZE": "4", "HOROVOD_LOCAL_RANK": "1", "HOROVOD_LOCAL_SIZE": "2",
        "HOROVOD_CROSS_RANK": "1", "HOROVOD_CROSS_SIZE": "2", "HOROVOD_HOSTNAME": "algo-2",
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": "10.0.0.1", "HOROVOD_GLOO_RENDEZVOUS_PORT": "9100",
        "HOROVOD_CONTROLLER": "gloo", "HOROVOD_CPU_OPERATIONS": "gloo", "HOROVOD_GLOO_IFACE": "ens5",
        "HOROVOD_GLOO_TIMEOUT_SECONDS": "120",
        "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
        "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
        "NCCL_MIN_NRINGS": "4", "NCCL_SOCKET_IFNAME": "ens5", "NCCL_DEBUG": "INFO",
        "FI_PROVIDER": "efa", "NCCL_PROTO": "simple", "FI_EFA_USE_DEVICE_RDMA": "1"}


def test_a_users_x_wins_for_nccl_and_fi_but_never_for_the_slot():
    env = _rank_env("-x NCCL_DEBUG=WARN -x FI_PROVIDER=tcp -x NCCL_MIN_NRINGS=8 -x OMPI_COMM_WORLD_RANK=0 "
                    "-x OMPI_COMM_WORLD_SIZE=1 -x HOROVOD_RANK=0 --NCCL_DEBUG TRACE")
    assert (env["NCCL_DEBUG"], env["FI_PROVIDER"], env["NCCL_MIN_NRINGS"]) == ("WARN", "tcp", "8")
    assert (env["OMPI_COMM_WORLD_RANK"], env["OMPI_COMM_WORLD_SIZE"], env["HOROVOD_RANK"]) == ("3", "4", "3")


def test_the_launchers_values_win_over_inherited_ones_as_mpiruns_x_does():
    env = _rank_env("--NCCL_DEBUG=WARN", "ml.c5.xlarge", base={"NCCL_DEBUG": "TRACE", "OMPI_COMM_WORLD_RANK": "9",
                                                               "FI_PROVIDER": "sockets", "KEPT": "1"})
    assert (env["NCCL_DEBUG"], env["OMPI_COMM_WORLD_RANK"], env["KEPT"]) == ("WARN", "3", "1")
    assert env["FI_PROVIDER"] == "sockets"  # not an EFA instance type: the launcher sets none, the inherited stays


@pytest.mark.parametrize("per_host,gpus,instance_type,expected", [
    (None, 0, "ml.c5.xlarge", 1),  # no GPU: one rank
    (None, 1, "ml.p3.2xlarge", 1),
    (None, 8, "ml.p4d.24xlarge", 8),  # one per GPU
    (None, 0, "ml.trn2.48xlarge", 64),  # one per Neuron core, the reference's rule
    (3, 8, "ml.p4d.24xlarge", 3),  # the hyperparameter wins
    (2, 0, "local", 2),
])
def test_ranks_per_host(per_host, gpus, instance_type, expected):
    cfg = make_config(mpi_enabled=True, mpi_processes_per_host=per_host, current_instance_type=instance_type)
    hosts = plan_hosts(cfg, gpus)
    hosts.check(cfg)
    assert (hosts.ranks_per_host, hosts.channel_port) == (expected, None)
    assert plan_hosts(cfg._replace(mpi_enabled=False), gpus).ranks_per_host is None


def test_a_plan_without_the_hyperparameter_starts_one_rank_per_gpu():
    cfg = make_config(("algo-1", "algo-2"), "algo-2", mpi_enabled=True)
    assert [w.rank for w in launch(cfg, gpus=4).workers] == [4, 5, 6, 7]
    assert [w.rank for w in launch(cfg).workers] == [1]


@pytest.mark.parametrize("hosts,current,per_host,total,gpus,first,message", [
    (("algo-1", "algo-2"), "algo-2", None, None, 4, 2,
     "Horovod: algo-2 starts 4 ranks (one per GPU: 4 GPUs), but the first host algo-1 starts 2; every host must "
     "start the same number (give every host as many GPUs, or set the hyperparameter "
     "sagemaker_mpi_num_of_processes_per_host)"),
    (("algo-1", "algo-2"), "algo-2", None, None, 0, 8,
     "Horovod: algo-2 starts 1 rank (1 without a GPU), but the first host algo-1 starts 8; "),
    (("algo-1", "algo-2"), "algo-2", 3, None, 8, 2, "Horovod: algo-2 starts 3 ranks, but the first host algo-1 "
                                                     "starts 2; "),
    (("algo-1",), "algo-1", None, 3, 2, None,
     "hyperparameters.json: field 'sagemaker_mpi_num_processes' is 3, but 1 hosts with 2 ranks each (one per GPU: "
     "2 GPUs) make 2; this launcher starts every slot"),
    (("algo-1", "algo-2"), "algo-1", 2, 3, 0, None,
     "hyperparameters.json: field 'sagemaker_mpi_num_processes' is 3, but 2 hosts with 2 ranks each make 4; "),
])
def test_a_count_that_differs_is_a_configuration_error_naming_both(hosts, current, per_host, total, gpus, first,
                                                                   message):
    cfg = make_config(hosts, current, mpi_enabled=True, mpi_processes_per_host=per_host, mpi_num_processes=total)
    with pytest.raises(ConfigError) as raised:
        plan_hosts(cfg, gpus).check(cfg, first)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("current,gpus,first,total", [
    ("algo-2", 2, 2, None), ("algo-2", 2, None, 4), ("algo-1", 2, 2, 4), ("algo-2", 0, 1, 2)])
def test_counts_that_agree_pass(current, gpus, first, total):
    cfg = make_config(("algo-1", "algo-2"), current, mpi_enabled=True, mpi_num_processes=total)
    hosts = plan_hosts(cfg, gpus)
    hosts.check(cfg, first)
    assert hosts.ranks_per_host == max(gpus, 1)
