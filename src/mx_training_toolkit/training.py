"""``train``: the command the platform runs inside the container. One job, start to end."""

import os
import signal
import sys
from collections import namedtuple

from . import code, config, environment, failure, network, plan
from .errors import EXIT_INTERNAL, ConfigError, PipInstallError, ToolkitError, Terminated, UserScriptError
from .failure import clear_stale, write_failure, write_success
from .log import get_logger, set_level
from .supervisor import (SCHEDULER, SERVER, WORKER, JobResult, StopRequest, Supervisor, become_subreaper,
                         describe_status)

log = get_logger("mx_training_toolkit")

STOP_GRACE_ENV = "MX_TRAINING_STOP_GRACE_SECONDS"
HOST_WAIT_ENV = "MX_TRAINING_HOST_WAIT_SECONDS"
LINGER_ENV = "MX_TRAINING_PS_LINGER_SECONDS"
LEGACY_SUMMARY = "mx_training_toolkit.legacy: "  # the legacy runner's last stderr line on failure


class Settings(namedtuple("Settings", "base_dir stop_grace host_wait linger address_map")):
    """The launcher's own knobs, read once from the environment."""

    __slots__ = ()
    # base_dir: str
    # stop_grace: float
    # host_wait: float
    # linger: float
    # address_map: dict

    @classmethod
    def from_environ(cls, environ):
        return cls(
            base_dir=config.base_dir_from(environ),
            stop_grace=_seconds(environ, STOP_GRACE_ENV, 10.0),
            host_wait=_seconds(environ, HOST_WAIT_ENV, 300.0),
            linger=_seconds(environ, LINGER_ENV, 60.0),
            address_map=network.parse_address_map(environ.get(network.HOST_ADDRESSES_ENV, "")),
        )


def _seconds(environ, name, default):
    try:
        return float(environ.get(name, default))
    except ValueError:
        return default


def configure(settings, environ):
    """Configuration and environment -> ``TrainingEnv``. Raises ``ConfigError``."""
    cfg = config.load(settings.base_dir, environ)
    set_level(cfg.log_level)
    for path in (cfg.paths.model_dir, cfg.paths.output_data_dir, cfg.paths.output_intermediate_dir):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise ConfigError("cannot create the directory {} ({}); the base directory {} is not laid out as "
                              "a training job's".format(path, e.strerror or e, cfg.paths.base)) from e
    env = environment.build(cfg, environ)
    log.info("environment: %s", env.log_summary())
    return env


def prepare_code(cfg, env, environ):
    """Put the code in place and decide how it runs -> ``UserCode``."""
    code.put_in_place(cfg, environ)
    user_code = code.describe(cfg, env.user_args())
    log.info("mode: %s (%s)", "legacy train()/save()" if user_code.legacy else "script", user_code.mode_reason)
    if user_code.kind == "executable":
        code.make_executable(cfg)
    return user_code


def install(supervisor, env, user_code, process_env):
    for argv in code.install_commands(user_code):
        log.info("pip: %s", " ".join(argv[1:]))
        spec = plan.ProcessSpec("pip", argv, process_env, env.config.paths.code_dir, "[pip] ")
        result = supervisor.run_one(spec)
        if result.host != supervisor.host:  # another host of the job failed meanwhile
            raise _failure_error(result, env.config)
        if not result.ok:
            raise PipInstallError("`{}` in {} {}".format(" ".join(argv[argv.index("pip"):]), spec.cwd,
                                                         describe_status(result.status)),
                                  detail=_tail_text("pip's stderr", result.stderr_tail))


def _tail_text(what, tail):
    return "Last lines of {}:\n{}".format(what, "\n".join(tail)) if tail else ""


def run_job(settings, environ, supervisor):
    env = configure(settings, environ)
    cfg = env.config
    supervisor.host = cfg.current_host
    if len(cfg.hosts) > 1:
        addresses = network.wait_for_hosts(cfg.hosts, settings.address_map, settings.host_wait)
    else:
        addresses = {cfg.current_host: settings.address_map.get(cfg.current_host, "127.0.0.1")}
    # Multi-host jobs open the launchers' channel first, so that a failure in any later step on
    # any host (a download, pip) ends the job everywhere instead of leaving the others waiting.
    channel = open_channel(settings, cfg, addresses, supervisor) if len(cfg.hosts) > 1 else None
    try:
        return run_steps(settings, environ, supervisor, env, addresses, channel)
    except ToolkitError as e:
        if channel is not None and e.step != "peer host":
            channel.fail(JobResult("launcher", cfg.current_host, e.exit_code, (),
                                   "{} on {}: {}".format(failure.title(e.step), cfg.current_host, e)))
        raise
    except Terminated as t:
        if channel is not None:
            channel.fail(JobResult("launcher", cfg.current_host, 128 + t.signum, (), "the job was stopped on {} ({})"
                                   .format(cfg.current_host, signal.Signals(t.signum).name)))
        raise
    finally:
        if channel is not None:
            channel.close()


def run_steps(settings, environ, supervisor, env, addresses, channel):
    cfg = env.config
    user_code = prepare_code(cfg, env, environ)
    process_env = environment.with_pythonpath({**environ, **env.to_env_vars()}, environ.get("PYTHONPATH"))
    install(supervisor, env, user_code, process_env)
    ps = plan.uses_parameter_server(cfg, user_code.legacy)
    if ps and cfg.is_scheduler_host:
        from .channel import check_port_free

        check_port_free(cfg.ps_port, cfg.current_host)
    launch = plan.plan_job(cfg, process_env, user_code, addresses, sys.executable,
                           status_file=os.path.join(supervisor.scratch(), "worker-status") if ps else None)
    log.info("run: %s%s", " ".join(launch.worker.argv),
             " (with the parameter server: {})".format(", ".join(s.role for s in launch.roles)) if ps else "")
    results = supervisor.run(launch.specs, settings.linger, channel)
    if results:
        raise _failure_error(results[0], cfg)
    return 0


def open_channel(settings, cfg, addresses, supervisor):
    """The cross-host channel: the first host listens, every other host connects to it."""
    from . import channel as channel_mod  # only multi-host jobs need sockets

    port = plan.coordinator_port(cfg)
    first = cfg.hosts[0]
    if cfg.is_scheduler_host:
        bind = addresses[first] if settings.address_map else ""
        return channel_mod.Coordinator(cfg.current_host, cfg.hosts, bind, port, supervisor.post,
                                       settings.host_wait)
    return channel_mod.Member(cfg.current_host, first, addresses[first], port, supervisor.post, settings.host_wait)


def _failure_error(result, cfg):
    if result.role == "launcher":
        message = result.note
    else:
        who = cfg.user_entry_point if result.role == WORKER else "the {} process".format(result.role)
        where = " on {}".format(result.host) if len(cfg.hosts) > 1 else ""
        message = "{}{} {}{}".format(who, where, describe_status(result.status),
                                     "; " + result.note if result.note else "")
        if result.role == WORKER and result.stderr_tail and result.stderr_tail[-1].startswith(LEGACY_SUMMARY):
            message += ": " + result.stderr_tail[-1][len(LEGACY_SUMMARY):]
    local = result.host == cfg.current_host
    error = UserScriptError(message, exit_code=(result.status or 1) if local else 1,
                            detail=_tail_text("its stderr", result.stderr_tail))
    if result.role in (SCHEDULER, SERVER):
        error.step = "parameter server"
    elif result.role == "launcher":
        error.step = "peer host"
    return error


def main():
    """Entry point of ``train``: run the job, write the success or failure file, exit with its status."""
    environ = dict(os.environ)
    stop = StopRequest()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.on_signal)
    become_subreaper()
    settings = None
    supervisor = None
    status = 0
    try:
        try:
            settings = Settings.from_environ(environ)
            clear_stale(config.Paths(settings.base_dir))
            supervisor = Supervisor(host="", grace=settings.stop_grace, stop_request=stop)
            status = run_job(settings, environ, supervisor)
            write_success(config.Paths(settings.base_dir))
            log.info("job finished successfully")
        except ToolkitError as e:
            status = e.exit_code
            log.error("%s failed: %s", e.step, e)
            _write_failure(settings, environ, e.step, str(e), e.detail)
        except Exception as e:  # a bug of ours: still a failure file with the traceback, never a silent exit
            import traceback

            status = EXIT_INTERNAL
            log.exception("internal error")
            _write_failure(settings, environ, "internal error", "the launcher failed: {!r}".format(e),
                           traceback.format_exc())
    except Terminated as t:  # also when the signal came while a failure above was being written
        status = _stopped(t.signum, settings, environ, supervisor)
    finally:
        if supervisor is not None:
            supervisor.stop()
            supervisor.remove_scratch()
    exit_now(status)


def _stopped(signum, settings, environ, supervisor):
    """Forward the stop to the job, write why it stopped -> the exit status."""
    name = signal.Signals(signum).name
    log.warning("received %s: stopping the job", name)
    status = 128 + signum
    message = "the launcher received {} before the job finished".format(name)
    detail = ""
    if supervisor is not None:
        supervisor.stop(signum)
        worker = next((c for c in supervisor.children if c.spec.role == WORKER), None)
        if worker is not None and worker.status is not None:
            if worker.pgid in supervisor.killed_groups:
                message += "; the user script did not stop within {:.0f} s and was killed".format(supervisor.grace)
            else:
                message += "; the user script {}".format(describe_status(worker.status))
                status = worker.status or status
            detail = _tail_text("its stderr", tuple(worker.tail))
    _write_failure(settings, environ, "stopped", message, detail)
    return status


def exit_now(status):
    """Exit at once: every child is reaped and every file written, so Python's own shutdown
    (about 15 ms of tearing down modules) would only delay the platform seeing the job's end."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def _write_failure(settings, environ, step, message, detail):
    base = settings.base_dir if settings else config.base_dir_from(environ)
    write_failure(config.Paths(base), step, message, detail)


if __name__ == "__main__":
    main()
