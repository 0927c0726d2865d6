"""Pure: the distribution strategy of this host, and its ``LaunchPlan``: the processes (each with
its whole environment), the ports to check, the channel's port and the lines to log.

The planner is asked twice: ``plan_hosts`` before the code is in place (what the launchers' channel
needs: its port and Horovod's ranks per host, which every host compares with the first host's),
then ``plan_job`` once the code is there (a legacy script may bring the parameter server). Each
strategy is one row of ``STRATEGIES``: a new one adds its row and builder here, and its processes'
roles to ``roles.TABLE``; the launcher (``training``) runs whatever plan it is given.
"""

import enum
import os
from typing import Mapping, NamedTuple, Optional, Tuple

from . import horovod, names, stacks
from .errors import ConfigError
from .ports import Port, channel_port, rendezvous_port, scheduler_port
from .roles import RENDEZVOUS, SCHEDULER, SERVER, WORKER
from .runner import STATUS_FILE_ENV
from .user_code import runner_bootstrap

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
STACKS_PREFIX = "stacks-"  # a process's stacks file in the status directory: + its role, or "rank<N>"
STATUS_NAME = "worker-status"  # the worker's status file in the status directory (a rank's: + ".rank<N>")


class Strategy(enum.Enum):
    """How this host takes part in the job."""

    PLAIN = "plain"  # the user's code alone
    PARAMETER_SERVER = "parameter server"  # a server (and on the first of its hosts, the scheduler) beside it
    OUTSIDE = "outside the parameter server"  # the job has one, but this host's instance group is left out
    HOROVOD = "horovod"  # its ranks (and on the first host, the rendezvous server)


class ProcessSpec(NamedTuple):
    """One process to run: argv (never a shell string), its whole environment and working dir."""

    role: str  # a role of roles.TABLE
    argv: Tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    prefix: str = ""  # put before each output line ("" for the user script)
    status_file: Optional[str] = None  # where the child records its real exit status (see runner.py)
    rank: Optional[int] = None  # a Horovod worker's rank
    stacks_file: Optional[str] = None  # where it writes its stacks when asked (see stacks.py); None: it cannot


class HostsPlan(NamedTuple):
    """What the hosts agree on before the code is in place."""

    channel_port: Optional[Port] = None  # the launchers' channel; None for a one-host job
    ranks_per_host: Optional[int] = None  # Horovod: this host's ranks (the first host's are told to all)
    rank_rule: str = ""  # why that many, in words

    def check(self, config, first_count=None):
        """Raise ``ConfigError`` when this host's ranks do not make a job with the first host's
        ``first_count`` (None: not known) or with ``sagemaker_mpi_num_processes``."""
        if self.ranks_per_host is not None:
            horovod.check_ranks(config, self.ranks_per_host, self.rank_rule, first_count)


class LaunchPlan(NamedTuple):
    """This host's part of the job: its processes, support roles first, the workers last."""

    strategy: Strategy
    specs: Tuple[ProcessSpec, ...]
    ports: Tuple[Port, ...] = ()  # to check before starting: taken, the job could not start
    channel_port: Optional[Port] = None  # the launchers' channel (opened before, from ``plan_hosts``)
    notes: Tuple[str, ...] = ()  # lines to log after the run line
    shown: Tuple[str, ...] = ()  # the worker's command, as the run line shows it
    how: str = ""  # the run line's ending: the strategy in words

    @property
    def worker(self):
        return self.specs[-1]

    @property
    def workers(self):
        return tuple(s for s in self.specs if s.role == WORKER)


class _Job(NamedTuple):
    """``plan_job``'s arguments, for the strategies' builders."""

    config: object
    hosts: HostsPlan
    user_code: object
    base_env: Mapping[str, str]
    addresses: Mapping[str, str]
    python: str
    status_file: Optional[str]  # the worker's, when it records its status; None: it does not
    status_dir: Optional[str]  # where the Python processes' stacks files go; None: nowhere


def ps_hosts(config):
    """The hosts of the parameter-server job: the distribution hosts when
    sagemaker_distribution_instance_groups names the groups, else every host. The first one
    runs the scheduler."""
    return config.hosts if config.distribution_instance_groups is None else config.distribution_hosts


def ps_env(config, addresses, role):
    """ps-lite's variables for ``role`` on this host, for the job of ``ps_hosts(config)`` (a server
    and a worker on each, the scheduler on the first). ``addresses`` maps host names to IP
    addresses (ps-lite needs an IP for the scheduler: a host name fails with "bind failed")."""
    hosts = ps_hosts(config)
    n = len(hosts)
    return {
        DMLC_ROLE: role,
        DMLC_PS_ROOT_URI: addresses[hosts[0]],
        DMLC_PS_ROOT_PORT: str(scheduler_port(config.ps_port).number),
        DMLC_NUM_SERVER: str(n),
        DMLC_NUM_WORKER: str(n),
        DMLC_NODE_HOST: addresses[config.current_host],
        PS_VERBOSE: str(config.ps_verbose),
    }


def choose(config, legacy):
    """This host's ``Strategy``. The parameter server is enabled by its switch, and for legacy
    scripts whenever the job has more than one host; on a heterogeneous cluster whose
    sagemaker_distribution_instance_groups leaves this host's group out, its code runs on its own."""
    if config.mpi_enabled:
        return Strategy.HOROVOD
    if config.parameter_server_enabled or (legacy and len(config.hosts) > 1):
        return Strategy.PARAMETER_SERVER if config.current_host in ps_hosts(config) else Strategy.OUTSIDE
    return Strategy.PLAIN


def records_status(strategy, user_code):
    """Whether the worker runs through a runner, which records its real status and the error
    that ended it: Python code does (an executable cannot), and so does every Horovod rank."""
    return strategy is Strategy.HOROVOD or user_code.kind != "executable"


def plan_hosts(config, num_gpus):
    """What the launchers' channel needs before the code is in place -> ``HostsPlan``."""
    port = channel_port(config.ps_port) if len(config.hosts) > 1 else None
    if not config.mpi_enabled:
        return HostsPlan(port)
    count, why = horovod.rank_rule(config, num_gpus)
    return HostsPlan(port, count, why)


def _installed(module):
    return True


def plan_job(config, hosts, user_code, base_env, addresses, python, status_dir=None, installed=_installed):
    """This host's ``LaunchPlan``. ``hosts`` is ``plan_hosts``' answer; ``user_code`` says how the
    worker runs the user's code; ``base_env`` is the whole environment every process gets
    (inherited variables plus SM_*); ``addresses`` maps host names to addresses; ``status_dir``
    is where a worker that runs through a runner records its status (None: nowhere);
    ``installed(module)`` says whether a module a strategy needs can be imported. Raises
    ``ConfigError`` when the job cannot run so."""
    strategy = choose(config, user_code.legacy)
    records = records_status(strategy, user_code)
    status_file = os.path.join(status_dir, STATUS_NAME) if records and status_dir else None
    job = _Job(config, hosts, user_code, base_env, addresses, python, status_file, status_dir)
    launch = STRATEGIES[strategy](job, installed)
    return launch._replace(strategy=strategy, channel_port=hosts.channel_port,
                           shown=user_code.argv(python, record_status=records, readable=True))


def _stacks_file(job, env, name, python=True):
    """Name the stacks file of a ``python`` process (``stacks``) in its environment ``env`` -> its
    path, or None when the plan has no directory for it (or the process is not Python: a worker
    that is an executable cannot arm the dumper)."""
    if not job.status_dir or not python:
        return None
    path = os.path.join(job.status_dir, STACKS_PREFIX + name)
    env[names.STACKS_FILE_ENV] = path
    return path


def _worker(job, extra_env=None):
    env = dict(job.base_env)
    env.update(extra_env or {})
    if job.status_file:
        env[STATUS_FILE_ENV] = job.status_file
    return ProcessSpec(WORKER, job.user_code.argv(job.python, record_status=job.status_file is not None), env,
                       job.config.paths.code_dir, status_file=job.status_file,
                       stacks_file=_stacks_file(job, env, WORKER, job.user_code.kind != "executable"))


def _plain(job, installed):
    return LaunchPlan(Strategy.PLAIN, (_worker(job),))


def _outside(job, installed):
    cfg = job.config
    note = "parameter server: {} (instance group {}) is not in the distribution instance groups {}: its script " \
        "runs on its own".format(cfg.current_host, cfg.current_instance_group, ", ".join(cfg.distribution_groups))
    return LaunchPlan(Strategy.OUTSIDE, (_worker(job),), notes=(note,))


def _parameter_server(job, installed):
    cfg = job.config
    hosts = ps_hosts(cfg)
    first = cfg.current_host == hosts[0]
    specs = []
    for role in ([SCHEDULER] if first else []) + [SERVER]:
        env = dict(job.base_env)
        env.update(ps_env(cfg, job.addresses, role))
        specs.append(ProcessSpec(role, (job.python, "-c", stacks.arm_code() + ROLE_SNIPPET), env, cfg.paths.code_dir,
                                 "[{} {}] ".format(role, cfg.current_host), stacks_file=_stacks_file(job, env, role)))
    roles = ", ".join(s.role for s in specs)
    specs.append(_worker(job, ps_env(cfg, job.addresses, WORKER)))
    port = scheduler_port(cfg.ps_port)
    note = "parameter server: {} import MXNet (a few seconds), then wait until the scheduler on {} ({}:{}) has " \
        "heard from all {} servers and {} workers".format(", ".join(s.role for s in specs), hosts[0],
                                                          job.addresses[hosts[0]], port.number, len(hosts), len(hosts))
    return LaunchPlan(Strategy.PARAMETER_SERVER, tuple(specs), (port,) if first else (), notes=(note,),
                      how=" (with the parameter server: {})".format(roles))


def _horovod(job, installed):
    cfg, user_code = job.config, job.user_code
    if not installed("horovod"):
        raise ConfigError("hyperparameters.json: field 'sagemaker_mpi_enabled' is true, but Horovod is not "
                          "installed in this environment (scripts/install_horovod.sh builds and installs it)")
    options = horovod.horovod_options(cfg.mpi_custom_options)
    if user_code.legacy:
        raise ConfigError("hyperparameters.json: field 'sagemaker_mpi_enabled' is true, but {} is a legacy script "
                          "(train()/save()); Horovod runs script-mode scripts only".format(cfg.user_entry_point))
    first, per_host, cwd = cfg.hosts[0], job.hosts.ranks_per_host, cfg.paths.code_dir
    port = rendezvous_port(cfg.ps_port)
    specs = []
    if cfg.current_host == first:
        env = dict(job.base_env)
        env.update({names.HOROVOD_HOSTS_ENV: ",".join("{}:{}".format(h, per_host) for h in cfg.hosts),
                    names.HOROVOD_BIND_ENV: job.addresses[first], names.HOROVOD_PORT_ENV: str(port.number)})
        specs.append(ProcessSpec(RENDEZVOUS, (job.python, "-c", runner_bootstrap(horovod.HOROVOD_RUNNER)), env, cwd,
                                 "[rendezvous] ", stacks_file=_stacks_file(job, env, RENDEZVOUS)))
    for slot in horovod.horovod_slots(cfg.hosts, per_host):
        if slot.host != cfg.current_host:
            continue
        env = dict(job.base_env)
        env.update(horovod.rank_env(cfg, slot, job.addresses[first], options))
        rank_status = "{}.rank{}".format(job.status_file, slot.rank) if job.status_file else None
        if rank_status:
            env[STATUS_FILE_ENV] = rank_status
        specs.append(ProcessSpec(WORKER, user_code.argv(job.python, record_status=True), env, cwd,
                                 "[rank {}] ".format(slot.rank), rank_status, slot.rank,
                                 _stacks_file(job, env, "rank{}".format(slot.rank), user_code.kind != "executable")))
    ranks = [s.rank for s in specs if s.role == WORKER]
    note = horovod.options_note(cfg.mpi_custom_options, options)
    return LaunchPlan(Strategy.HOROVOD, tuple(specs), (port,) if cfg.current_host == first else (),
                      notes=(note,) if note else (),
                      how=" (Horovod: ranks {} of {})".format(", ".join(map(str, ranks)), len(cfg.hosts) * per_host))


# The strategies' builders: each returns its processes, ports, notes and words (``plan_job`` adds the rest).
STRATEGIES = {
    Strategy.PLAIN: _plain,
    Strategy.PARAMETER_SERVER: _parameter_server,
    Strategy.OUTSIDE: _outside,
    Strategy.HOROVOD: _horovod,
}
