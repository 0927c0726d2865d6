"""``mx-train``: run a training job on this machine, on one host or on N emulated hosts.

Each emulated host gets its own base directory, its own loopback address (127.0.0.2, 127.0.0.3, ...)
and its own ``train`` launcher; host names are resolved through a map passed to the launchers, so
``/etc/hosts`` is never edited. Without ``--code``, the bundled example job runs on generated data.
"""

import argparse
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time

from .errors import Terminated
from .network import HOST_ADDRESSES_ENV
from .supervisor import ProcessSpec, Supervisor

EXAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "examples", "linear_regression")
LAUNCHER = "mx_training_toolkit.training"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="mx-train", description=__doc__.split("\n\n")[0])
    p.add_argument("--code", help="directory (or .tar.gz) with the training code; default: the bundled example")
    p.add_argument("--entry-point", default="train.py", help="script to run, inside --code (default train.py)")
    p.add_argument("--hosts", type=int, default=1, help="number of emulated hosts (default 1)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", type=_key_value,
                   help="a hyperparameter; VALUE is JSON when it parses as JSON, else a string")
    p.add_argument("--channel", action="append", default=[], metavar="NAME=DIR", type=_key_value,
                   help="an input channel")
    p.add_argument("--parameter-server", action="store_true", help="start the MXNet parameter server")
    p.add_argument("--legacy", action="store_true", help="force legacy train()/save() mode")
    p.add_argument("--ps-port", type=int, help="scheduler port (default: a free one)")
    p.add_argument("--base-dir", help="where the hosts' base directories go (default: a new temporary directory, "
                                      "kept so that its model and output can be read)")
    args = p.parse_args(argv)
    if args.hosts < 1 or args.hosts > 200:
        p.error("--hosts must be between 1 and 200")
    for name, directory in args.channel:
        if not os.path.isdir(directory):
            p.error("--channel {}={}: not a directory".format(name, directory))
    if args.code and args.base_dir:
        code, base = os.path.realpath(args.code), os.path.realpath(args.base_dir)
        if base == code or base.startswith(code + os.sep):
            p.error("--base-dir must not be inside --code (the code is copied into it)")
    return args


def _key_value(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE, got {!r}".format(text))
    return key, value


def _hp_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def free_port_pair():
    """A port P such that P and P+1 (the launchers' channel) are both free on this machine."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("", port))
                b.bind(("", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports found")


def generate_example_data(directory, rows=512, seed=7):
    """CSV rows x1,x2,x3,y with y = 2*x1 - 3*x2 + 0.5*x3 + 1 + noise."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    with open(os.path.join(directory, "data.csv"), "w") as f:
        for _ in range(rows):
            x = [rng.uniform(-1, 1) for _ in range(3)]
            y = 2 * x[0] - 3 * x[1] + 0.5 * x[2] + 1 + rng.gauss(0, 0.01)
            f.write(",".join("{:.5f}".format(v) for v in x + [y]) + "\n")


def host_names(n):
    return ["algo-{}".format(i + 1) for i in range(n)]


def write_host(base, host, hosts, hyperparameters, channels):
    """One emulated host's base directory: the three config files and its channels."""
    config_dir = os.path.join(base, "input", "config")
    os.makedirs(config_dir, exist_ok=True)
    with open(os.path.join(config_dir, "hyperparameters.json"), "w") as f:
        json.dump({k: json.dumps(v) for k, v in hyperparameters.items()}, f, indent=1)
    with open(os.path.join(config_dir, "resourceconfig.json"), "w") as f:
        json.dump({"current_host": host, "hosts": hosts, "network_interface_name": "lo"}, f)
    with open(os.path.join(config_dir, "inputdataconfig.json"), "w") as f:
        json.dump({name: {"TrainingInputMode": "File"} for name in channels}, f)
    for name, source in channels.items():
        os.makedirs(os.path.join(base, "input", "data"), exist_ok=True)
        link = os.path.join(base, "input", "data", name)
        if os.path.islink(link):  # from an earlier run with the same --base-dir
            os.unlink(link)
        os.symlink(os.path.abspath(source), link)


def plan_hosts(args, root):
    """-> list of (host, base_dir, env) for the launchers, after writing their base directories."""
    hosts = host_names(args.hosts)
    channels = dict(args.channel)
    hps = {k: _hp_value(v) for k, v in args.hp}
    code = args.code
    if code is None:
        if not os.path.isdir(EXAMPLE_DIR):
            raise SystemExit("mx-train: the bundled example is not at {}; pass --code".format(EXAMPLE_DIR))
        code = EXAMPLE_DIR
        if "train" not in channels:
            channels["train"] = os.path.join(root, "example-data")
            generate_example_data(channels["train"])
        if args.hosts > 1:
            hps.setdefault("kvstore", "dist_sync")
            args.parameter_server = True
    hps["sagemaker_program"] = args.entry_point
    hps["sagemaker_submit_directory"] = os.path.abspath(code)
    hps["_ps_port"] = args.ps_port or free_port_pair()
    if args.parameter_server:
        hps["sagemaker_parameter_server_enabled"] = True
    if args.legacy:
        hps["sagemaker_mxnet_legacy_mode"] = True
    addresses = {h: "127.0.0.{}".format(i + 2) for i, h in enumerate(hosts)}
    out = []
    for host in hosts:
        base = os.path.join(root, host)
        write_host(base, host, hosts, hps, channels)
        env = dict(os.environ)
        env.update({"SAGEMAKER_BASE_DIR": base, HOST_ADDRESSES_ENV: json.dumps(addresses), "PYTHONUNBUFFERED": "1"})
        out.append((host, base, env))
    return out


def run_hosts(supervisor, launchers, stop_after_failure=30.0):
    """Run one launcher per host; -> the job's exit status (the root cause's, else 0)."""
    for host, base, env in launchers:
        supervisor.start(ProcessSpec(host, (sys.executable, "-m", LAUNCHER), env, base, "{} | ".format(host)))
    statuses = {}
    failures = []  # hosts in the order their launchers failed
    deadline = None
    while len(statuses) < len(launchers):
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        event = supervisor.next_event(timeout)
        if event is None:  # hosts still running long after another failed: the channel should have ended them
            supervisor.stop()
            break
        if event.kind == "exit":
            statuses[event.role] = event.status
            if event.status != 0:
                failures.append(event.role)
                if deadline is None:
                    deadline = time.monotonic() + stop_after_failure
    for host, base, _env in launchers:
        status = statuses.get(host, 1)
        reason = ""
        failure = os.path.join(base, "output", "failure")
        if os.path.exists(failure):
            with open(failure, encoding="utf-8", errors="replace") as f:
                reason = ": " + f.readline().strip()
        print("mx-train: {} exited with status {}{}".format(host, status, reason), file=sys.stderr)
    return job_status([statuses.get(h, 1) for h in failures])


def job_status(failed_statuses):
    """The job's status from its failed launchers' statuses, in the order they failed. A launcher
    whose job was ended by another host's failure exits 1, so the first other status is the root
    cause's own (a script's exit code, 128+N for a signal)."""
    if not failed_statuses:
        return 0
    return next((s for s in failed_statuses if s != 1), 1)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = args.base_dir or tempfile.mkdtemp(prefix="mx-train-")
    os.makedirs(root, exist_ok=True)
    # The launchers run in sessions of their own (a terminal's Ctrl-C does not reach them):
    # stopping them is this command's job, and each forwards the stop to its whole job.
    supervisor = Supervisor(host="local", grace=30.0)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, supervisor.stop_request.on_signal)
    status = 1
    try:
        launchers = plan_hosts(args, root)
        print("mx-train: {} host(s) under {}".format(len(launchers), root), file=sys.stderr)
        status = run_hosts(supervisor, launchers)
        if status == 0:
            print("mx-train: the job succeeded; model in {}".format(os.path.join(launchers[0][1], "model")),
                  file=sys.stderr)
    except Terminated as t:
        print("mx-train: interrupted; stopping every host", file=sys.stderr)
        status = 128 + t.signum
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop(signal.SIGTERM)
    sys.exit(status)
