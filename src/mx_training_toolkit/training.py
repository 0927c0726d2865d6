"""``train``: the command the platform runs inside the container. One job, start to end."""

import os
import sys

from . import code, config, environment, failure, jobstate, masking, network, outcome, plan, settings as settings_mod
from .errors import ConfigError, PipInstallError, Terminated, ToolkitError
from .log import DEBUG, enabled, get_logger, set_level, shorten
from .outcome import LAUNCHER, Ending, Facts, JobResult
from .signals import StopSignals, forwarded
from .supervisor import Supervisor, become_subreaper

log = get_logger("mx_training_toolkit")


def main():
    """Entry point of ``train``: run the job, stop whatever is left, write the outcome, exit with its status."""
    environ = dict(os.environ)
    supervisor = Supervisor()
    signals = StopSignals(supervisor.post)
    signals.install()
    become_subreaper()
    job = _Job(environ, supervisor, signals)
    ending = job.run()
    supervisor.stop(forwarded(signals.signum))  # a signal now is recorded, never raised
    supervisor.remove_scratch()
    worker, killed = supervisor.final_result(plan.WORKER)
    ending = ending._replace(signum=signals.signum, worker=worker, worker_killed=killed,
                             user_failure_file=failure.user_wrote_failure(job.paths))
    result = outcome.decide(job.facts, ending)
    if result.ok:
        log.info("job finished successfully")
    else:
        log.error("%s", result.first_line)
    failure.write_outcome(job.paths, result)
    exit_now(result.exit_status)


class _Job:
    """One launch: the steps of the job, each one's failure turned into an ``Ending``."""

    def __init__(self, environ, supervisor, signals):
        self.environ = environ
        self.supervisor = supervisor
        self.signals = signals
        self.paths = config.Paths(config.base_dir_from(environ))
        self.facts = Facts()
        self.channel = None
        self.process_env = {}

    def run(self):
        """-> the ``Ending``: the run loop's final state and results, or what interrupted it."""
        try:
            with self.signals.interruptible():
                settings = settings_mod.from_environ(self.environ)
                self.paths = config.Paths(settings.base_dir)
                failure.clear_stale(self.paths)
                env = self.configure(settings)
                addresses = self.connect_hosts(settings, env.config)
                user_code = self.prepare_code(env)
            policy = jobstate.JobPolicy(env.config.current_host, len(env.config.hosts) > 1, settings.linger)
            self.install(policy, env, user_code)
            if not policy.state.final:
                self.run_processes(policy, settings, env, user_code, addresses)
            return Ending(state=policy.state.value, results=tuple(policy.results))
        except Terminated:
            self.tell_hosts(outcome.stopped_result(self.facts.current_host, self.signals.signum))
            return Ending(state="preparing")
        except ToolkitError as e:
            self.tell_hosts(JobResult(LAUNCHER, self.facts.current_host, e.exit_code, (),
                                      outcome.first_line(e.step, str(e))))
            return Ending(state="preparing", error=e)
        except Exception as e:  # a bug of ours: still a failure file with the traceback, never a silent exit
            import traceback

            log.error("internal error:\n%s", traceback.format_exc())
            return Ending(state="preparing", error=e, traceback=traceback.format_exc())
        finally:
            if self.channel is not None:
                self.channel.close()

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
        self.supervisor.grace = settings.stop_grace
        log.info("environment: %s", env.log_summary())
        if enabled(DEBUG):
            log.debug("environment (all of it): %s", env.log_details())
        return env

    def connect_hosts(self, settings, cfg):
        """Resolve the hosts and, for a multi-host job, open the launchers' channel first, so that a
        failure in any later step on any host (a download, pip) ends the job everywhere."""
        if len(cfg.hosts) == 1:
            return {cfg.current_host: settings.address_map.get(cfg.current_host, "127.0.0.1")}
        addresses = network.wait_for_hosts(cfg.hosts, settings.address_map, settings.host_wait)
        from . import channel, messages  # only multi-host jobs need sockets

        port = plan.coordinator_port(cfg)
        first = cfg.hosts[0]
        secret = messages.job_secret(cfg.hyperparameters, self.environ)
        identity = messages.job_identity(cfg.job_name, cfg.hosts, cfg.ps_port)
        if cfg.is_first_host:
            bind = addresses[first] if settings.address_map else ""
            self.channel = channel.Coordinator(cfg.current_host, cfg.hosts, addresses, bind, port,
                                               self.supervisor.post, settings.host_wait, secret, identity)
        else:
            self.channel = channel.Member(cfg.current_host, first, addresses[first], port, self.supervisor.post,
                                          settings.host_wait, secret, identity, addresses[cfg.current_host])
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
        """pip, under the same loop as the job: a stop or another host's failure ends it."""
        for argv in code.install_commands(user_code):
            log.info("pip: %s", " ".join(argv[1:]))
            spec = plan.ProcessSpec(plan.PIP, argv, self.process_env, env.config.paths.code_dir, "[pip] ")
            result = jobstate.run_helper(policy, self.supervisor, spec, self.channel)
            if result is None:
                return
            if not result.ok:
                raise PipInstallError("`{}` in {} {}".format(" ".join(argv[argv.index("pip"):]), spec.cwd,
                                                             outcome.describe_status(result.status, result.signal)),
                                      detail=outcome.tail_text("pip's stderr", result.stderr_tail))

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
        launch = plan.plan_job(cfg, self.process_env, user_code, addresses, sys.executable, status_file=status_file)
        # Masked before it is shortened: a cut secret would no longer be found in the line.
        shown = user_code.argv(sys.executable, record_status=runs_a_runner, readable=True)
        if cfg.mpi_enabled:
            how = " (Horovod: ranks {} of {})".format(", ".join(str(w.rank) for w in launch.workers),
                                                      len(cfg.hosts) * cfg.mpi_processes_per_host)
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
        variables, ignored = plan.horovod_options(cfg.mpi_custom_options)
        if variables or ignored:
            log.info("horovod: sagemaker_mpi_custom_mpi_options: set for every rank: %s; ignored (no mpirun here): %s",
                     ", ".join(sorted(variables)) or "nothing", " ".join(ignored) or "nothing")

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

    def tell_hosts(self, result):
        if self.channel is not None:
            self.channel.fail(result)


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
