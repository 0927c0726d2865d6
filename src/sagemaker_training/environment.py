"""``Environment``: the job as the reference toolkit's ``sagemaker_training.environment.Environment``
shows it to a script, built from the same files and by the same code as the launcher's
SM_TRAINING_ENV (``mx_training_toolkit.environment``).

Two values differ from the reference's on purpose, and equal this job's SM_* instead:
``num_cpus`` is the number of CPUs this process may use (its affinity and a cgroup CPU quota,
``SM_NUM_CPUS``), where the reference returns ``os.cpu_count()`` (every CPU of the machine, quota
or not); ``num_gpus`` is counted from the driver's device list narrowed by CUDA_VISIBLE_DEVICES
(``SM_NUM_GPUS``), where the reference runs ``nvidia-smi``. Importing this module reads nothing
and creates nothing; ``Environment()`` reads the job's files under $SAGEMAKER_BASE_DIR (/opt/ml).
"""

import json
import os

from mx_training_toolkit import config as _config, environment as _environment


def _training_env(environ):
    cfg = _config.load(_config.base_dir_from(environ), environ)
    gpus = _environment.count_gpus(environ.get("CUDA_VISIBLE_DEVICES"), _environment.physical_gpus())
    return _environment.TrainingEnv(config=cfg, num_gpus=gpus, num_cpus=_environment.usable_cpus())


class Environment:
    """The job's environment, as attributes (``env.hosts``, ``env.channel_input_dirs``,
    ``env.instance_groups_dict`` ...) and as a mapping (``env["hosts"]``, ``env.properties()``).
    Raises ``mx_training_toolkit.errors.ConfigError`` when the job's files are missing or invalid."""

    def __init__(self, environ=None):
        built = _training_env(os.environ if environ is None else environ)
        self._values = built.training_env()
        self._env_vars = built.to_env_vars()

    def __getattr__(self, name):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError("Environment has no attribute {!r}".format(name)) from None

    def __getitem__(self, name):
        return self._values[name]

    def __contains__(self, name):
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def keys(self):
        return self._values.keys()

    def properties(self):
        """The names of the values, sorted."""
        return sorted(self._values)

    def to_env_vars(self):
        """The SM_* variables of this job (the launcher exports the same to the script)."""
        return dict(self._env_vars)

    def to_cmd_args(self):
        """The user hyperparameters as command-line arguments (``--name value``)."""
        return list(self._values["user_args"])

    def __str__(self):
        return json.dumps(self._values, sort_keys=True, default=str)

    __repr__ = __str__


def num_cpus():
    """CPUs this process may use (affinity, cgroup quota): the job's SM_NUM_CPUS."""
    return _environment.usable_cpus()


def num_gpus():
    """GPUs visible to this process: the job's SM_NUM_GPUS."""
    return _environment.count_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"), _environment.physical_gpus())
