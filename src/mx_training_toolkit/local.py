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
import sys
import tempfile
import time

from . import jobstate, names
from .outcome import SIGNAL
from .plan import ProcessSpec
from .ports import free_ps_port
from .roles import WORKER
from .signals import StopSignals, forwarded
from .supervisor import Supervisor


EXAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "examples", "linear_regression")
LAUNCHER = "mx_training_toolkit.training"


def parse_args(argv):
    """``mx-train``'s arguments -> an ``argparse.Namespace`` (``groups``: a dict of instance group
    names to host counts, empty without ``--group``). Bad arguments exit with status 2 and an argparse
    error, before anything starts."""
    # No abbreviations: `--host 2` must be an error, not a silent `--hosts 2`.
    p = argparse.ArgumentParser(prog="mx-train", description=__doc__.split("\n\n")[0].replace("``", ""),
                                allow_abbrev=False)
    p.add_argument("--code", help="directory (or .tar.gz) with the training code; default: the bundled example")
    p.add_argument("--entry-point", default="train.py", help="script to run, inside --code (default train.py)")
    p.add_argument("--hosts", type=int, help="number of emulated hosts (default 1, or the sum of the --group counts)")
    p.add_argument("--group", action="append", default=[], metavar="NAME=COUNT", type=_key_value,
                   help="an instance group of COUNT hosts (a heterogeneous cluster; hosts are numbered group by "
                        "group), described in each host's resourceconfig.json as the platform does; name the groups "
                        "that train together with --hp 'sagemaker_distribution_instance_groups=[\"NAME\"]'")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", type=_key_value,
                   help="a hyperparameter; VALUE is JSON when it parses as JSON, else a string")
    p.add_argument("--channel", action="append", default=[], metavar="NAME=DIR", type=_key_value,
                   help="an input channel")
    p.add_argument("--parameter-server", action="store_true", help="start the MXNet parameter server")
    p.add_argument("--horovod", type=int, metavar="N", help="distribute with Horovod, N ranks per host (the "
                                                           "platform's mpi option; needs Horovod installed)")
    p.add_argument("--legacy", action="store_true", help="force legacy train()/save() mode")
    p.add_argument("--ps-port", type=int, help="scheduler port (default: a free one)")
    p.add_argument("--base-dir", help="where the hosts' base directories go (default: a new temporary directory, "
                                      "kept so that its model and output can be read)")
    args = p.parse_args(argv)
    args.groups = _groups(p, args.group)
    if args.groups and args.hosts is not None and args.hosts != sum(args.groups.values()):
        p.error("--hosts {} does not match the --group counts, which add up to {}".format(
            args.hosts, sum(args.groups.values())))
    if args.hosts is None:
        args.hosts = sum(args.groups.values()) or 1
    if args.hosts < 1 or args.hosts > 200:
        p.error("--hosts must be between 1 and 200")
    if args.horovod is not None and not 1 <= args.horovod <= 64:
        p.error("--horovod must be between 1 and 64 ranks per host")
    if args.horovod is not None and args.parameter_server:
        p.error("--horovod and --parameter-server are two ways to distribute a job: choose one")
    if args.code is not None and not (os.path.isdir(args.code) or os.path.isfile(args.code)):
        p.error("--code {}: no such directory or file".format(args.code))
    for name, directory in args.channel:
        if not os.path.isdir(directory):
            p.error("--channel {}={}: not a directory".format(name, directory))
    if args.base_dir is not None:
        if not args.base_dir:
            p.error("--base-dir must not be empty")
        if os.path.exists(args.base_dir) and not os.path.isdir(args.base_dir):
            p.error("--base-dir {}: not a directory".format(args.base_dir))
        # The launchers run elsewhere (their code directories): every path they are given is absolute.
        args.base_dir = os.path.abspath(args.base_dir)
    if args.code and args.base_dir:
        code, base = os.path.realpath(args.code), os.path.realpath(args.base_dir)
        if base == code or base.startswith(code + os.sep):
            p.error("--base-dir must not be inside --code (the code is copied into it)")
    return args


def _groups(parser, pairs):
    """``--group NAME=COUNT`` pairs -> dict of names to counts, in the order given."""
    groups = {}
    for name, count in pairs:
        if name in groups:
            parser.error("--group {}: the group is given twice".format(name))
        if not count.isdigit() or int(count) < 1:
            parser.error("--group {}={}: COUNT must be a whole number of hosts, at least 1".format(name, count))
        groups[name] = int(count)
    return groups


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


def group_hosts(groups):
    """Instance group names to counts -> names to host names, numbered group by group."""
    out, start = {}, 1
    for name, count in groups.items():
        out[name] = ["algo-{}".format(i) for i in range(start, start + count)]
        start += count
    return out


def write_host(base, host, hosts, hyperparameters, channels, groups=None):
    """One emulated host's base directory: the three config files and its channels. With
    ``groups`` (names to host names), resourceconfig.json describes the instance groups."""
    from .jobfiles import group_resource_config, write_job

    if groups:
        resource = group_resource_config(host, groups, network_interface_name="lo")
    else:
        resource = {"current_host": host, "hosts": hosts, "network_interface_name": "lo"}
    write_job(base, hyperparameters, resource, {name: {"TrainingInputMode": "File"} for name in channels})
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
    hps[names.PROGRAM_HP] = args.entry_point
    hps[names.SUBMIT_DIR_HP] = os.path.abspath(code)
    hps[names.PS_PORT_HP] = args.ps_port or free_ps_port()
    if args.parameter_server:
        hps[names.PS_ENABLED_HP] = True
    if args.horovod is not None:  # what the SDK writes for distribution={'mpi': {...}}
        hps[names.MPI_ENABLED_HP] = True
        hps[names.MPI_PROCESSES_HP] = args.horovod
    if args.legacy:
        hps[names.LEGACY_MODE_HP] = True
    addresses = {h: "127.0.0.{}".format(i + 2) for i, h in enumerate(hosts)}
    groups = group_hosts(args.groups)
    # This run's hosts, and no one else, share it.
    secret = os.environ.get(names.CHANNEL_SECRET_ENV) or os.urandom(16).hex()
    out = []
    for host in hosts:
        base = os.path.join(root, host)
        write_host(base, host, hosts, hps, channels, groups)
        env = dict(os.environ)
        env.update({names.BASE_DIR_ENV: base, names.HOST_ADDRESSES_ENV: json.dumps(addresses),
                    names.CHANNEL_SECRET_ENV: secret, "PYTHONUNBUFFERED": "1"})
        out.append((host, base, env))
    return out


def launcher_limits(environ):
    """-> (how long mx-train waits for its launchers once it forwarded a stop signal, how long for
    the other hosts once one failed). Both exceed the launchers' own graces (read from the same
    environment as theirs) by what the platform leaves them after the default stop grace: with
    the default settings mx-train waits for a stop as the platform does, 120 s. An unusable setting
    is the launchers' to report: mx-train then waits as for the defaults."""
    from .errors import ConfigError
    from .settings import DEFAULT_STOP_GRACE, PLATFORM_STOP_WINDOW, Settings, from_environ

    try:
        settings = from_environ(environ)
    except ConfigError:
        settings = Settings()
    margin = PLATFORM_STOP_WINDOW - DEFAULT_STOP_GRACE
    # A host whose launcher failed may have been stopped: the others then get the stop grace too.
    return settings.stop_grace + margin, max(settings.stop_grace, settings.failure_grace) + margin


def run_hosts(supervisor, launchers, stop_after_failure=30.0):
    """Run one launcher per host, decided by the policy a host uses for its own processes
    (``jobstate``): each launcher is one of the job's workers, so the first to fail decides (every
    launcher of a failed job exits with the root cause's status) and a stop signal stops. After a
    failure the other launchers get ``stop_after_failure`` seconds to end by themselves (the channel
    ends them). -> the policy."""
    specs = [ProcessSpec(WORKER, (sys.executable, "-m", LAUNCHER), env, base, "{} | ".format(host), rank=i)
             for i, (host, base, env) in enumerate(launchers)]
    policy = jobstate.run(jobstate.JobPolicy("local"), supervisor, specs)
    if policy.state == jobstate.JobState.FAILED:
        deadline = time.monotonic() + stop_after_failure
        while any(child.result() is None for child in supervisor.children):
            event = supervisor.next_event(max(0.0, deadline - time.monotonic()))
            if event is None or event.kind == SIGNAL:  # still running long after: the channel should have ended them
                break
    return policy


def exit_status(policy, signum):
    """The job's exit status, as ``outcome`` decides a host's: the root cause's, or 128+N after a stop."""
    from .outcome import Ending, Facts, decide

    ending = Ending(state="stopped", signum=signum) if signum else Ending(policy.state.value, tuple(policy.results))
    return decide(Facts("local", multi_host=True), ending).exit_status


def report(launchers, statuses):
    """One line per host: its launcher's exit status and its failure file's first line."""
    for host, base, _env in launchers:
        status = statuses.get(host)
        reason = ""
        failure = os.path.join(base, "output", "failure")
        if os.path.exists(failure):
            with open(failure, encoding="utf-8", errors="replace") as f:
                reason = ": " + f.readline().strip()
        print("mx-train: {} {}{}".format(host, "was stopped" if status is None else
                                         "exited with status {}".format(status), reason), file=sys.stderr)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = args.base_dir or tempfile.mkdtemp(prefix="mx-train-")
    os.makedirs(root, exist_ok=True)
    # The launchers run in sessions of their own (a terminal's Ctrl-C, a closed terminal's SIGHUP
    # do not reach them): stopping them is this command's job, and each forwards the stop to its job.
    stop_wait, failure_wait = launcher_limits(os.environ)
    supervisor = Supervisor(host="local", grace=stop_wait)
    # A second Ctrl-C is forwarded too: a launcher that is already stopping then SIGKILLs its job at once.
    signals = StopSignals(supervisor.post, lambda: supervisor.send(signal.SIGINT))
    signals.install()
    launchers = plan_hosts(args, root)
    print("mx-train: {} host(s) under {}".format(len(launchers), root), file=sys.stderr)
    policy = run_hosts(supervisor, launchers, failure_wait)
    signum = signals.signum
    if signum:
        print("mx-train: received {}; stopping every host (Ctrl-C again: kill their jobs at once)".format(
            signal.Signals(signum).name), file=sys.stderr)
    supervisor.stop(forwarded(signum))
    status = exit_status(policy, signum)
    statuses = {}
    for child in supervisor.children:
        result = child.result()
        if result is not None:
            statuses[launchers[child.spec.rank][0]] = result.status
    report(launchers, statuses)
    if status == 0:
        print("mx-train: the job succeeded; model in {}".format(os.path.join(launchers[0][1], "model")),
              file=sys.stderr)
    sys.exit(status)
