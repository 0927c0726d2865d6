"""Base directory -> paths; read and validate the three JSON config files -> a frozen ``JobConfig``.

``load`` only reads: it creates no directory and touches no network. The launcher's fields of
hyperparameters.json are a table (``fields``); reading a file and checking its values is
``jsonfile``'s; ``jobfiles`` writes the files the way the platform does, for local runs and tests.
"""

import os
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional, Tuple

from . import fields, names
from . import hyperparameters as hp
from .errors import ConfigError
from .fields import DEFAULT_LOG_LEVEL, DEFAULT_PS_PORT, HYPERPARAMETERS_FILE
from .jsonfile import check_env_names, check_values, read_object

DEFAULT_BASE_DIR = "/opt/ml"
DEFAULT_HOST = "algo-1"
# The group name the reference gives a job whose resourceconfig.json names none.
HOMOGENEOUS_GROUP = "homogeneousCluster"

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
        if self.parameter_server_enabled or any(reserved.get(k) for k in names.DISTRIBUTION_SWITCHES):
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
    file = HYPERPARAMETERS_FILE
    if not isinstance(value, list) or not value or not all(isinstance(n, str) and n for n in value):
        raise ConfigError("{}: field {!r} must be a non-empty list of instance group names, got {!r}"
                          .format(file, names.DISTRIBUTION_GROUPS_HP, value))
    known = [g.name for g in groups]
    for name in value:
        if groups and name not in known:
            raise ConfigError("{}: field {!r} names instance group {!r}, which resourceconfig.json does not list "
                              "(it lists {})".format(file, names.DISTRIBUTION_GROUPS_HP, name, ", ".join(known)))
    return tuple(value)


def _channels(input_data_config, paths):
    file = "inputdataconfig.json"
    check_env_names(input_data_config, file, "channels", names.CHANNEL_ENV_PREFIX)
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
    AWS_DEFAULT_REGION (``fields.FIELDS`` says which field reads which); it is the only environment
    read here. Raises ``ConfigError`` naming the file and field on bad input.
    """
    paths = Paths(base_dir)
    raw_hps = read_object(paths.hyperparameters_file, "hyperparameter names to values", {})
    resource = read_object(paths.resource_config_file, "the hosts of the job", {})
    input_data = read_object(paths.input_data_config_file, "channel names to their settings", {})
    check_values(resource, "resourceconfig.json")
    check_values(input_data, "inputdataconfig.json")
    decoded, user, reserved = _hyperparameters(raw_hps)
    values = fields.read_all(reserved, environ)
    current, hosts, interface, instance_type, group, groups = _resource(resource)
    distribution = reserved.get(names.DISTRIBUTION_GROUPS_HP)
    if distribution is not None:
        distribution = _distribution_groups(distribution, groups)
    return JobConfig(
        paths=paths, hyperparameters=decoded, user_hyperparameters=user, reserved_hyperparameters=reserved,
        resource_config=resource, input_data_config=input_data, current_host=current, hosts=hosts,
        network_interface_name=interface, current_instance_type=instance_type,
        channels=_channels(input_data, paths), current_instance_group=group, instance_groups=groups,
        distribution_instance_groups=distribution, **values)


def _hyperparameters(raw):
    """hyperparameters.json as read -> (all of them decoded, the user's, the reserved ones), each
    name and value one that the script's argv and environment can carry."""
    file = HYPERPARAMETERS_FILE
    for key in raw:
        if not key:
            raise ConfigError("{}: an empty hyperparameter name".format(file))
    decoded = hp.decode(raw)
    check_values(decoded, file)
    user, reserved = hp.split(decoded)
    for key in user:
        if "=" in key:  # it becomes the environment variable SM_HP_<KEY>
            raise ConfigError("{}: hyperparameter name {!r} contains '=', which no environment variable name "
                              "may".format(file, key))
    check_env_names(user, file, "hyperparameters", names.HP_ENV_PREFIX)
    return decoded, user, reserved


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
    try:
        decoded = hp.decode(read_object(paths.hyperparameters_file, "hyperparameter names to values", {}))
        current, hosts = _resource(read_object(paths.resource_config_file, "the hosts of the job", {}))[:2]
        port = fields.BY_NAME["ps_port"].read(decoded, {})
    except (ConfigError, RecursionError, TypeError, ValueError):
        return None
    name = decoded.get(names.JOB_NAME_HP)
    if len(hosts) < 2:
        return None
    return ChannelFacts(current, hosts, port, name if isinstance(name, str) else None, decoded)


def base_dir_from(environ):
    """The job's base directory, an absolute path: $SAGEMAKER_BASE_DIR unless unset or empty, else
    /opt/ml. Absolute because the user's code runs in ``code/``, where a relative SM_* path would
    name another place."""
    return os.path.abspath(environ.get(names.BASE_DIR_ENV) or DEFAULT_BASE_DIR)
