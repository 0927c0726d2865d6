"""Pure: which processes run on this host, each with its whole environment (a ``LaunchPlan``)."""

import re
from typing import Mapping, NamedTuple, Optional, Tuple

from .environment import num_neurons
from .errors import ConfigError
from .names import HOROVOD_BIND_ENV, HOROVOD_HOSTS_ENV, HOROVOD_PORT_ENV
from .runner import STATUS_FILE_ENV
from .user_code import runner_bootstrap

# The roles of a job's processes (ps-lite's own names for the first three).
SCHEDULER = "scheduler"
SERVER = "server"
WORKER = "worker"
PIP = "pip"
PS_ROLES = (SCHEDULER, SERVER)
RENDEZVOUS = "rendezvous"  # Horovod's Gloo rendezvous server, on the first host
SERVICE_ROLES = (RENDEZVOUS,)  # never exit by themselves: stopped once every worker of the job is done
SUPPORT_ROLES = PS_ROLES + SERVICE_ROLES

# ps-lite's environment (MXNet's kvstore parameter server).
DMLC_ROLE = "DMLC_ROLE"
DMLC_PS_ROOT_URI = "DMLC_PS_ROOT_URI"
DMLC_PS_ROOT_PORT = "DMLC_PS_ROOT_PORT"
DMLC_NUM_SERVER = "DMLC_NUM_SERVER"
DMLC_NUM_WORKER = "DMLC_NUM_WORKER"
DMLC_NODE_HOST = "DMLC_NODE_HOST"  # the address this node announces (else ps-lite guesses from interfaces)
PS_VERBOSE = "PS_VERBOSE"

# A Python process that imports mxnet with DMLC_ROLE=server or scheduler runs that role and
# exits once every worker has finalised.
ROLE_SNIPPET = "import mxnet"


class ProcessSpec(NamedTuple):
    """One process to run: argv (never a shell string), its whole environment and working dir."""

    role: str
    argv: Tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    prefix: str = ""  # put before each output line ("" for the user script)
    status_file: Optional[str] = None  # where the child records its real exit status (see runner.py)
    rank: Optional[int] = None  # a Horovod worker's rank


class LaunchPlan(NamedTuple):
    """The processes of this host: parameter-server roles first, the worker last."""

    specs: Tuple[ProcessSpec, ...]
    parameter_server: bool

    @property
    def worker(self):
        return self.specs[-1]

    @property
    def workers(self):
        return tuple(s for s in self.specs if s.role == WORKER)

    @property
    def roles(self):
        return tuple(s for s in self.specs if s.role != WORKER)


def ps_env(config, addresses, role):
    """ps-lite's variables for ``role`` on this host, for the job of ``config.ps_hosts`` (a server
    and a worker on each, the scheduler on the first). ``addresses`` maps host names to IP
    addresses (ps-lite needs an IP for the scheduler: a host name fails with "bind failed")."""
    n = len(config.ps_hosts)
    return {
        DMLC_ROLE: role,
        DMLC_PS_ROOT_URI: addresses[config.ps_hosts[0]],
        DMLC_PS_ROOT_PORT: str(config.ps_port),
        DMLC_NUM_SERVER: str(n),
        DMLC_NUM_WORKER: str(n),
        DMLC_NODE_HOST: addresses[config.current_host],
        PS_VERBOSE: str(config.ps_verbose),
    }


def uses_parameter_server(config, legacy):
    """Whether the job has a parameter server: enabled by the switch, and for legacy scripts
    whenever the job has more than one host."""
    return config.parameter_server_enabled or (legacy and len(config.hosts) > 1)


def joins_parameter_server(config, legacy):
    """Whether this host's processes are part of the parameter-server job. On a heterogeneous
    cluster whose sagemaker_distribution_instance_groups leaves this host's group out, the user's
    code runs on its own: no scheduler, no server, no kvstore variables."""
    return uses_parameter_server(config, legacy) and config.current_host in config.ps_hosts


def coordinator_port(config):
    """The launchers' own channel listens on the first host at _ps_port + 1."""
    return port_after(config.ps_port)


def port_after(ps_port):
    """The channel's port for a given ``_ps_port``: the next one, or the one before 65535."""
    return ps_port + 1 if ps_port < 65535 else ps_port - 1


# ---- Horovod (the platform's "mpi" distribution), started without mpirun --------------------

HOROVOD_RUNNER = "mx_training_toolkit.rendezvous"
# Every rank must reach the rendezvous within this many seconds (Horovod's default, 30 s, is too
# short when many processes import MXNet at once on a busy machine). A rank that never calls
# hvd.init() makes the others fail after it, with Gloo's "Wait timeout" in their stderr.
GLOO_TIMEOUT = 120
# Set by the launcher for each rank; mpirun options may not change them. The OMPI_COMM_WORLD_*
# variables are what mpirun gives each rank: scripts written for mpirun read them (to pick a GPU).
SLOT_VARIABLES = ("HOROVOD_RANK", "HOROVOD_SIZE", "HOROVOD_LOCAL_RANK", "HOROVOD_LOCAL_SIZE", "HOROVOD_CROSS_RANK",
                  "HOROVOD_CROSS_SIZE", "HOROVOD_HOSTNAME", "HOROVOD_GLOO_RENDEZVOUS_ADDR",
                  "HOROVOD_GLOO_RENDEZVOUS_PORT", "HOROVOD_CONTROLLER", "HOROVOD_CPU_OPERATIONS",
                  "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                  "OMPI_COMM_WORLD_LOCAL_SIZE")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# What the reference's mpirun exports to every rank (sagemaker-training 5.1.4): NCCL's, and on the
# instance types with EFA, libfabric's. A user's own -x NAME=VALUE wins over these.
NCCL_DEBUG_DEFAULT = "INFO"
NCCL_MIN_NRINGS = "4"
EFA_INSTANCE_TYPES = frozenset((
    "ml.g4dn.8xlarge", "ml.g4dn.12xlarge", "ml.g5.48xlarge", "ml.p3dn.24xlarge", "ml.p4d.24xlarge",
    "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.trn1.32xlarge", "ml.p6e-gb200.36xlarge"))
EFA_RDMA_INSTANCE_TYPES = frozenset((
    "ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.trn1.32xlarge",
    "ml.p6e-gb200.36xlarge"))
# mpirun options accepted without a word: they only make mpirun itself talk more.
QUIET_OPTIONS = ("-verbose", "--verbose")


class Slot(NamedTuple):
    """One Horovod rank's place in the job."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    cross_rank: int  # the index of its host
    cross_size: int  # the number of hosts
    host: str


class MpiOptions(NamedTuple):
    """What this launcher makes of ``sagemaker_mpi_custom_mpi_options`` (see ``horovod_options``)."""

    variables: Mapping[str, str]  # -x NAME=VALUE, for every rank
    nccl_debug: str = NCCL_DEBUG_DEFAULT  # --NCCL_DEBUG X or --NCCL_DEBUG=X
    ignored: Tuple[str, ...] = ()  # mpirun's own options, logged


def ranks_per_host(config, num_gpus):
    """How many Horovod ranks this host starts, by the reference's rule:
    ``sagemaker_mpi_num_of_processes_per_host`` when given, else one per GPU of this host, else one
    per AWS Neuron core (``environment.num_neurons``), else 1."""
    return _rank_rule(config, num_gpus)[0]


def _rank_rule(config, num_gpus):
    """-> (this host's ranks per host, why, in words: "" when the hyperparameters say)."""
    if config.mpi_processes_per_host:
        return config.mpi_processes_per_host, ""
    if num_gpus:
        return num_gpus, " (one per GPU: {} GPU{})".format(num_gpus, "" if num_gpus == 1 else "s")
    neurons = num_neurons(config.current_instance_type)
    if neurons:
        return neurons, " (one per Neuron core of an {})".format(config.current_instance_type)
    return 1, " (1 without a GPU)"


def check_ranks(config, num_gpus, first_count=None):
    """-> this host's ranks per host, once they make a job. Raises ``ConfigError`` when they
    differ from the first host's, ``first_count`` (None: not known; Horovod's ranks are laid out
    as the same count on every host, as mpirun's are), or when ``sagemaker_mpi_num_processes``
    is given and is not that many ranks on every host (this launcher starts every slot)."""
    count, why = _rank_rule(config, num_gpus)
    if first_count is not None and first_count != count and not config.is_first_host:
        raise ConfigError("Horovod: {} starts {} rank{}{}, but the first host {} starts {}; every host must start "
                          "the same number (give every host as many GPUs, or set the hyperparameter "
                          "sagemaker_mpi_num_of_processes_per_host)".format(
                              config.current_host, count, "" if count == 1 else "s", why, config.hosts[0],
                              first_count))
    total = config.mpi_num_processes
    if total is not None and total != len(config.hosts) * count:
        raise ConfigError("hyperparameters.json: field 'sagemaker_mpi_num_processes' is {}, but {} hosts with {} "
                          "ranks each{} make {}; this launcher starts every slot".format(
                              total, len(config.hosts), count, why, len(config.hosts) * count))
    return count


def horovod_slots(hosts, per_host):
    """Every rank of the job, in the order of ``hosts``: ranks 0..N-1 on hosts[0], and so on."""
    return [Slot(i * per_host + local, len(hosts) * per_host, local, per_host, i, len(hosts), host)
            for i, host in enumerate(hosts) for local in range(per_host)]


def horovod_env(slot, rendezvous_address, port, interface, timeout=GLOO_TIMEOUT):
    """The variables with which a plain process is one rank of a Horovod job (Gloo, no mpirun),
    and the rank's place as mpirun would give it."""
    return {
        "HOROVOD_RANK": str(slot.rank), "HOROVOD_SIZE": str(slot.size),
        "HOROVOD_LOCAL_RANK": str(slot.local_rank), "HOROVOD_LOCAL_SIZE": str(slot.local_size),
        "HOROVOD_CROSS_RANK": str(slot.cross_rank), "HOROVOD_CROSS_SIZE": str(slot.cross_size),
        "HOROVOD_HOSTNAME": slot.host,  # must match the host names the rendezvous server was given
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": rendezvous_address, "HOROVOD_GLOO_RENDEZVOUS_PORT": str(port),
        "HOROVOD_CONTROLLER": "gloo", "HOROVOD_CPU_OPERATIONS": "gloo",  # never a silent size-1 MPI world
        "HOROVOD_GLOO_IFACE": interface, "HOROVOD_GLOO_TIMEOUT_SECONDS": str(timeout),
        "OMPI_COMM_WORLD_RANK": str(slot.rank), "OMPI_COMM_WORLD_SIZE": str(slot.size),
        "OMPI_COMM_WORLD_LOCAL_RANK": str(slot.local_rank), "OMPI_COMM_WORLD_LOCAL_SIZE": str(slot.local_size),
    }


def nccl_env(interface, instance_type, nccl_debug=NCCL_DEBUG_DEFAULT):
    """NCCL's and libfabric's variables as the reference's mpirun exports them to every rank."""
    env = {"NCCL_MIN_NRINGS": NCCL_MIN_NRINGS, "NCCL_SOCKET_IFNAME": interface, "NCCL_DEBUG": nccl_debug}
    if instance_type in EFA_INSTANCE_TYPES:
        env.update(FI_PROVIDER="efa", NCCL_PROTO="simple")
    if instance_type in EFA_RDMA_INSTANCE_TYPES:
        env["FI_EFA_USE_DEVICE_RDMA"] = "1"
    return env


def horovod_options(custom):
    """What this launcher makes of ``sagemaker_mpi_custom_mpi_options`` -> ``MpiOptions``.

    ``--NCCL_DEBUG X`` or ``--NCCL_DEBUG=X`` (the reference's own option, the last one wins) gives
    NCCL_DEBUG. ``-x NAME=VALUE`` (mpirun's "export this variable") is set for every rank, unless
    it is one the launcher sets for the rank's slot; a bare ``-x NAME`` exports what the ranks
    inherit anyway. ``-verbose`` only makes mpirun talk. Everything else is mpirun's own business
    and is returned as ignored (the launcher logs it). Raises ``ConfigError`` for a
    ``--NCCL_DEBUG`` without a value (the reference's parser stops the job there too)."""
    import shlex

    try:
        words = shlex.split(custom)
    except ValueError:
        return MpiOptions({}, NCCL_DEBUG_DEFAULT, (custom,) if custom.strip() else ())
    variables, ignored, nccl_debug = {}, [], NCCL_DEBUG_DEFAULT
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-x" and i + 1 < len(words):
            name, sep, value = words[i + 1].partition("=")
            if _ENV_NAME.match(name) and name not in SLOT_VARIABLES:
                if sep:
                    variables[name] = value
            else:
                ignored.append("-x " + words[i + 1])
            i += 2
            continue
        if word.startswith("--NCCL_DEBUG="):
            nccl_debug = word[len("--NCCL_DEBUG="):]
        elif word == "--NCCL_DEBUG":
            if i + 1 == len(words) or words[i + 1].startswith("-"):
                raise ConfigError("hyperparameters.json: field 'sagemaker_mpi_custom_mpi_options': --NCCL_DEBUG "
                                  "needs a value (--NCCL_DEBUG WARN or --NCCL_DEBUG=WARN), got {!r}".format(custom))
            nccl_debug = words[i + 1]
            i += 1
        elif word not in QUIET_OPTIONS:
            ignored.append(word)
        i += 1
    return MpiOptions(variables, nccl_debug, tuple(ignored))


def rank_env(config, slot, rendezvous_address, options):
    """Every variable the launcher sets for one rank, over the environment it inherits: the
    rank's slot (never changed by ``options``), NCCL's and libfabric's (a user's -x wins)."""
    env = nccl_env(config.network_interface_name, config.current_instance_type, options.nccl_debug)
    env.update(horovod_env(slot, rendezvous_address, config.ps_port, config.network_interface_name))
    env.update(options.variables)  # e.g. -x HOROVOD_GLOO_TIMEOUT_SECONDS=300; never a slot's own variables
    return env


def _horovod_specs(config, base_env, user_code, addresses, python, status_file, num_gpus):
    if user_code.legacy:
        raise ConfigError("hyperparameters.json: field 'sagemaker_mpi_enabled' is true, but {} is a legacy script "
                          "(train()/save()); Horovod runs script-mode scripts only".format(config.user_entry_point))
    cwd = config.paths.code_dir
    first = config.hosts[0]
    per_host = check_ranks(config, num_gpus)
    options = horovod_options(config.mpi_custom_options)
    specs = []
    if config.current_host == first:
        env = dict(base_env)
        env.update({HOROVOD_HOSTS_ENV: ",".join("{}:{}".format(h, per_host) for h in config.hosts),
                    HOROVOD_BIND_ENV: addresses[first], HOROVOD_PORT_ENV: str(config.ps_port)})
        specs.append(ProcessSpec(RENDEZVOUS, (python, "-c", runner_bootstrap(HOROVOD_RUNNER)), env, cwd,
                                 "[rendezvous] "))
    for slot in horovod_slots(config.hosts, per_host):
        if slot.host != config.current_host:
            continue
        env = dict(base_env)
        env.update(rank_env(config, slot, addresses[first], options))
        rank_status = "{}.rank{}".format(status_file, slot.rank) if status_file else None
        if rank_status:
            env[STATUS_FILE_ENV] = rank_status
        specs.append(ProcessSpec(WORKER, user_code.argv(python, record_status=True), env, cwd,
                                 "[rank {}] ".format(slot.rank), rank_status, slot.rank))
    return LaunchPlan(tuple(specs), False)


def plan_job(config, base_env, user_code, addresses, python, status_file=None, num_gpus=0):
    """Describe this host's processes. ``base_env`` is the whole environment every process gets
    (inherited variables plus SM_*); ``user_code`` says how the worker runs the user's code;
    ``status_file`` is where the worker's runner (any Python worker's) records its real exit
    status and the error that ended it; ``num_gpus``, this host's GPUs, gives the number of
    Horovod ranks when the hyperparameters do not."""
    if config.mpi_enabled:
        return _horovod_specs(config, base_env, user_code, addresses, python, status_file, num_gpus)
    cwd = config.paths.code_dir
    ps = joins_parameter_server(config, user_code.legacy)
    specs = []
    if ps:
        roles = ([SCHEDULER] if config.is_scheduler_host else []) + [SERVER]
        for role in roles:
            env = dict(base_env)
            env.update(ps_env(config, addresses, role))
            prefix = "[{} {}] ".format(role, config.current_host)
            specs.append(ProcessSpec(role, (python, "-c", ROLE_SNIPPET), env, cwd, prefix))
    env = dict(base_env)
    if ps:
        env.update(ps_env(config, addresses, WORKER))
    records = status_file is not None and user_code.kind != "executable"  # Python code runs through a runner
    if records:
        env[STATUS_FILE_ENV] = status_file
    specs.append(ProcessSpec(WORKER, user_code.argv(python, record_status=records), env, cwd,
                             status_file=status_file if records else None))
    return LaunchPlan(tuple(specs), ps)
