"""Writing a job's config files the way the platform does (the reader is ``config``): for
``mx-train``'s emulated hosts and for tests."""

import json
import os

from . import hyperparameters as hp
from .config import Paths


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
