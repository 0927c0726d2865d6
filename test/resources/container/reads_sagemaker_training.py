"""Reads the job through the reference's import line and writes what it read, beside SM_*, to
output/data/environment-<host>.json."""
import json
import os

from sagemaker_training import environment

env = environment.Environment()
read = {name: getattr(env, name) for name in (
    "hosts", "current_host", "current_instance_group", "current_instance_group_hosts", "instance_groups",
    "instance_groups_dict", "distribution_hosts", "distribution_instance_groups", "is_hetero", "channel_input_dirs",
    "hyperparameters", "model_dir", "output_data_dir", "output_dir", "num_gpus", "num_cpus", "master_hostname",
    "is_master")}
read["item_hosts"] = env["hosts"]
read["module_num_cpus"] = environment.num_cpus()
read["os_cpu_count"] = os.cpu_count()
read["sm"] = {name: os.environ.get(name) for name in ("SM_NUM_CPUS", "SM_NUM_GPUS", "SM_CURRENT_HOST", "SM_HOSTS",
                                                      "SM_CURRENT_INSTANCE_GROUP", "SM_MODEL_DIR")}
out = os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "environment-{}.json".format(env.current_host))
with open(out, "w") as f:
    json.dump(read, f, indent=1, sort_keys=True)
print("sagemaker_training read", env.current_host, env.current_instance_group)
