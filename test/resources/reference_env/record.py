"""Record what the reference exports, as fixtures for test/unit/test_reference_env.py.

Run it with the python of a virtual environment holding the reference (sagemaker-training 5.1.4 and
sagemaker-mxnet-training 4.3.0, e.g. the one benchmarks/launch_overhead.py creates):

    ~/.cache/mx-training-toolkit/bench-ref-venv/bin/python test/resources/reference_env/record.py

It writes, beside itself:

* ``one_host_groups.json``: a one-host job whose resourceconfig.json has instance groups, run by the
  reference's own ``train`` command; every ``SM_*`` variable the user's script saw.
* ``scenarios.json``: the instance-group variables of several jobs, seen from several hosts, from the
  reference's ``Environment`` built in this process.
* ``plain_variables.json``: ``CURRENT_HOST``, ``SAGEMAKER_JOB_NAME`` and ``SAGEMAKER_REGION`` (which the
  reference sets in its own environment, so every process it starts inherits them) and
  ``SM_TRAINING_ENV``'s ``job_name``, for jobs with and without the hyperparameters and the
  platform's variables they come from.

Give file names (without ``.json``) to record only those: ``record.py plain_variables``.

The base directory is written as ``<BASE>`` in the recorded values. Nothing touches the network.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_MARK = "<BASE>"

ONE_HOST = {
    "hyperparameters": {"sagemaker_program": "dump_env.py",
                        "sagemaker_submit_directory": "s3://bucket/job-1/source/sourcedir.tar.gz",
                        "sagemaker_container_log_level": 20, "sagemaker_region": "us-west-2",
                        "epochs": 3, "learning-rate": 0.1, "optimizer": "sgd"},
    "resource_config": {"current_host": "algo-1", "current_group_name": "train1",
                        "current_instance_type": "ml.c5.xlarge", "hosts": ["algo-1"],
                        "instance_groups": [{"instance_group_name": "train1", "instance_type": "ml.c5.xlarge",
                                             "hosts": ["algo-1"]}],
                        "network_interface_name": "eth0"},
    "input_data_config": {"train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                                    "RecordWrapperType": "None"}},
}

DUMP_SCRIPT = """import json, os
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "env.json"), "w") as f:
    json.dump({k: v for k, v in os.environ.items() if k.startswith("SM_")}, f, indent=1, sort_keys=True)
"""

RUN_REFERENCE_TRAIN = """import socket, sys
_real = socket.gethostbyname
socket.gethostbyname = lambda host: "127.0.0.1" if host.startswith("algo-") else _real(host)
from sagemaker_training.cli.train import main
sys.exit(main())
"""

TWO_GROUPS = [{"instance_group_name": "train1", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1", "algo-2"]},
              {"instance_group_name": "train2", "instance_type": "ml.m5.large", "hosts": ["algo-3"]}]
THREE_HOSTS = ["algo-1", "algo-2", "algo-3"]


def _resource(current, hosts, groups=None, group=None, instance_type="ml.c5.xlarge", **extra):
    rc = {"current_host": current, "hosts": hosts, "current_instance_type": instance_type,
          "network_interface_name": "eth0"}
    if group is not None:
        rc["current_group_name"] = group
    if groups is not None:
        rc["instance_groups"] = groups
    rc.update(extra)
    return rc


PS = {"sagemaker_parameter_server_enabled": True}
SCENARIOS = {
    "homogeneous, no instance_groups, algo-2": (_resource("algo-2", ["algo-1", "algo-2"]), {}),
    "homogeneous, no instance_groups, parameter server": (_resource("algo-2", ["algo-1", "algo-2"]), PS),
    "homogeneous, no instance_groups, distribution groups named": (
        _resource("algo-1", ["algo-1", "algo-2"]), dict(PS, sagemaker_distribution_instance_groups=["train1"])),
    "homogeneous, platform group, parameter server": (
        _resource("algo-2", ["algo-1", "algo-2"], group="homogeneousCluster",
                  groups=[{"instance_group_name": "homogeneousCluster", "instance_type": "ml.c5.xlarge",
                           "hosts": ["algo-2", "algo-1"]}]), PS),
    "heterogeneous, algo-1": (_resource("algo-1", THREE_HOSTS, TWO_GROUPS, "train1"), {}),
    "heterogeneous, algo-3": (_resource("algo-3", THREE_HOSTS, TWO_GROUPS, "train2", "ml.m5.large"), {}),
    "heterogeneous, parameter server, no groups named, algo-3": (
        _resource("algo-3", THREE_HOSTS, TWO_GROUPS, "train2", "ml.m5.large"), PS),
}
for _host, _group in (("algo-1", "train1"), ("algo-2", "train1"), ("algo-3", "train2")):
    SCENARIOS["heterogeneous, parameter server on train1, " + _host] = (
        _resource(_host, THREE_HOSTS, TWO_GROUPS, _group), dict(PS, sagemaker_distribution_instance_groups=["train1"]))
SCENARIOS["heterogeneous, parameter server on train2, algo-1"] = (
    _resource("algo-1", THREE_HOSTS, TWO_GROUPS, "train1"), dict(PS, sagemaker_distribution_instance_groups=["train2"]))
SCENARIOS["heterogeneous, distribution groups without the parameter server, algo-2"] = (
    _resource("algo-2", THREE_HOSTS, TWO_GROUPS, "train1"), {"sagemaker_distribution_instance_groups": ["train1"]})
SCENARIOS["topology given"] = (
    _resource("algo-1", ["algo-1"], topology=[{"hostName": "algo-1", "capacityUnitId": "cu-1"}]), {})
SCENARIOS["trn2.48xlarge"] = (_resource("algo-1", ["algo-1"], instance_type="ml.trn2.48xlarge"), {})

# What the scenarios record: the instance-group variables and SM_TRAINING_ENV keys.
SCENARIO_VARIABLES = ("SM_CURRENT_INSTANCE_GROUP", "SM_CURRENT_INSTANCE_GROUP_HOSTS", "SM_INSTANCE_GROUPS",
                      "SM_INSTANCE_GROUPS_DICT", "SM_DISTRIBUTION_INSTANCE_GROUPS", "SM_IS_HETERO",
                      "SM_NUM_NEURONS", "SM_TOPOLOGY", "SM_CURRENT_INSTANCE_TYPE")
SCENARIO_KEYS = ("current_instance_group", "current_instance_group_hosts", "distribution_hosts",
                 "distribution_instance_groups", "instance_groups", "instance_groups_dict", "is_hetero",
                 "is_master", "master_hostname", "num_neurons", "topology", "is_modelparallel_enabled",
                 "is_smddpmprun_installed", "is_smddprun_installed")


def _write_job(base, job):
    os.makedirs(os.path.join(base, "input", "config"))
    os.makedirs(os.path.join(base, "code"))
    os.makedirs(os.path.join(base, "output", "data"))  # the platform creates it; the reference does not
    for name in job["input_data_config"]:
        os.makedirs(os.path.join(base, "input", "data", name))
    files = {"hyperparameters.json": {k: json.dumps(v) for k, v in job["hyperparameters"].items()},
             "resourceconfig.json": job["resource_config"], "inputdataconfig.json": job["input_data_config"]}
    for name, content in files.items():
        with open(os.path.join(base, "input", "config", name), "w") as f:
            json.dump(content, f)
    with open(os.path.join(base, "code", "dump_env.py"), "w") as f:
        f.write(DUMP_SCRIPT)


def _unbase(value, base):
    return json.loads(json.dumps(value).replace(base, BASE_MARK))


def record_one_host(root):
    base = os.path.join(root, "one-host")
    _write_job(base, ONE_HOST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "PYTHON", "TRAINING_"))}
    env.update(SAGEMAKER_BASE_DIR=base, SAGEMAKER_TRAINING_MODULE="sagemaker_mxnet_container.training:main")
    # The reference waits without end until every host name resolves, and algo-1 resolves only on
    # the platform's network: its own train command runs here with algo-* resolving to loopback.
    subprocess.run([sys.executable, "-c", RUN_REFERENCE_TRAIN], env=env, check=True, stdin=subprocess.DEVNULL,
                   timeout=120)
    with open(os.path.join(base, "output", "data", "env.json")) as f:
        seen = json.load(f)
    return dict(ONE_HOST, environ=_unbase(seen, base))


def record_scenarios(root):
    os.environ["SAGEMAKER_BASE_DIR"] = os.path.join(root, "scenarios")
    from sagemaker_training import environment

    out = {}
    for name, (resource, hps) in SCENARIOS.items():
        env = environment.Environment(resource_config=resource, input_data_config={"train": {}},
                                      hyperparameters=dict(hps, sagemaker_program="train.py"))
        variables = env.to_env_vars()
        training = json.loads(variables["SM_TRAINING_ENV"])
        out[name] = {"resource_config": resource, "hyperparameters": hps,
                     "variables": {k: variables[k] for k in SCENARIO_VARIABLES if k in variables},
                     "training_env": {k: training[k] for k in SCENARIO_KEYS}}
    return out


# (hyperparameters, the platform's variables) -> what the reference exports.
PLAIN_CASES = {
    "hyperparameters give both": ({"sagemaker_job_name": "hp-job", "sagemaker_region": "eu-west-1"},
                                  {"TRAINING_JOB_NAME": "platform-job", "AWS_DEFAULT_REGION": "us-east-2"}),
    "only the platform's variables": ({}, {"TRAINING_JOB_NAME": "platform-job", "AWS_DEFAULT_REGION": "us-east-2"}),
    "nothing": ({}, {}),
    "only the hyperparameters": ({"sagemaker_job_name": "hp-job", "sagemaker_region": "eu-west-1"}, {}),
}
PLAIN_VARIABLES = ("CURRENT_HOST", "SAGEMAKER_JOB_NAME", "SAGEMAKER_REGION")


def record_plain_variables(root):
    os.environ["SAGEMAKER_BASE_DIR"] = os.path.join(root, "plain")
    os.environ["AWS_CONFIG_FILE"] = os.path.join(root, "no-aws-config")  # the region only from the variable
    from sagemaker_training import environment

    out = {}
    for name, (hps, platform) in PLAIN_CASES.items():
        for variable in PLAIN_VARIABLES + ("TRAINING_JOB_NAME", "AWS_DEFAULT_REGION", "AWS_REGION"):
            os.environ.pop(variable, None)
        os.environ.update(platform)
        resource = _resource("algo-2", ["algo-1", "algo-2"])
        env = environment.Environment(resource_config=resource, input_data_config={"train": {}},
                                      hyperparameters=dict(hps, sagemaker_program="train.py"))
        training = json.loads(env.to_env_vars()["SM_TRAINING_ENV"])
        out[name] = {"resource_config": resource, "hyperparameters": hps, "environ": platform,
                     "variables": {k: os.environ[k] for k in PLAIN_VARIABLES}, "job_name": training["job_name"]}
    return out


def main():
    wanted = sys.argv[1:] or ["one_host_groups", "scenarios", "plain_variables"]
    files = []
    with tempfile.TemporaryDirectory() as root:
        if "one_host_groups" in wanted:
            files.append(("one_host_groups.json", "job", record_one_host(root)))
        if "scenarios" in wanted:
            files.append(("scenarios.json", "cases", record_scenarios(root)))
        if "plain_variables" in wanted:
            files.append(("plain_variables.json", "cases", record_plain_variables(root)))
    from importlib import metadata

    recorded_with = {name: metadata.version(name) for name in ("sagemaker-training", "sagemaker-mxnet-training")}
    for name, key, content in files:
        with open(os.path.join(HERE, name), "w") as f:
            json.dump({"recorded_with": recorded_with, "base": BASE_MARK, key: content}, f, indent=1,
                      sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
