"""``train``: the command the platform runs inside the container. One job, start to end."""

import os
import sys

from . import code, config, environment, failure, jobstate, masking, network, outcome, plan, settings as settings_mod
from .errors import ConfigError, PipInstallError, Terminated, ToolkitError
from .log import DEBUG, enabled, get_logger, set_level, set_stream, shorten
from .outcome import LAUNCHER, Ending, Facts, JobResult
from .signals import StopSignals, block_stop_signals
from .supervisor import Supervisor, become_subreaper
from .watcher import start as start_watcher

log = get_logger("mx_training_toolkit")


# Seconds a host whose configuration failed spends trying to tell the first host: short, since when
# every host has the same bad configuration, the first host never listens and this only delays the end.
REPORT_WAIT = 10.0

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
    supervisor = Supervisor(watcher=watcher)
    signals = StopSignals(supervisor.post, supervisor.hurry)  # a second SIGINT: SIGKILL the job now
    signals.install()
    become_subreaper()
    job = _Job(environ, supervisor, signals, args)
    ending = job.run()
    supervisor.stop(**job.stop_plan()._asdict())  # a signal now is recorded, never raised
    supervisor.remove_scratch()
    worker, killed = supervisor.final_result(plan.WORKER)
    ending = ending._replace(signum=signals.signum, worker=worker, worker_killed=killed, hurried=supervisor.hurried,
                             user_failure_file=failure.user_wrote_failure(job.paths))
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

    def __init__(self, environ, supervisor, signals, args=()):
        self.environ = environ
        self.args = args
        self.supervisor = supervisor
        self.signals = signals
        self.paths = config.Paths(config.base_dir_from(environ))
        self.facts = Facts()
        self.settings = settings_mod.Settings()  # the defaults until the environment is read
        self.policy = None
        self.channel = None
        self.process_env = {}

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
                self.report_before_joining(told)
            self.tell_hosts(told)
            return Ending(state="preparing", error=e)
        except Exception as e:  # a bug of ours: still a failure file with the traceback, never a silent exit
            import traceback

            log.exception("internal error")
            return Ending(state="preparing", error=e, traceback=traceback.format_exc())
        finally:
            if self.channel is not None:
                self.channel.close()

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
        self.supervisor.host = cfg.current_host
        log.info("environment: %s", env.log_summary())
        if enabled(DEBUG):
            log.debug("environment (all of it): %s", env.log_details())
        return env

    def connect_hosts(self, settings, env):
        """Resolve the hosts and, for a multi-host job, open the launchers' channel first, so that a
        failure in any later step on any host (a download, pip) ends the job everywhere. A Horovod
        job's hosts then compare their numbers of ranks (``plan.check_ranks``)."""
        cfg = env.config
        ranks = plan.ranks_per_host(cfg, env.num_gpus) if cfg.mpi_enabled else None
        if len(cfg.hosts) == 1:
            if cfg.mpi_enabled:
                plan.check_ranks(cfg, env.num_gpus)
            return {cfg.current_host: settings.address_map.get(cfg.current_host, "127.0.0.1")}
        addresses = network.wait_for_hosts(cfg.hosts, settings.address_map, settings.host_wait)
        from . import channel, messages  # only multi-host jobs need sockets

        port = plan.coordinator_port(cfg)
        first = cfg.hosts[0]
        secret = messages.job_secret(cfg.hyperparameters, self.environ)
        # From the files alone (the sagemaker_job_name hyperparameter, not TRAINING_JOB_NAME): every
        # host derives the same, even a container started by hand without the platform's variables.
        identity = messages.job_identity(cfg.job_name, cfg.hosts, cfg.ps_port)
        if cfg.is_first_host:
            bind = addresses[first] if settings.address_map else ""
            self.channel = channel.Coordinator(cfg.current_host, cfg.hosts, addresses, bind, port,
                                               self.supervisor.post, settings.host_wait, secret, identity, ranks)
        else:
            self.channel = channel.Member(cfg.current_host, first, addresses[first], port, self.supervisor.post,
                                          settings.host_wait, secret, identity, addresses[cfg.current_host])
        if cfg.mpi_enabled:  # the channel is open: a host whose count differs ends the job everywhere
            plan.check_ranks(cfg, env.num_gpus, getattr(self.channel, "first_ranks_per_host", None))
        return addresses

    def prepare_code(self, env):
        """Put the code in place and decide how it runs -> ``UserCode``."""
        cfg = env.config
        code.put_in_place(cfg, self.environ)
        user_code = code.describe(cfg, env.user_args())
        log.info("mode: %s (%s)", "legacy train()/save()" if user_code.legacy else "script", user_code.mode_reason)
        if user_code.kind == "executable":
            code.make_executable(cfg)
        self.process_env = environment.with_pythonpath({**self.environ, **env.to_env_vars()},
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
            spec = plan.ProcessSpec(plan.PIP, argv, {**self.process_env, **extra_env}, env.config.paths.code_dir,
                                    "[pip] ")
            result = jobstate.run_helper(policy, self.supervisor, spec, self.channel)
            if fatal and result is not None and not result.ok:
                raise PipInstallError("`{}` in {} {}".format(" ".join(argv[argv.index("pip"):]), spec.cwd,
                                                             outcome.describe_status(result.status, result.signal)),
                                      detail=outcome.tail_text("pip's stderr", result.stderr_tail))
            return result

        dependencies.install(user_code, env.config.paths.code_dir, self.process_env, run)

    def run_processes(self, policy, settings, env, user_code, addresses):
        cfg = env.config
        ps = plan.joins_parameter_server(cfg, user_code.legacy)
        if cfg.mpi_enabled:
            self.check_horovod(cfg)
        if (ps and cfg.is_scheduler_host) or (cfg.mpi_enabled and cfg.current_host == cfg.hosts[0]):
            from .channel import check_port_free  # the scheduler's, or the rendezvous server's port

            check_port_free(cfg.ps_port, cfg.current_host)
        # Python code runs through a runner, which records its real status and the error that ended it.
        runs_a_runner = user_code.kind != "executable" or cfg.mpi_enabled
        status_file = os.path.join(self.supervisor.scratch(), "worker-status") if runs_a_runner else None
        launch = plan.plan_job(cfg, self.process_env, user_code, addresses, sys.executable, status_file=status_file,
                               num_gpus=env.num_gpus)
        # Masked before it is shortened: a cut secret would no longer be found in the line.
        shown = user_code.argv(sys.executable, record_status=runs_a_runner, readable=True)
        if cfg.mpi_enabled:
            how = " (Horovod: ranks {} of {})".format(", ".join(str(w.rank) for w in launch.workers),
                                                      len(cfg.hosts) * len(launch.workers))
        elif ps:
            how = " (with the parameter server: {})".format(", ".join(s.role for s in launch.roles))
        else:
            how = ""
        log.info("run: %s%s", " ".join(shorten(masking.mask(arg)) for arg in shown), how)
        self.log_waiting(cfg, user_code, addresses, launch)
        jobstate.run(policy, self.supervisor, launch.specs, self.channel)

    @staticmethod
    def check_horovod(cfg):
        """Horovod must be installed; say which of the mpirun options are honoured without mpirun."""
        import importlib.util

        if importlib.util.find_spec("horovod") is None:
            raise ConfigError("hyperparameters.json: field 'sagemaker_mpi_enabled' is true, but Horovod is not "
                              "installed in this environment (scripts/install_horovod.sh builds and installs it)")
        options = plan.horovod_options(cfg.mpi_custom_options)
        if cfg.mpi_custom_options.strip():
            log.info("horovod: sagemaker_mpi_custom_mpi_options: NCCL_DEBUG=%s; set for every rank: %s; ignored (no "
                     "mpirun here): %s", options.nccl_debug, ", ".join(sorted(options.variables)) or "nothing",
                     " ".join(options.ignored) or "nothing")

    def log_waiting(self, cfg, user_code, addresses, launch):
        """Say what the next seconds of silence are: ps-lite prints nothing while each process
        imports MXNet and waits for the scheduler to hear from every node."""
        if launch.parameter_server:
            n = len(cfg.ps_hosts)
            log.info("parameter server: %s import MXNet (a few seconds), then wait until the scheduler on %s "
                     "(%s:%d) has heard from all %d servers and %d workers", ", ".join(s.role for s in launch.specs),
                     cfg.ps_hosts[0], addresses[cfg.ps_hosts[0]], cfg.ps_port, n, n)
        elif plan.uses_parameter_server(cfg, user_code.legacy):
            log.info("parameter server: %s (instance group %s) is not in the distribution instance groups %s: "
                     "its script runs on its own", cfg.current_host, cfg.current_instance_group,
                     ", ".join(cfg.distribution_groups))

    def report_before_joining(self, result):
        """This host's configuration failed before it joined the launchers' channel: join it anyway,
        as far as the files allow, just to tell the first host, so that the job ends everywhere now
        instead of when the first host's wait for this one runs out. Best effort, bounded: the
        first host may be this one, unreachable, or configured otherwise (it then fails the job for
        the wrong proof, which names this host too)."""
        facts = config.channel_facts(self.paths.base)
        if facts is None or facts.current_host == facts.hosts[0]:
            return
        from . import channel, messages

        first = facts.hosts[0]
        try:
            address_map = network.parse_address_map(self.environ.get(network.HOST_ADDRESSES_ENV, ""))
        except ConfigError:
            address_map = {}
        try:
            addresses = network.wait_for_hosts([first, facts.current_host], address_map, REPORT_WAIT)
            member = channel.Member(facts.current_host, first, addresses[first], plan.port_after(facts.ps_port),
                                    lambda _event: None, REPORT_WAIT,
                                    messages.job_secret(facts.hyperparameters, self.environ),
                                    messages.job_identity(facts.job_name, facts.hosts, facts.ps_port),
                                    addresses[facts.current_host])
        except (ToolkitError, OSError) as e:
            log.warning("could not tell the launcher on %s of this failure: %s", first, e)
            return
        member.fail(result)
        member.close()
        log.info("told the launcher on %s of this failure", first)

    def tell_hosts(self, result):
        if self.channel is not None:
            self.channel.fail(result)


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
