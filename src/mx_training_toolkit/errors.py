"""Error types. Each carries ``step`` (the failure file's first words) and ``exit_code``.

``str(error)`` is the user-facing first line: it names the file and field, or the step.
"""

# Exit statuses for failures that are ours, not the user script's (which keeps its own).
EXIT_CONFIG = 2
EXIT_CODE_DOWNLOAD = 3
EXIT_PIP_INSTALL = 4
EXIT_HOSTS = 5
# The stall watchdog ended the job: GNU timeout's status for a command it timed out.
EXIT_STALLED = 124
EXIT_INTERNAL = 70


class ToolkitError(Exception):
    """Base of every error the launcher turns into a failure file."""

    step = "internal error"
    exit_code = EXIT_INTERNAL

    def __init__(self, message, *, exit_code=None, detail=""):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        self.detail = detail  # extra text (e.g. a stderr tail) written below the first line


class ConfigError(ToolkitError):
    step = "configuration"
    exit_code = EXIT_CONFIG


class CodeDownloadError(ToolkitError):
    step = "code download"
    exit_code = EXIT_CODE_DOWNLOAD


class PipInstallError(ToolkitError):
    step = "pip install"
    exit_code = EXIT_PIP_INSTALL


class HostResolutionError(ToolkitError):
    step = "host resolution"
    exit_code = EXIT_HOSTS


class HostChannelError(ToolkitError):
    """The launchers of a multi-host job could not reach each other."""

    step = "host channel"
    exit_code = EXIT_HOSTS


class UserScriptError(ToolkitError):
    step = "user script"


class ParameterServerError(ToolkitError):
    step = "parameter server"


class HorovodError(ToolkitError):
    """Horovod's rendezvous server (see ``roles``) could not start or failed."""

    step = "horovod"


class Terminated(BaseException):
    """Raised by the signal handler in the main thread; carries the signal number."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
