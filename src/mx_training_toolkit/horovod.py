"""Horovod (the platform's "mpi" distribution), started without mpirun: the ranks' places, their
environment, and what this launcher makes of the mpirun options. Pure; ``plan`` builds the processes."""

import re
from typing import Mapping, NamedTuple, Tuple

from .environment import num_neurons
from .errors import ConfigError
from .ports import rendezvous_port

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


def rank_rule(config, num_gpus):
    """How many Horovod ranks this host starts, by the reference's rule -> (count, why in words:
    "" when the hyperparameters say): ``sagemaker_mpi_num_of_processes_per_host`` when given, else
    one per GPU of this host, else one per AWS Neuron core (``environment.num_neurons``), else 1."""
    if config.mpi_processes_per_host:
        return config.mpi_processes_per_host, ""
    if num_gpus:
        return num_gpus, " (one per GPU: {} GPU{})".format(num_gpus, "" if num_gpus == 1 else "s")
    neurons = num_neurons(config.current_instance_type)
    if neurons:
        return neurons, " (one per Neuron core of an {})".format(config.current_instance_type)
    return 1, " (1 without a GPU)"


def check_ranks(config, count, why, first_count=None):
    """-> ``count``, this host's ranks per host (``why``: the rule's words), once they make a job.
    Raises ``ConfigError`` when they differ from the first host's, ``first_count`` (None: not
    known; Horovod's ranks are laid out as the same count on every host, as mpirun's are), or when
    ``sagemaker_mpi_num_processes`` is given and is not that many ranks on every host (this
    launcher starts every slot)."""
    if first_count is not None and first_count != count and config.current_host != config.hosts[0]:
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


def options_note(custom, options):
    """The line that says what became of ``sagemaker_mpi_custom_mpi_options`` ("" when none were given)."""
    if not custom.strip():
        return ""
    return "horovod: sagemaker_mpi_custom_mpi_options: NCCL_DEBUG={}; set for every rank: {}; ignored (no mpirun " \
        "here): {}".format(options.nccl_debug, ", ".join(sorted(options.variables)) or "nothing",
                           " ".join(options.ignored) or "nothing")


def rank_env(config, slot, rendezvous_address, options):
    """Every variable the launcher sets for one rank, over the environment it inherits: the
    rank's slot (never changed by ``options``), NCCL's and libfabric's (a user's -x wins)."""
    env = nccl_env(config.network_interface_name, config.current_instance_type, options.nccl_debug)
    port = rendezvous_port(config.ps_port).number
    env.update(horovod_env(slot, rendezvous_address, port, config.network_interface_name))
    env.update(options.variables)  # e.g. -x HOROVOD_GLOO_TIMEOUT_SECONDS=300; never a slot's own variables
    return env
