"""``train``: the command the platform runs inside the container. One job, start to end."""

import os
import sys

from . import config, environment, failure, jobstate, masking, names, network, outcome, plan, ports, roles, stacks
from . import settings as settings_mod
from .errors import ConfigError, PipInstallError, Terminated, ToolkitError
from .log import DEBUG, enabled, get_logger, set_level, set_stream, shorten
from .outcome import LAUNCHER, Ending, Facts, JobResult
from .signals import StopSignals, block_stop_signals
from .supervisor import Mailbox, Supervisor, become_subreaper
from .user_code import describe, make_executable, put_in_place
from .watcher import start as start_watcher

log = get_logger("mx_training_toolkit")


# Seconds a host whose configuration failed spends trying to tell the first host: short, since when
# every host has the same bad configuration, the first host never listens and this only delays the end.
REPORT_WAIT = 10.0
HEARTBEAT_NAME = "heartbeat"  # the stall watchdog's heartbeat file, in the supervisor's scratch directory

USAGE = """usage: train [--help]

Run the training job described under $SAGEMAKER_BASE_DIR (default /opt/ml): read
input/config/*.json, export the SM_* environment, fetch and install the code, start the
parameter server or Horovod when the job asks for it, run the entry point, and write
output/success or output/failure. The exit status is the job's (docs/contract.md).
The platform starts it without arguments; a lone "train" argument (what an image whose
ENTRYPOINT is ["train"] receives) is accepted and ignored. Settings are environment
variables (MX_TRAINING_*, SAGEMAKER_*), listed in the README.
"""


def main(argv=None):
    """Entry point of ``train``: run the job, stop whatever is left, write the outcome, exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        exit_now(0)
    block_stop_signals()  # (the console script did already) until the handlers are installed below
    _occupy_closed_streams()
    environ = dict(os.environ)
    watcher = start_watcher()  # before any thread, and before this process becomes a subreaper
    mailbox = Mailbox()
    signals = StopSignals(mailbox.post, mailbox.hurry)  # a second SIGINT: SIGKILL the job now
    signals.install()
    become_subreaper()
    job = _Job(environ, mailbox, watcher, signals, args)
    ending = job.run()
    worker, killed, dumps = job.stop()  # a signal now is recorded, never raised
    ending = ending._replace(signum=signals.signum, worker=worker, worker_killed=killed, hurried=mailbox.hurried,
                             user_failure_file=failure.user_wrote_failure(job.paths),
                             stacks=stacks.text(dumps, job.facts.current_host))
    result = outcome.decide(job.facts, ending)
    if result.ok:
        log.info("job finished successfully")
    else:
        log.error("%s", result.first_line)
    failure.write_outcome(job.paths, result)
    if watcher is not None:
        watcher.close()
    exit_now(result.exit_status)


class _Job:
    """One launch: the steps of the job, each one's failure turned into an ``Ending``."""

    def __init__(self, environ, mailbox, watcher, signals, args=()):
        self.environ = environ
        self.args = args
        self.mailbox = mailbox
        self.watcher = watcher
        self.supervisor = None  # built once this host's name is known (``configure``)
        self.signals = signals
        self.paths = config.Paths(config.base_dir_from(environ))
        self.facts = Facts()
        self.settings = settings_mod.Settings()  # the defaults until the environment is read
        self.policy = None
        self.channel = None
        self.rules = None  # a one-host job's rules, when the stall watchdog needs them (else jobstate's own)
        self.hosts_plan = None
        self.process_env = {}
        self.heartbeat_env = {}  # the stall watchdog's heartbeat file, for every process (empty: no watchdog)

    def run(self):
        """-> the ``Ending``: the run loop's final state and results, or what interrupted it."""
        try:
            # First, even before a stop signal that arrived during start-up is acted on: neither a bad
            # setting below nor an early stop may leave an old reason or an old success standing.
            failure.clear_stale(self.paths)
            with self.signals.interruptible():
                _check_arguments(self.args)
                settings = self.settings = settings_mod.from_environ(self.environ)
                self.paths = config.Paths(settings.base_dir)
                env = self.configure(settings)
                addresses = self.connect_hosts(settings, env)
                user_code = self.prepare_code(env)
            policy = self.policy = jobstate.JobPolicy(env.config.current_host, len(env.config.hosts) > 1,
                                                      settings.linger,
                                                      user_failed=lambda: failure.user_wrote_failure(self.paths))
            self.install(policy, env, user_code)
            if not policy.state.final:
                self.run_processes(policy, settings, env, user_code, addresses)
            return Ending(state=policy.state.value, results=tuple(policy.results))
        except Terminated:
            self.tell_hosts(outcome.stopped_result(self.facts.current_host, self.signals.signum))
            return Ending(state="preparing")
        except ToolkitError as e:
            told = JobResult(LAUNCHER, self.facts.current_host, e.exit_code, (), outcome.first_line(e.step, str(e)))
            if self.channel is None and isinstance(e, ConfigError):
                report_before_joining(self.paths, self.environ, told)
            self.tell_hosts(told)
            return Ending(state="preparing", error=e)
        except Exception as e:  # a bug of ours: still a failure file with the traceback, never a silent exit
            import traceback

            log.exception("internal error")
            return Ending(state="preparing", error=e, traceback=traceback.format_exc())
        finally:
            if self.channel is not None:
                self.channel.close()

    def stop(self):
        """Stop what is left of the job -> (the worker's ``JobResult`` or None, whether it was killed,
        the stacks its processes gave: ``stacks.Dump`` values). Before ``configure`` built the
        supervisor, nothing was started: nothing to stop."""
        if self.supervisor is None:
            return None, False, ()
        self.supervisor.stop(**self.stop_plan()._asdict())
        self.supervisor.remove_scratch()
        return self.supervisor.final_result(roles.WORKER) + (tuple(self.supervisor.stacks),)

    def stop_plan(self):
        """How to stop what is left of the job -> ``jobstate.Stop``."""
        graces = self.settings.stop_grace, self.settings.failure_grace
        if self.policy is None:  # nothing of the job ran (pip, stopped at once)
            return jobstate.stop_plan(jobstate.JobState.PREPARING, self.signals.signum, *graces)
        return self.policy.stop_plan(self.signals.signum, *graces)

    def configure(self, settings):
        """Configuration and environment -> ``TrainingEnv``. Raises ``ConfigError``."""
        cfg = config.load(settings.base_dir, self.environ)
        masking.use(masking.Masker(cfg.hyperparameters))  # from here on, every line we write is masked
        set_level(cfg.log_level)
        for path in (cfg.paths.model_dir, cfg.paths.output_data_dir, cfg.paths.output_intermediate_dir):
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise ConfigError("cannot create the directory {} ({}); the base directory {} is not laid out as "
                                  "a training job's".format(path, e.strerror or e, cfg.paths.base)) from e
        env = environment.build(cfg, self.environ)
        self.facts = Facts(cfg.current_host, len(cfg.hosts) > 1, cfg.user_entry_point, settings.stop_grace)
        # Its grace is the one for what is left of a job that ended; a stop signal's plan gives its own.
        self.supervisor = Supervisor(cfg.current_host, settings.failure_grace, self.mailbox, watcher=self.watcher)
        if settings.stall_timeout is not None:  # the stall watchdog: the workers' output and heartbeat
            from .watchdog import HostProgress

            heartbeat = os.path.join(self.supervisor.scratch(), HEARTBEAT_NAME)
            self.supervisor.progress = HostProgress(heartbeat)
            self.heartbeat_env = {names.HEARTBEAT_FILE_ENV: heartbeat}
        log.info("environment: %s", env.log_summary())
        if enabled(DEBUG):
            log.debug("environment (all of it): %s", env.log_details())
        return env

    def connect_hosts(self, settings, env):
        """Resolve the hosts and, for a multi-host job, open the launchers' channel first, so that a
        failure in any later step on any host (a download, pip) ends the job everywhere. A Horovod
        job's hosts then compare their numbers of ranks (``plan.HostsPlan.check``)."""
        cfg = env.config
        hosts = self.hosts_plan = plan.plan_hosts(cfg, env.num_gpus)
        progress = self.supervisor.progress
        if hosts.channel_port is None:
            hosts.check(cfg)
            if progress is not None:  # the job's rules, here alone: the stall rule needs them in the run loop
                from .relay import Relay

                self.rules = Relay(cfg.current_host, (cfg.current_host,), post=None, stall=settings.stall_timeout,
                                   idle=progress.idle)
            return {cfg.current_host: settings.address_map.get(cfg.current_host, "127.0.0.1")}
        addresses = network.wait_for_hosts(cfg.hosts, settings.address_map, settings.host_wait)
        from . import channel, messages  # only multi-host jobs need sockets

        first = cfg.hosts[0]
        secret = messages.job_secret(cfg.hyperparameters, settings.channel_secret)
        # From the files alone (the sagemaker_job_name hyperparameter, not TRAINING_JOB_NAME): every
        # host derives the same, even a container started by hand without the platform's variables.
        identity = messages.job_identity(cfg.job_name, cfg.hosts, cfg.ps_port)
        if cfg.current_host == first:
            bind = addresses[first] if settings.address_map else ""
            self.channel = channel.Coordinator(cfg.current_host, cfg.hosts, addresses, bind, hosts.channel_port,
                                               self.mailbox.post, settings.host_wait, secret, identity,
                                               hosts.ranks_per_host, settings.stall_timeout,
                                               progress and progress.idle)
        else:
            self.channel = channel.Member(cfg.current_host, first, addresses[first], hosts.channel_port.number,
                                          self.mailbox.post, settings.host_wait, secret, identity,
                                          addresses[cfg.current_host], progress and progress.idle)
        # The channel is open: a host whose count differs ends the job everywhere.
        hosts.check(cfg, getattr(self.channel, "first_ranks_per_host", None))
        return addresses

    def prepare_code(self, env):
        """Put the code in place and decide how it runs -> ``UserCode``."""
        cfg = env.config
        put_in_place(cfg, self.settings)
        user_code = describe(cfg, env.user_args())
        log.info("mode: %s (%s)", "legacy train()/save()" if user_code.legacy else "script", user_code.mode_reason)
        if user_code.kind == "executable":
            make_executable(cfg)
        self.process_env = environment.with_pythonpath({**self.environ, **env.to_env_vars(), **self.heartbeat_env},
                                                       self.environ.get("PYTHONPATH"))
        return user_code

    def install(self, policy, env, user_code):
        """pip, under the same loop as the job: a stop or another host's failure ends it. Which
        commands, and from which index, is ``dependencies``'s (offline first)."""
        if not (user_code.requirements or user_code.is_package):
            return
        from . import dependencies  # only for code with something to install

        def run(argv, extra_env, fatal):
            log.info("pip: %s", " ".join(argv[1:]))
            spec = plan.ProcessSpec(roles.PIP, argv, {**self.process_env, **extra_env}, env.config.paths.code_dir,
                                    "[pip] ")
            result = jobstate.run_helper(policy, self.supervisor, spec, self.channel)
            if fatal and result is not None and not result.ok:
                raise PipInstallError("`{}` in {} {}".format(" ".join(argv[argv.index("pip"):]), spec.cwd,
                                                             outcome.describe_status(result.status, result.signal)),
                                      detail=outcome.tail_text("pip's stderr", result.stderr_tail))
            return result

        dependencies.install(user_code, env.config.paths.code_dir, self.process_env, run)

    def run_processes(self, policy, settings, env, user_code, addresses):
        """Plan this host's part of the job and run it to the policy's decision."""
        cfg = env.config
        launch = plan.plan_job(cfg, self.hosts_plan, user_code, self.process_env, addresses, sys.executable,
                               self.supervisor.scratch(), _importable)
        for port in launch.ports:
            ports.check_free(port, cfg.current_host)
        # Masked before it is shortened: a cut secret would no longer be found in the line.
        log.info("run: %s%s", " ".join(shorten(masking.mask(arg)) for arg in launch.shown), launch.how)
        for note in launch.notes:
            log.info("%s", note)
        jobstate.run(policy, self.supervisor, launch.specs, self.channel or self.rules)

    def tell_hosts(self, result):
        if self.channel is not None:
            self.channel.fail(result)


def report_before_joining(paths, environ, result):
    """This host's configuration failed before it joined the launchers' channel: join it anyway,
    as far as the files allow, just to tell the first host, so that the job ends everywhere now
    instead of when the first host's wait for this one runs out. Best effort, bounded: the
    first host may be this one, unreachable, or configured otherwise (it then fails the job for
    the wrong proof, which names this host too)."""
    facts = config.channel_facts(paths.base)
    if facts is None or facts.current_host == facts.hosts[0]:
        return
    from . import channel, messages

    first = facts.hosts[0]
    # From the environment again: the settings may be what failed.
    secret = messages.job_secret(facts.hyperparameters, settings_mod.channel_secret(environ))
    try:
        address_map = network.parse_address_map(environ.get(names.HOST_ADDRESSES_ENV, ""))
    except ConfigError:
        address_map = {}
    try:
        addresses = network.wait_for_hosts([first, facts.current_host], address_map, REPORT_WAIT)
        port = ports.channel_port(facts.ps_port).number
        member = channel.Member(facts.current_host, first, addresses[first], port, lambda _event: None, REPORT_WAIT,
                                secret,
                                messages.job_identity(facts.job_name, facts.hosts, facts.ps_port),
                                addresses[facts.current_host])
    except (ToolkitError, OSError) as e:
        log.warning("could not tell the launcher on %s of this failure: %s", first, e)
        return
    member.fail(result)
    member.close()
    log.info("told the launcher on %s of this failure", first)


def _occupy_closed_streams():
    """The job needs neither stdout nor stderr: a stream the platform (or a shell's ``>&-``) closed
    is given /dev/null, so that output meant for it is dropped, and no file the launcher opens later
    takes its descriptor. The launcher's own lines then go to the other stream, if that one is open."""
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            closed.add(fd)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)
    if 2 in closed and 1 not in closed:
        set_stream(sys.stdout)


def _importable(module):
    """Whether ``module`` (one a strategy needs, such as horovod) can be imported here."""
    import importlib.util  # milliseconds: only a strategy that needs a module asks

    return importlib.util.find_spec(module) is not None


def _check_arguments(args):
    """``train`` takes no arguments but the ``train`` an ``ENTRYPOINT ["train"]`` image is given."""
    if args and args != ["train"]:
        raise ConfigError("train takes no arguments (see train --help), got {!r}".format(shorten(" ".join(args))))


def exit_now(status):
    """Exit at once: every child is reaped and every file written, so Python's own shutdown
    (about 15 ms of tearing down modules) would only delay the platform seeing the job's end."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


if __name__ == "__main__":
    main()
