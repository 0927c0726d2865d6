"""``train``: the command the platform runs inside the container. One job, start to end."""

import logging
import os
import signal
import sys
from dataclasses import dataclass

from . import code, config, environment, network, plan
from .errors import EXIT_INTERNAL, PipInstallError, ToolkitError, Terminated, UserScriptError
from .failure import clear_stale, write_failure, write_success
from .supervisor import Supervisor, become_subreaper, describe_status, WORKER

log = logging.getLogger("mx_training_toolkit")

STOP_GRACE_ENV = "MX_TRAINING_STOP_GRACE_SECONDS"
HOST_WAIT_ENV = "MX_TRAINING_HOST_WAIT_SECONDS"


@dataclass(frozen=True)
class Settings:
    """The launcher's own knobs, read once from the environment."""

    base_dir: str
    stop_grace: float
    host_wait: float
    address_map: dict

    @classmethod
    def from_environ(cls, environ):
        return cls(
            base_dir=config.base_dir_from(environ),
            stop_grace=_seconds(environ, STOP_GRACE_ENV, 10.0),
            host_wait=_seconds(environ, HOST_WAIT_ENV, 300.0),
            address_map=network.parse_address_map(environ.get(network.HOST_ADDRESSES_ENV, "")),
        )


def _seconds(environ, name, default):
    try:
        return float(environ.get(name, default))
    except ValueError:
        return default


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def setup_logging(level):
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def prepare(settings, environ):
    """Configuration, environment and code -> (env, user_code). Raises ToolkitError subclasses."""
    cfg = config.load(settings.base_dir, environ)
    logging.getLogger().setLevel(cfg.log_level)
    for path in (cfg.paths.model_dir, cfg.paths.output_data_dir, cfg.paths.output_intermediate_dir):
        os.makedirs(path, exist_ok=True)
    env = environment.build(cfg, environ)
    log.info("environment: %s", env.log_summary())
    code.put_in_place(cfg, environ)
    user_code = code.describe(cfg, env.user_args())
    log.info("mode: %s (%s)", "legacy train()/save()" if user_code.legacy else "script", user_code.mode_reason)
    if user_code.argv[0] != sys.executable:
        code.make_executable(cfg)
    return env, user_code


def install(supervisor, env, user_code, process_env):
    for argv in code.install_commands(user_code):
        log.info("pip: %s", " ".join(argv[1:]))
        spec = plan.ProcessSpec("pip", argv, process_env, env.config.paths.code_dir, "[pip] ")
        result = supervisor.run_one(spec)
        if not result.ok:
            raise PipInstallError("`{}` in {} {}".format(" ".join(argv[2:]), spec.cwd, describe_status(result.status)),
                                  detail=_tail_text("pip's stderr", result.stderr_tail))


def _tail_text(what, tail):
    return "Last lines of {}:\n{}".format(what, "\n".join(tail)) if tail else ""


def run_job(settings, environ, supervisor):
    env, user_code = prepare(settings, environ)
    cfg = env.config
    process_env = environment.with_pythonpath({**environ, **env.to_env_vars()}, environ.get("PYTHONPATH"))
    install(supervisor, env, user_code, process_env)
    ps = plan.uses_parameter_server(cfg, user_code.legacy)
    if len(cfg.hosts) > 1:
        addresses = network.wait_for_hosts(cfg.hosts, settings.address_map, settings.host_wait)
    else:
        addresses = {cfg.current_host: settings.address_map.get(cfg.current_host, "127.0.0.1")}
    launch = plan.plan_job(cfg, process_env, user_code.argv, user_code.legacy, addresses, sys.executable)
    log.info("run: %s", " ".join(launch.worker.argv))
    results = supervisor.run(launch.specs)
    failure = next((r for r in results if not r.ok), None)
    if failure is not None:
        raise _failure_error(failure, cfg, ps)
    return 0


def _failure_error(result, cfg, ps):
    who = cfg.user_entry_point if result.role == WORKER else "the {} process".format(result.role)
    where = " on {}".format(result.host) if len(cfg.hosts) > 1 else ""
    message = "{}{} {}{}".format(who, where, describe_status(result.status),
                                 "; " + result.note if result.note else "")
    error = UserScriptError(message, exit_code=result.status or 1,
                            detail=_tail_text("its stderr", result.stderr_tail))
    if result.role != WORKER:
        error.step = "parameter server"
    return error


def main(argv=None):
    """Entry point of ``train``: run the job, write the success or failure file, exit with its status."""
    setup_logging(logging.INFO)
    environ = dict(os.environ)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_terminated)
    become_subreaper()
    settings = None
    supervisor = None
    status = 0
    try:
        settings = Settings.from_environ(environ)
        clear_stale(config.Paths(settings.base_dir))
        supervisor = Supervisor(host="", grace=settings.stop_grace)
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
    except Terminated as t:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        name = signal.Signals(t.signum).name
        log.warning("received %s: stopping the job", name)
        detail = ""
        status = 128 + t.signum
        message = "the launcher received {} before the job finished".format(name)
        if supervisor is not None:
            supervisor.stop(t.signum)
            workers = [c for c in supervisor.children if c.spec.role == WORKER]
            if workers and workers[0].status is not None:
                status = workers[0].status or status
                message += "; the user script {}".format(describe_status(workers[0].status))
                detail = _tail_text("its stderr", tuple(workers[0].tail))
        _write_failure(settings, environ, "stopped", message, detail)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        if supervisor is not None:
            supervisor.stop()
    sys.exit(status)


def _write_failure(settings, environ, step, message, detail):
    base = settings.base_dir if settings else config.base_dir_from(environ)
    write_failure(config.Paths(base), step, message, detail)
