"""Frozen ``TrainingEnv`` = job config + host facts (GPUs, usable CPUs), built once per launch."""

import json
import math
import os
from typing import NamedTuple

from . import hyperparameters as hp
from .config import JobConfig

FRAMEWORK_MODULE = "mx_training_toolkit.training:main"
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential")
MASK = "********"


class TrainingEnv(NamedTuple):
    """What the user's code is told: the job's config plus this host's facts, from which every
    SM_* variable is made."""

    config: JobConfig
    num_gpus: int = 0  # GPUs this job may use (CUDA_VISIBLE_DEVICES honoured)
    num_cpus: int = 1  # CPUs this process may use (affinity, cgroup quota)

    def user_args(self):
        """The user hyperparameters rendered as command-line arguments (docs/contract.md section 2)."""
        return hp.to_cmd_args(self.config.user_hyperparameters)

    def channel_input_dirs(self):
        """Every channel's directory, Pipe-mode channels included (as the reference's)."""
        return {name: self.config.paths.channel_dir(name) for name in self.config.channels}

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
            "job_name": c.job_name,
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
        """Every SM_* variable (docs/contract.md section 3) plus PYTHONPATH, as strings."""
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
        out["PYTHONPATH"] = p.code_dir
        return out

    def log_summary(self):
        """The resolved environment as one JSON text, with secret-looking hyperparameters masked."""
        env = self.training_env()
        env["hyperparameters"] = mask_secrets(env["hyperparameters"])
        env["all_hyperparameters"] = mask_secrets(env["all_hyperparameters"])
        env["user_args"] = hp.to_cmd_args(env["hyperparameters"])
        return json.dumps(env, sort_keys=True)


def _env_value(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def looks_secret(name):
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(hyperparameters):
    return {k: (MASK if looks_secret(k) else v) for k, v in hyperparameters.items()}


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


def build(config, environ):
    """Build the training environment once: config plus this host's GPU and CPU counts."""
    gpus = count_gpus(environ.get("CUDA_VISIBLE_DEVICES"), physical_gpus())
    return TrainingEnv(config=config, num_gpus=gpus, num_cpus=usable_cpus())
