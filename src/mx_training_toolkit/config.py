"""Base directory -> paths; read and validate the three JSON config files -> a frozen ``JobConfig``.

``load`` only reads: it creates no directory and touches no network. ``write_job`` writes the files
the way the platform does, for local runs and tests.
"""

import json
import os
import posixpath
import stat
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional, Tuple

from . import hyperparameters as hp
from .errors import ConfigError

DEFAULT_BASE_DIR = "/opt/ml"
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIR_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
LEGACY_MODE_ENV = "SAGEMAKER_MXNET_LEGACY_MODE"
# The platform's name for the job, set in every container of it (the reference's job_name).
TRAINING_JOB_NAME_ENV = "TRAINING_JOB_NAME"
# Where boto3 would find the region; the reference's SAGEMAKER_REGION falls back to it.
AWS_REGION_ENV = "AWS_DEFAULT_REGION"

DEFAULT_PS_PORT = 8000
DEFAULT_LOG_LEVEL = 20
DEFAULT_HOST = "algo-1"
# The group name the reference gives a job whose resourceconfig.json names none.
HOMOGENEOUS_GROUP = "homogeneousCluster"
DISTRIBUTION_GROUPS_HP = "sagemaker_distribution_instance_groups"
# What the SDK writes for distribution={'mpi': {'enabled': True, 'processes_per_host': N,
# 'custom_mpi_options': '...'}}: Horovod, run here without mpirun (see plan.py).
MPI_ENABLED_HP = "sagemaker_mpi_enabled"
MPI_PROCESSES_HP = "sagemaker_mpi_num_of_processes_per_host"
MPI_OPTIONS_HP = "sagemaker_mpi_custom_mpi_options"
MPI_TOTAL_HP = "sagemaker_mpi_num_processes"  # the reference toolkit's own spelling of the total, if given
# Framework switches that, in the reference, make the current instance group a distribution group
# when sagemaker_distribution_instance_groups is not given (only the parameter server runs here).
DISTRIBUTION_SWITCHES = ("sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled",
                         "sagemaker_distributed_dataparallel_enabled", "sagemaker_pytorch_ddp_enabled",
                         "sagemaker_pytorch_xla_multi_worker_enabled", "sagemaker_multi_worker_mirrored_strategy_enabled",
                         "sagemaker_torch_distributed_enabled")

# The deepest nesting a field of a config file (a hyperparameter value included) may have. Real
# configurations nest a few levels; Python's recursion limit (1000 frames) is the hard bound that
# encoding SM_TRAINING_ENV, in the launcher or in the script, must stay well below.
MAX_DEPTH = 100

EMPTY = MappingProxyType({})  # a default for mapping fields: one instance shared by every record, so read-only


class Paths(NamedTuple):
    """Every path of the base directory layout (docs/contract.md section 1)."""

    base: str  # the base directory: /opt/ml, or $SAGEMAKER_BASE_DIR

    def _join(self, *parts):
        return os.path.join(self.base, *parts)

    @property
    def input_dir(self):
        return self._join("input")

    @property
    def input_config_dir(self):
        return self._join("input", "config")

    @property
    def input_data_dir(self):
        return self._join("input", "data")

    @property
    def hyperparameters_file(self):
        return self._join("input", "config", "hyperparameters.json")

    @property
    def resource_config_file(self):
        return self._join("input", "config", "resourceconfig.json")

    @property
    def input_data_config_file(self):
        return self._join("input", "config", "inputdataconfig.json")

    @property
    def code_dir(self):
        return self._join("code")

    @property
    def model_dir(self):
        return self._join("model")

    @property
    def output_dir(self):
        return self._join("output")

    @property
    def output_data_dir(self):
        return self._join("output", "data")

    @property
    def output_intermediate_dir(self):
        return self._join("output", "intermediate")

    @property
    def success_file(self):
        return self._join("output", "success")

    @property
    def failure_file(self):
        return self._join("output", "failure")

    def channel_dir(self, channel):
        return self._join("input", "data", channel)


class InstanceGroup(NamedTuple):
    """One entry of resourceconfig.json's ``instance_groups`` (a heterogeneous cluster's part)."""

    name: str
    instance_type: str
    hosts: Tuple[str, ...]


class JobConfig(NamedTuple):
    """The job description, read once. Hyperparameter values are already JSON-decoded.

    Every field has a default, so that a test can build one in a line: together they describe a
    one-host job under /opt/ml whose files name only the entry point ``train.py``. (``load`` sets
    every field from the files.)"""

    paths: Paths = Paths(DEFAULT_BASE_DIR)
    hyperparameters: Mapping[str, Any] = EMPTY  # all of them, decoded
    user_hyperparameters: Mapping[str, Any] = EMPTY  # those passed to the script
    reserved_hyperparameters: Mapping[str, Any] = EMPTY  # sagemaker_* and the other launcher-owned names
    resource_config: Mapping[str, Any] = EMPTY  # resourceconfig.json as read ({} when the file is absent)
    input_data_config: Mapping[str, Any] = EMPTY  # inputdataconfig.json as read
    current_host: str = DEFAULT_HOST
    hosts: Tuple[str, ...] = (DEFAULT_HOST,)  # in the file's order; the first runs the scheduler
    network_interface_name: str = "eth0"
    current_instance_type: str = "local"
    user_entry_point: str = "train.py"  # relative to code/
    submit_directory: Optional[str] = None  # where the code comes from; None: it is in code/ already
    log_level: int = DEFAULT_LOG_LEVEL
    job_name: Optional[str] = None
    region: Optional[str] = None
    parameter_server_enabled: bool = False
    legacy_mode: Optional[bool] = None  # None: decide from the script
    ps_port: int = DEFAULT_PS_PORT
    ps_verbose: int = 0
    channels: Tuple[str, ...] = ()  # sorted
    current_instance_group: str = HOMOGENEOUS_GROUP  # resourceconfig.json's current_group_name
    instance_groups: Tuple[InstanceGroup, ...] = ()  # resourceconfig.json's, in its order; () when it has none
    distribution_instance_groups: Optional[Tuple[str, ...]] = None  # sagemaker_distribution_instance_groups
    mpi_enabled: bool = False  # Horovod (the platform's "mpi" distribution)
    mpi_processes_per_host: Optional[int] = None  # Horovod ranks on each host; None: one per GPU (see plan)
    mpi_custom_options: str = ""  # mpirun options the SDK passes; see plan.horovod_options
    mpi_num_processes: Optional[int] = None  # sagemaker_mpi_num_processes: the job's ranks, when given
    platform_job_name: Optional[str] = None  # $TRAINING_JOB_NAME, when set and not empty
    default_region: Optional[str] = None  # $AWS_DEFAULT_REGION, when set and not empty

    @property
    def module_name(self):
        name = self.user_entry_point
        return name[:-3] if name.endswith(".py") else name

    @property
    def distribution_groups(self):
        """The instance groups that train together, by the reference's rule -> tuple of names:
        sagemaker_distribution_instance_groups when given; else the current group when a
        distribution switch is on (so, on a heterogeneous cluster, each group counts only itself);
        else none."""
        if self.distribution_instance_groups is not None:
            return self.distribution_instance_groups
        reserved = self.reserved_hyperparameters
        if self.parameter_server_enabled or any(reserved.get(k) for k in DISTRIBUTION_SWITCHES):
            return (self.current_instance_group,)
        return ()

    @property
    def distribution_hosts(self):
        """The hosts of the distribution groups, group by group in resourceconfig.json's order;
        every host when resourceconfig.json lists no instance groups (the reference's rule)."""
        if not self.instance_groups:
            return self.hosts
        wanted = set(self.distribution_groups)
        return tuple(host for group in self.instance_groups if group.name in wanted for host in group.hosts)

    @property
    def master_hostname(self):
        """The first distribution host, or the first host when there is none (the reference's rule)."""
        return (self.distribution_hosts or self.hosts)[0]

    @property
    def ps_hosts(self):
        """The hosts of the parameter-server job: the distribution hosts when
        sagemaker_distribution_instance_groups names the groups, else every host. The first one
        runs the scheduler."""
        if self.distribution_instance_groups is None:
            return self.hosts
        return self.distribution_hosts

    @property
    def is_scheduler_host(self):
        """This host runs the parameter-server scheduler (when there is one)."""
        return self.current_host == self.ps_hosts[0]

    @property
    def is_first_host(self):
        """This host is ``hosts[0]``: the launchers' channel listens on it."""
        return self.current_host == self.hosts[0]


def _read_json(path, what, default):
    """Read one JSON object file; a missing file gives ``default``. Only a regular file (or a link
    to one) is read: anything else is a ``ConfigError`` naming the file."""
    name = os.path.basename(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return default
    except OSError as e:
        raise ConfigError("{}: cannot read the file ({})".format(name, e.strerror or e)) from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end; a directory has no text
            raise ConfigError("{}: cannot read the file (it is {}, not a regular file)".format(name, _kind(mode)))
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError("{}: cannot read the file ({})".format(name, e.strerror or e)) from e
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark (Windows editors) is harmless
    except UnicodeDecodeError as e:
        raise ConfigError("{}: not valid UTF-8 (byte {})".format(name, e.start)) from e
    except ValueError as e:
        raise ConfigError("{}: invalid JSON: {}".format(name, e)) from e
    except RecursionError:
        raise ConfigError("{}: invalid JSON: nested too deeply".format(name)) from None
    if not isinstance(data, dict):
        raise ConfigError("{}: expected a JSON object ({}), got {}".format(name, what, type(data).__name__))
    return data


def _kind(mode):
    """What a file that is not a regular one is, in words."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((words for test, words in kinds if test(mode)), "a special file")


def _problem(value):
    """Why ``value`` (any JSON value) cannot be passed on, in words ("contains ...", "is nested
    ..."), else None: a string no argv, environment or file can carry, or nesting deeper than
    MAX_DEPTH (encoding it for SM_* or printing it would exhaust Python's recursion limit)."""
    stack = [(value, 0)]
    while stack:  # not recursive: JSON may nest as deep as the parser allows
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "contains an unpaired surrogate (\\ud800-\\udfff)"
        elif isinstance(item, (dict, list)):
            if depth == MAX_DEPTH:
                return "is nested more than {} levels deep".format(MAX_DEPTH)
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
    return None


def _check_values(mapping, file):
    """Refuse a top-level field whose name or value has a ``_problem``."""
    for key, value in mapping.items():
        why = _problem(key) or _problem(value)
        if why:
            raise ConfigError("{}: field {!r} {}".format(file, key, why))


def _check_env_names(names, file, what, prefix):
    """Refuse two ``names`` that become the same environment variable ``prefix + name.upper()``."""
    seen = {}
    for name in sorted(names):
        variable = prefix + name.upper()
        if variable in seen:
            raise ConfigError("{}: {} {!r} and {!r} both become the environment variable {}; rename one"
                              .format(file, what, seen[variable], name, variable))
        seen[variable] = name


def _int_field(value, file, key, minimum=None, maximum=None):
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            number = None
        else:
            number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = ""
        if minimum is not None and maximum is not None:
            bounds = " between {} and {}".format(minimum, maximum)
        raise ConfigError("{}: field {!r} must be an integer{}, got {!r}".format(file, key, bounds, value))
    return number


def _bool_field(value, file, key):
    return _bool_value(value, "{}: field {!r}".format(file, key))


def _bool_value(value, where):
    try:
        return hp.to_bool(value)
    except ValueError:
        raise ConfigError("{} must be true or false, got {!r}".format(where, value)) from None


def _reserved_or_env(reserved, key, environ, variable, file):
    """A launcher field from the hyperparameters, else from ``variable``: -> (value, where it came from,
    as an error message names it). None when neither gives one."""
    if key in reserved:
        return reserved[key], "{}: field {!r}".format(file, key)
    return environ.get(variable), "environment variable {}".format(variable)


def _str_field(mapping, key, file, default=None, required=False):
    if key not in mapping:
        if required:
            raise ConfigError("{}: required field {!r} is missing".format(file, key))
        return default
    value = mapping[key]
    if not isinstance(value, str) or not value:
        raise ConfigError("{}: field {!r} must be a non-empty string, got {!r}".format(file, key, value))
    return value


def _resource(resource):
    """-> (current host, hosts, network interface, instance type, current group, instance groups)."""
    file = "resourceconfig.json"
    if not resource:
        return "algo-1", ("algo-1",), "eth0", "local", HOMOGENEOUS_GROUP, ()
    current = _str_field(resource, "current_host", file, required=True)
    if "hosts" not in resource:
        raise ConfigError("{}: required field 'hosts' is missing".format(file))
    hosts = resource["hosts"]
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError("{}: field 'hosts' must be a list of host names, got {!r}".format(file, hosts))
    if not hosts:
        raise ConfigError("{}: field 'hosts' is empty".format(file))
    if len(set(hosts)) != len(hosts):
        raise ConfigError("{}: field 'hosts' lists a host twice: {!r}".format(file, hosts))
    if current not in hosts:
        raise ConfigError("{}: current_host {!r} is not in hosts {!r}".format(file, current, hosts))
    interface = _str_field(resource, "network_interface_name", file, default="eth0")
    instance_type = _str_field(resource, "current_instance_type", file, default="local")
    group = _str_field(resource, "current_group_name", file, default=HOMOGENEOUS_GROUP)
    return current, tuple(hosts), interface, instance_type, group, _instance_groups(resource, hosts)


def _instance_groups(resource, hosts):
    """resourceconfig.json's ``instance_groups`` -> tuple of ``InstanceGroup`` (() when absent).
    Each names its hosts among ``hosts``; no host is in two groups."""
    file = "resourceconfig.json"
    raw = resource.get("instance_groups", [])
    if not isinstance(raw, list):
        raise ConfigError("{}: field 'instance_groups' must be a list of instance groups, got {!r}".format(file, raw))
    groups, seen = [], {}
    for item in raw:
        if not isinstance(item, dict):
            raise ConfigError("{}: field 'instance_groups' must hold objects, got {!r}".format(file, item))
        name = _str_field(item, "instance_group_name", file, required=True)
        instance_type = _str_field(item, "instance_type", file, default="local")
        members = item.get("hosts")
        if not isinstance(members, list) or not members or not all(isinstance(h, str) for h in members):
            raise ConfigError("{}: instance group {!r} must list its hosts, got {!r}".format(file, name, members))
        if name in (g.name for g in groups):
            raise ConfigError("{}: instance group {!r} is listed twice".format(file, name))
        for host in members:
            if host not in hosts:
                raise ConfigError("{}: instance group {!r} lists {!r}, which is not in hosts {!r}"
                                  .format(file, name, host, hosts))
            if host in seen:
                raise ConfigError("{}: host {!r} is in instance groups {!r} and {!r}".format(file, host, seen[host],
                                                                                             name))
            seen[host] = name
        groups.append(InstanceGroup(name, instance_type, tuple(members)))
    return tuple(groups)


def _distribution_groups(value, groups):
    """sagemaker_distribution_instance_groups (decoded) -> tuple of group names. With instance
    groups in resourceconfig.json, every name must be one of them; without, the names are kept as
    given (the reference then distributes over every host)."""
    file = "hyperparameters.json"
    if not isinstance(value, list) or not value or not all(isinstance(n, str) and n for n in value):
        raise ConfigError("{}: field {!r} must be a non-empty list of instance group names, got {!r}"
                          .format(file, DISTRIBUTION_GROUPS_HP, value))
    known = [g.name for g in groups]
    for name in value:
        if groups and name not in known:
            raise ConfigError("{}: field {!r} names instance group {!r}, which resourceconfig.json does not list "
                              "(it lists {})".format(file, DISTRIBUTION_GROUPS_HP, name, ", ".join(known)))
    return tuple(value)


def _channels(input_data_config, paths):
    file = "inputdataconfig.json"
    _check_env_names(input_data_config, file, "channels", "SM_CHANNEL_")
    for name, spec in input_data_config.items():
        if not name or "/" in name or "=" in name or name in (".", ".."):
            raise ConfigError("{}: {!r} is not a valid channel name".format(file, name))
        if not isinstance(spec, dict):
            raise ConfigError("{}: channel {!r} must be a JSON object, got {!r}".format(file, name, spec))
        mode = spec.get("TrainingInputMode", "File")
        if not isinstance(mode, str):
            raise ConfigError("{}: field 'TrainingInputMode' of channel {!r} must be a string, got {!r}"
                              .format(file, name, mode))
        if mode == "File" and not os.path.isdir(paths.channel_dir(name)):
            raise ConfigError(
                "{}: channel {!r} has no data directory {}".format(file, name, paths.channel_dir(name))
            )
    return tuple(sorted(input_data_config))


def load(base_dir, environ):
    """Read and validate the job description under ``base_dir``.

    ``environ`` gives the SAGEMAKER_* fall-backs, the platform's TRAINING_JOB_NAME and
    AWS_DEFAULT_REGION; it is the only environment read here.
    Raises ``ConfigError`` naming the file and field on bad input.
    """
    paths = Paths(base_dir)
    raw_hps = _read_json(paths.hyperparameters_file, "hyperparameter names to values", {})
    resource = _read_json(paths.resource_config_file, "the hosts of the job", {})
    input_data = _read_json(paths.input_data_config_file, "channel names to their settings", {})
    file = "hyperparameters.json"
    for key in raw_hps:
        if not key:
            raise ConfigError("{}: an empty hyperparameter name".format(file))
    _check_values(resource, "resourceconfig.json")
    _check_values(input_data, "inputdataconfig.json")

    decoded = hp.decode(raw_hps)
    _check_values(decoded, file)
    user, reserved = hp.split(decoded)
    for key in user:
        if "=" in key:  # it becomes the environment variable SM_HP_<KEY>
            raise ConfigError("{}: hyperparameter name {!r} contains '=', which no environment variable name "
                              "may".format(file, key))
    _check_env_names(user, file, "hyperparameters", "SM_HP_")

    entry_point, where = _reserved_or_env(reserved, "sagemaker_program", environ, PROGRAM_ENV, file)
    if entry_point is None:
        raise ConfigError(
            "{}: field 'sagemaker_program' (the entry point) is missing and {} is not set".format(file, PROGRAM_ENV)
        )
    if not isinstance(entry_point, str) or not entry_point.strip():
        raise ConfigError("{} must be a file name, got {!r}".format(where, entry_point))
    if os.path.isabs(entry_point) or ".." in entry_point.split("/"):
        raise ConfigError("{} must name a file inside the code, got {!r}".format(where, entry_point))
    # One spelling of the entry point for everything that uses it: "./t.py" would give legacy mode
    # the module name "./t", and "a//t.py" the package module "a..t".
    entry_point = posixpath.normpath(entry_point)
    submit = reserved.get("sagemaker_submit_directory", environ.get(SUBMIT_DIR_ENV))
    if submit is not None and (not isinstance(submit, str) or not submit):
        raise ConfigError("{}: field 'sagemaker_submit_directory' must be a path or URL, got {!r}".format(file, submit))

    log_level = _int_field(
        reserved.get("sagemaker_container_log_level", DEFAULT_LOG_LEVEL), file, "sagemaker_container_log_level", 0, 50
    )
    ps_enabled = _bool_field(
        reserved.get("sagemaker_parameter_server_enabled", False), file, "sagemaker_parameter_server_enabled"
    )
    mpi_enabled = _bool_field(reserved.get(MPI_ENABLED_HP, False), file, MPI_ENABLED_HP)
    mpi_per_host = reserved.get(MPI_PROCESSES_HP)
    if mpi_per_host is not None:
        mpi_per_host = _int_field(mpi_per_host, file, MPI_PROCESSES_HP, 1, 1024)
    mpi_total = reserved.get(MPI_TOTAL_HP)
    if mpi_total is not None:
        mpi_total = _int_field(mpi_total, file, MPI_TOTAL_HP, 1)
    mpi_options = reserved.get(MPI_OPTIONS_HP, "")
    if not isinstance(mpi_options, str):
        raise ConfigError("{}: field {!r} must be a string of mpirun options, got {!r}".format(
            file, MPI_OPTIONS_HP, mpi_options))
    if mpi_enabled and ps_enabled:
        raise ConfigError("{}: fields 'sagemaker_parameter_server_enabled' and {!r} are both true; a job "
                          "distributes with one of them".format(file, MPI_ENABLED_HP))
    legacy, where = _reserved_or_env(reserved, "sagemaker_mxnet_legacy_mode", environ, LEGACY_MODE_ENV, file)
    if legacy is not None and legacy != "":
        legacy = _bool_value(legacy, where)
    else:
        legacy = None
    ps_port = _int_field(reserved.get("_ps_port", DEFAULT_PS_PORT), file, "_ps_port", 1, 65535)
    ps_verbose = _int_field(reserved.get("_ps_verbose", 0), file, "_ps_verbose", 0, 2)
    for key in ("sagemaker_job_name", "sagemaker_region"):
        if key in reserved and not isinstance(reserved[key], str):
            raise ConfigError("{}: field {!r} must be a string, got {!r}".format(file, key, reserved[key]))

    current, hosts, interface, instance_type, group, groups = _resource(resource)
    distribution = reserved.get(DISTRIBUTION_GROUPS_HP)
    if distribution is not None:
        distribution = _distribution_groups(distribution, groups)
    return JobConfig(
        paths=paths,
        hyperparameters=decoded,
        user_hyperparameters=user,
        reserved_hyperparameters=reserved,
        resource_config=resource,
        input_data_config=input_data,
        current_host=current,
        hosts=hosts,
        network_interface_name=interface,
        current_instance_type=instance_type,
        user_entry_point=entry_point,
        submit_directory=submit,
        log_level=log_level,
        job_name=reserved.get("sagemaker_job_name"),
        region=reserved.get("sagemaker_region"),
        parameter_server_enabled=ps_enabled,
        legacy_mode=legacy,
        ps_port=ps_port,
        ps_verbose=ps_verbose,
        channels=_channels(input_data, paths),
        current_instance_group=group,
        instance_groups=groups,
        distribution_instance_groups=distribution,
        mpi_enabled=mpi_enabled,
        mpi_processes_per_host=mpi_per_host,
        mpi_custom_options=mpi_options,
        mpi_num_processes=mpi_total,
        platform_job_name=environ.get(TRAINING_JOB_NAME_ENV) or None,
        default_region=environ.get(AWS_REGION_ENV) or None,
    )


class ChannelFacts(NamedTuple):
    """What a host needs to reach the launchers' channel, read from the files alone."""

    current_host: str
    hosts: Tuple[str, ...]
    ps_port: int
    job_name: Optional[str]
    hyperparameters: Mapping[str, Any]


def channel_facts(base_dir):
    """For a host whose configuration failed to load: the little it takes to tell the first host so
    (the hosts, ``_ps_port``, the job's name and its hyperparameters for the channel's proof) ->
    ``ChannelFacts``, or None when even that is unusable or the job has one host."""
    paths = Paths(base_dir)
    file = "hyperparameters.json"
    try:
        decoded = hp.decode(_read_json(paths.hyperparameters_file, "hyperparameter names to values", {}))
        current, hosts = _resource(_read_json(paths.resource_config_file, "the hosts of the job", {}))[:2]
        port = _int_field(decoded.get("_ps_port", DEFAULT_PS_PORT), file, "_ps_port", 1, 65535)
    except (ConfigError, RecursionError, TypeError, ValueError):
        return None
    name = decoded.get("sagemaker_job_name")
    if len(hosts) < 2:
        return None
    return ChannelFacts(current, hosts, port, name if isinstance(name, str) else None, decoded)


def base_dir_from(environ):
    """The job's base directory, an absolute path: $SAGEMAKER_BASE_DIR unless unset or empty, else
    /opt/ml. Absolute because the user's code runs in ``code/``, where a relative SM_* path would
    name another place."""
    return os.path.abspath(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR)


def group_resource_config(current_host, groups, network_interface_name="eth0", instance_type="local"):
    """resourceconfig.json as the platform writes it for ``current_host`` of a job made of instance
    groups -> a dict. ``groups`` maps each group's name to its host names, in order; ``hosts`` lists
    every group's hosts in that order, and every group gets ``instance_type``."""
    hosts = [host for members in groups.values() for host in members]
    current_group = next(name for name, members in groups.items() if current_host in members)
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": current_group,
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": name, "instance_type": instance_type, "hosts": list(members)}
                            for name, members in groups.items()],
        "network_interface_name": network_interface_name,
    }


def write_job(base_dir, hyperparameters=None, resource_config=None, input_data_config=None, encode=True):
    """Write a job description under ``base_dir`` the way the platform does -> its ``Paths``.

    ``input/config`` is created if needed. ``hyperparameters`` (None: none) always gives
    hyperparameters.json; with ``encode`` each value is JSON-encoded as the SageMaker SDK does
    (``{"epochs": 10}`` is written as ``{"epochs": "10"}``), without it the values are written as
    they are (raw strings, or whatever a test wants ``load`` to meet). ``resource_config`` and
    ``input_data_config`` are written as given; None writes no file, and a file already there is
    left as it is (``load`` reads a missing one as one host, no channels). Nothing is validated here.
    """
    paths = Paths(os.fspath(base_dir))
    os.makedirs(paths.input_config_dir, exist_ok=True)
    hps = dict(hyperparameters or {})
    files = [(paths.hyperparameters_file, hp.encode(hps) if encode else hps),
             (paths.resource_config_file, resource_config),
             (paths.input_data_config_file, input_data_config)]
    for path, content in files:
        if content is not None:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=1)
    return paths
