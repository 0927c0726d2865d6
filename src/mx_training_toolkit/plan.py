"""Pure: which processes run on this host, each with its whole environment (a ``LaunchPlan``)."""

from typing import Mapping, NamedTuple, Optional, Tuple

from .runner import STATUS_FILE_ENV

# The roles of a job's processes (ps-lite's own names for the first three).
SCHEDULER = "scheduler"
SERVER = "server"
WORKER = "worker"
PIP = "pip"
PS_ROLES = (SCHEDULER, SERVER)

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


class LaunchPlan(NamedTuple):
    """The processes of this host: parameter-server roles first, the worker last."""

    specs: Tuple[ProcessSpec, ...]
    parameter_server: bool

    @property
    def worker(self):
        return self.specs[-1]

    @property
    def roles(self):
        return self.specs[:-1]


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
    return config.ps_port + 1 if config.ps_port < 65535 else config.ps_port - 1


def plan_job(config, base_env, user_code, addresses, python, status_file=None):
    """Describe this host's processes. ``base_env`` is the whole environment every process gets
    (inherited variables plus SM_*); ``user_code`` says how the worker runs the user's code;
    ``status_file`` is where the worker records its real exit status and the legacy runner its
    reason (used by parameter-server and legacy workers)."""
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
    records = status_file is not None and (ps or user_code.legacy)
    if records:
        env[STATUS_FILE_ENV] = status_file
    specs.append(ProcessSpec(WORKER, user_code.argv(python, record_status=ps), env, cwd,
                             status_file=status_file if records else None))
    return LaunchPlan(tuple(specs), ps)
