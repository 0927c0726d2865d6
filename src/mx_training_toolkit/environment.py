"""Frozen ``TrainingEnv`` = job config + host facts (GPUs, usable CPUs), built once per launch."""

import json
import math
import os
from typing import NamedTuple, Optional

from . import hyperparameters as hp
from . import names
from .config import JobConfig
from .errors import ConfigError
from .log import get_logger
from .masking import mask_secrets

log = get_logger(__name__)

FRAMEWORK_MODULE = "mx_training_toolkit.training:main"
# Linux's limits on what a new process gets (fs/exec.c): one argument or environment string may
# hold MAX_ARG_STRLEN bytes with its closing NUL; all of them together, with a pointer each, a
# quarter of the stack size limit, at least MAX_ARG_STRLEN and at most ARG_SPACE_CAP.
MAX_ARG_STRLEN = 131072
ARG_SPACE_CAP = 6 * 1024 * 1024
ARG_SPACE_RESERVE = 16384  # kept for what is added later (ps-lite's variables, the runner's argv, ...)
POINTER = 8
# The variables that only repeat the hyperparameters: a script can do without them (it gets its
# arguments and can read hyperparameters.json), so they are the ones left out when space is short.
HP_COPIES = ("SM_TRAINING_ENV", "SM_HPS", "SM_USER_ARGS")
# Plain variables the reference exports besides SM_* (it sets them in its own environment).
CURRENT_HOST_ENV = "CURRENT_HOST"
JOB_NAME_ENV = "SAGEMAKER_JOB_NAME"
REGION_ENV = "SAGEMAKER_REGION"


class TrainingEnv(NamedTuple):
    """What the user's code is told: the job's config plus this host's facts, from which every
    SM_* variable is made."""

    config: JobConfig
    num_gpus: int = 0  # GPUs this job may use (CUDA_VISIBLE_DEVICES honoured)
    num_cpus: int = 1  # CPUs this process may use (affinity, cgroup quota)
    arg_room: Optional[int] = None  # bytes the SM_* variables and the arguments may take (None: unchecked)

    def user_args(self):
        """The user hyperparameters rendered as command-line arguments (docs/contract.md section 2)."""
        return hp.to_cmd_args(self.config.user_hyperparameters)

    def channel_input_dirs(self):
        """Every channel's directory, Pipe-mode channels included (as the reference's)."""
        return {name: self.config.paths.channel_dir(name) for name in self.config.channels}

    def job_name(self):
        """The job's name as the reference's ``job_name``: the platform's TRAINING_JOB_NAME, else
        the ``sagemaker_job_name`` hyperparameter (jobs run by hand), else None."""
        return self.config.platform_job_name or self.config.job_name

    def plain_variables(self):
        """CURRENT_HOST, SAGEMAKER_JOB_NAME and SAGEMAKER_REGION as the reference sets them: the
        hyperparameters' job name (not the platform's), and the hyperparameters' region, else
        AWS_DEFAULT_REGION (where boto3 would look; boto3 is not imported for it), else empty."""
        c = self.config
        return {CURRENT_HOST_ENV: c.current_host, JOB_NAME_ENV: c.job_name or "",
                REGION_ENV: c.region or c.default_region or ""}

    def instance_group_fields(self):
        """The heterogeneous-cluster fields of SM_TRAINING_ENV (and, but for distribution_hosts,
        is_master, master_hostname and topology, of SM_*), by the reference's rules: without
        ``instance_groups`` in resourceconfig.json the lists are empty and the current group is
        ``homogeneousCluster``."""
        c = self.config
        raw_groups = c.resource_config.get("instance_groups", [])  # validated by config.load
        current_hosts = next((g.hosts for g in c.instance_groups if g.name == c.current_instance_group), ())
        return {
            "current_instance_group": c.current_instance_group,
            "current_instance_group_hosts": list(current_hosts),
            "distribution_hosts": list(c.distribution_hosts),
            "distribution_instance_groups": list(c.distribution_groups),
            "instance_groups": [g.name for g in c.instance_groups],
            "instance_groups_dict": {g["instance_group_name"]: dict(g) for g in raw_groups},
            "is_hetero": len(c.instance_groups) > 1,
            "is_master": c.current_host == c.master_hostname,
            "master_hostname": c.master_hostname,
            "topology": c.resource_config.get("topology", []),
        }

    def training_env(self):
        """The SM_TRAINING_ENV object: everything about the job, lower-case keys."""
        c, p = self.config, self.config.paths
        return {
            "additional_framework_parameters": hp.framework_params(c.reserved_hyperparameters),
            "all_hyperparameters": dict(c.hyperparameters),
            "channel_input_dirs": self.channel_input_dirs(),
            "current_host": c.current_host,
            "current_instance_type": c.current_instance_type,
            "framework_module": FRAMEWORK_MODULE,
            "hosts": list(c.hosts),
            "hyperparameters": dict(c.user_hyperparameters),
            "input_config_dir": p.input_config_dir,
            "input_data_config": dict(c.input_data_config),
            "input_dir": p.input_dir,
            # Neither SageMaker's model-parallel nor its data-parallel launchers exist for MXNet.
            "is_modelparallel_enabled": None,
            "is_smddpmprun_installed": False,
            "is_smddprun_installed": False,
            "job_name": self.job_name(),
            "log_level": c.log_level,
            "model_dir": p.model_dir,
            "module_dir": c.submit_directory,
            "module_name": c.module_name,
            "network_interface_name": c.network_interface_name,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "num_neurons": num_neurons(c.current_instance_type),
            "output_data_dir": p.output_data_dir,
            "output_dir": p.output_dir,
            "output_intermediate_dir": p.output_intermediate_dir,
            "resource_config": dict(c.resource_config),
            "user_args": self.user_args(),
            "user_entry_point": c.user_entry_point,
            **self.instance_group_fields(),
        }

    def to_env_vars(self):
        """Every SM_* variable (docs/contract.md section 3), the reference's ``plain_variables``
        and PYTHONPATH, as strings."""
        c, p = self.config, self.config.paths
        env = self.training_env()
        flat = {
            "model_dir": p.model_dir,
            "input_dir": p.input_dir,
            "input_config_dir": p.input_config_dir,
            "output_dir": p.output_dir,
            "output_data_dir": p.output_data_dir,
            "output_intermediate_dir": p.output_intermediate_dir,
            "channels": list(c.channels),
            "hps": dict(c.user_hyperparameters),
            "user_args": env["user_args"],
            "framework_params": env["additional_framework_parameters"],
            "current_host": c.current_host,
            "hosts": list(c.hosts),
            "current_instance_type": c.current_instance_type,
            "current_instance_group": env["current_instance_group"],
            "current_instance_group_hosts": env["current_instance_group_hosts"],
            "instance_groups": env["instance_groups"],
            "instance_groups_dict": env["instance_groups_dict"],
            "distribution_instance_groups": env["distribution_instance_groups"],
            "is_hetero": env["is_hetero"],
            "network_interface_name": c.network_interface_name,
            "num_gpus": self.num_gpus,
            "num_cpus": self.num_cpus,
            "num_neurons": env["num_neurons"],
            "log_level": c.log_level,
            "user_entry_point": c.user_entry_point,
            "module_name": c.module_name,
            "module_dir": c.submit_directory or "",
            "framework_module": FRAMEWORK_MODULE,
            "resource_config": dict(c.resource_config),
            "input_data_config": dict(c.input_data_config),
            "training_env": env,
        }
        if env["topology"]:  # the reference exports it only when resourceconfig.json has one
            flat["topology"] = env["topology"]
        for name, path in self.channel_input_dirs().items():
            flat["channel_" + name] = path
        for name, value in c.user_hyperparameters.items():
            flat["hp_" + name] = value
        out = {"SM_" + key.upper(): _env_value(value) for key, value in flat.items()}
        out.update(self.plain_variables())
        out["PYTHONPATH"] = p.code_dir
        return self._fit(out)

    def _fit(self, env_vars):
        """``env_vars`` less what cannot be given to a process: each variable over Linux's limit
        for one string, then, while the variables and the arguments together would not fit in
        ``arg_room``, the largest copies of the hyperparameters. One warning line for each."""
        sizes = {name: _size(name + "=" + value) for name, value in env_vars.items()}
        kept = dict(env_vars)
        for name in sorted(kept):
            if sizes[name] > MAX_ARG_STRLEN:
                del kept[name]
                log.warning("environment: %s left out: %d bytes, over Linux's limit of %d for one variable%s",
                            name, sizes[name], MAX_ARG_STRLEN, _READ_INSTEAD)
        if self.arg_room is None:
            return kept
        sizes = {name: size + POINTER for name, size in sizes.items()}
        total = sum(sizes[name] for name in kept) + _args_size(self.user_args())
        copies = [n for n in kept if n in HP_COPIES or n.startswith(names.HP_ENV_PREFIX)]
        for name in sorted(copies, key=lambda n: (-sizes[n], n)):
            if total <= self.arg_room:
                break
            del kept[name]
            log.warning("environment: %s left out: with it, the arguments and variables take %d bytes, over the %d "
                        "this host allows (a quarter of the stack size limit, less the inherited environment)%s",
                        name, total, self.arg_room, _READ_INSTEAD)
            total -= sizes[name]
        return kept

    def log_summary(self):
        """The essentials of the environment in one line, for the INFO log: hosts, channels, GPUs
        and CPUs, the entry point (no hyperparameter values)."""
        c = self.config
        return "{} of {} host{} ({}); channels: {}; {} GPU{}, {} CPU{}; entry point {}; {} hyperparameter{} " \
               "(the whole environment is logged at level 10)".format(
                   c.current_host, len(c.hosts), _s(c.hosts), _names(c.hosts), _names(c.channels) or "none",
                   self.num_gpus, _s(self.num_gpus), self.num_cpus, _s(self.num_cpus), c.user_entry_point,
                   len(c.user_hyperparameters), _s(c.user_hyperparameters))

    def log_details(self):
        """The whole resolved environment as one JSON text (SM_TRAINING_ENV's content), with the
        values of secret-looking hyperparameters, at any depth, masked."""
        env = self.training_env()
        env["hyperparameters"] = mask_secrets(env["hyperparameters"])
        env["all_hyperparameters"] = mask_secrets(env["all_hyperparameters"])
        env["user_args"] = hp.to_cmd_args(env["hyperparameters"])
        return json.dumps(env, sort_keys=True)


_READ_INSTEAD = "; the script still gets its arguments and can read input/config/hyperparameters.json"


def _s(count):
    return "" if (count if isinstance(count, int) else len(count)) == 1 else "s"


def _names(items, limit=8):
    items = list(items)
    more = " and {} more".format(len(items) - limit) if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _env_value(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _size(text):
    """The bytes of one argument or NAME=VALUE string as the kernel counts them: its closing NUL too."""
    return len(os.fsencode(text)) + 1


def _args_size(args):
    """What ``args`` take of a new process's space for arguments and environment: each string and its pointer."""
    return sum(_size(a) + POINTER for a in args)


def check_arguments(user_hyperparameters, arg_room=None):
    """Raise ``ConfigError`` when the hyperparameters cannot be given to the script as arguments:
    one of them over Linux's limit for one argument (named), or all of them over ``arg_room``."""
    for name in sorted(user_hyperparameters):
        size = max(_size(a) for a in hp.to_cmd_args({name: user_hyperparameters[name]}))
        if size > MAX_ARG_STRLEN:
            raise ConfigError("hyperparameters.json: field {!r} is {} bytes as a command-line argument, over Linux's "
                              "limit of {} for one argument (its closing NUL included); pass such data in a channel "
                              "or a file with the code instead".format(name, size, MAX_ARG_STRLEN))
    size = _args_size(hp.to_cmd_args(user_hyperparameters))
    if arg_room is not None and size > arg_room:
        raise ConfigError("hyperparameters.json: the user hyperparameters make {} bytes of command-line arguments, "
                          "over the {} this host allows (a quarter of the stack size limit, less the inherited "
                          "environment); pass such data in a channel or a file with the code instead"
                          .format(size, arg_room))


def arg_room(environ, stack_limit):
    """Bytes that the SM_* variables and the script's arguments may take in a new process on this
    host: Linux's space for arguments and environment (``stack_limit`` / 4, from 128 KiB to
    6 MiB; a negative ``stack_limit`` is unlimited), less ``environ`` (what every process of the
    job inherits) and ``ARG_SPACE_RESERVE``."""
    space = ARG_SPACE_CAP if stack_limit < 0 else min(max(stack_limit // 4, MAX_ARG_STRLEN), ARG_SPACE_CAP)
    inherited = _args_size(name + "=" + value for name, value in environ.items())
    return space - inherited - ARG_SPACE_RESERVE


def with_pythonpath(env_vars, inherited):
    """Put the code dir first on PYTHONPATH, keeping what the image already had after it."""
    out = dict(env_vars)
    if inherited:
        out["PYTHONPATH"] = env_vars["PYTHONPATH"] + os.pathsep + inherited
    return out


# ---- host facts -------------------------------------------------------------------------------


def num_neurons(instance_type):
    """AWS Neuron cores, the reference's way without its ``neuron-ls`` (absent from MXNet images):
    64 on a trn2.48xlarge, which the reference counts without asking the device, else 0."""
    return 64 if "trn2.48xlarge" in instance_type else 0


def count_gpus(cuda_visible_devices, physical):
    """GPUs this job may use: ``physical`` narrowed by CUDA_VISIBLE_DEVICES (CUDA's own rules:
    the list stops at the first invalid entry; empty, or -1 first, means none)."""
    if physical <= 0:
        return 0
    if cuda_visible_devices is None:
        return physical
    count = 0
    for item in cuda_visible_devices.split(","):
        item = item.strip()
        if not item or item.startswith("-"):
            break
        if not (item.isdigit() and int(item) < physical) and not item.startswith(("GPU-", "MIG-")):
            break
        count += 1
    return min(count, physical)


def physical_gpus(proc_root="/proc/driver/nvidia/gpus", dev_root="/dev"):
    """GPUs the NVIDIA driver reports, without running nvidia-smi; 0 when there is no driver."""
    try:
        return len(os.listdir(proc_root))
    except OSError:
        pass
    try:
        return sum(1 for name in os.listdir(dev_root) if name[len("nvidia"):].isdigit() and name.startswith("nvidia"))
    except OSError:
        return 0


def count_cpus(affinity, cpu_max=None, cfs_quota=None, cfs_period=None):
    """CPUs this process may really use: its affinity, capped by a cgroup CPU quota (v2 ``cpu.max``
    or v1 ``cfs_quota_us``/``cfs_period_us``), rounded up, at least 1."""
    limit = affinity
    quota = period = None
    if cpu_max:
        parts = cpu_max.split()
        if len(parts) == 2 and parts[0] != "max":
            quota, period = parts
    elif cfs_quota and cfs_period and cfs_quota.strip() != "-1":
        quota, period = cfs_quota, cfs_period
    try:
        if quota is not None and int(period) > 0 and int(quota) > 0:
            limit = min(limit, math.ceil(int(quota) / int(period)))
    except ValueError:
        pass
    return max(1, limit)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def usable_cpus():
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return count_cpus(
        affinity,
        _read("/sys/fs/cgroup/cpu.max"),
        _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )


def _stack_limit():
    import resource  # only the launcher needs it, once

    limit = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return -1 if limit == resource.RLIM_INFINITY else limit


def build(config, environ):
    """Build the training environment once: config plus this host's GPU and CPU counts and the
    room for the SM_* variables. Raises ``ConfigError`` when the hyperparameters cannot be
    passed to the script as arguments (``check_arguments``)."""
    room = arg_room(environ, _stack_limit())
    check_arguments(config.user_hyperparameters, room)
    gpus = count_gpus(environ.get("CUDA_VISIBLE_DEVICES"), physical_gpus())
    return TrainingEnv(config=config, num_gpus=gpus, num_cpus=usable_cpus(), arg_room=room)
