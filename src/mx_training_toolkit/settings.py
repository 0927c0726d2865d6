"""The launcher's own settings (docs/contract.md section 7): read once from the environment, validated.

A setting that is set but unusable (``inf``, ``nan``, ``-5``, ``ten``) is a configuration error naming
the variable, its value and what is expected; it is never replaced by the default behind the
user's back. Unset or empty means the default.
"""

from types import MappingProxyType
from typing import Mapping, NamedTuple, Optional

from . import config, names, network
from .errors import ConfigError

DAY = 86400.0
WEEK = 7 * DAY

# The platform (StopTrainingJob, MaxRuntimeInSeconds, a spot interruption) sends SIGTERM and SIGKILLs
# the container PLATFORM_STOP_WINDOW seconds later. A stop signal gives the job all of it but what the
# launchers need after the grace to SIGKILL, reap and write the outcome (measured: docs/contract.md).
PLATFORM_STOP_WINDOW = 120.0
DEFAULT_STOP_GRACE = 105.0
# Once the job has failed (here or on another host) or finished, what is left of it is only stopped:
# a failed job must not take two minutes longer to end.
DEFAULT_FAILURE_GRACE = 10.0
DEFAULT_HOST_WAIT = 300.0
# Once every worker of the job is done, the scheduler and servers of a kvstore job exit within
# milliseconds; roles the script never used (no dist kvstore) wait for workers that never come.
DEFAULT_LINGER = 3.0


class Settings(NamedTuple):
    """The launcher's own knobs. Durations are finite numbers of seconds, at least 0."""

    base_dir: str = config.DEFAULT_BASE_DIR  # the job's base directory
    stop_grace: float = DEFAULT_STOP_GRACE  # after a stop signal: from forwarding it to the workers to SIGKILL
    failure_grace: float = DEFAULT_FAILURE_GRACE  # after a failure (or the job's end): from SIGTERM to SIGKILL
    host_wait: float = DEFAULT_HOST_WAIT  # for host names to resolve and the hosts' launchers to connect
    linger: float = DEFAULT_LINGER  # for the scheduler and servers to exit once every worker is done; then stopped
    address_map: Mapping[str, str] = MappingProxyType({})  # host name -> address, used instead of DNS
    s3_timeout: Optional[float] = None  # each S3 request's connect and read timeout; None: download's defaults
    s3_endpoint: Optional[str] = None  # for s3:// code; None: AWS's own endpoint for the region
    channel_secret: Optional[str] = None  # the key of the launchers' channel; None: derived from the job
    stall_timeout: Optional[float] = None  # the stall watchdog: seconds without worker output; None: off

    def __repr__(self):  # never the secret, should a record be printed
        shown = self._replace(channel_secret=None if self.channel_secret is None else "****")
        return "Settings({})".format(", ".join("{}={!r}".format(k, v) for k, v in zip(self._fields, shown)))


class Duration(NamedTuple):
    """A setting that is a number of seconds: its field, its variable, its default (unset or empty),
    the largest value accepted, and whether 0 is refused (a timeout of 0 would fail every request)."""

    field: str
    variable: str
    default: Optional[float]
    maximum: float
    above_zero: bool = False


# Every duration. A week of waiting for hosts covers any real cluster start; a day for the others
# is already far past any useful grace period or timeout, and a finite bound keeps deadlines and
# timers finite.
DURATIONS = (
    Duration("stop_grace", names.STOP_GRACE_ENV, DEFAULT_STOP_GRACE, DAY),
    Duration("failure_grace", names.FAILURE_GRACE_ENV, DEFAULT_FAILURE_GRACE, DAY),
    Duration("host_wait", names.HOST_WAIT_ENV, DEFAULT_HOST_WAIT, WEEK),
    Duration("linger", names.LINGER_ENV, DEFAULT_LINGER, DAY),
    Duration("s3_timeout", names.S3_TIMEOUT_ENV, None, DAY, above_zero=True),
    Duration("stall_timeout", names.STALL_TIMEOUT_ENV, None, WEEK),
)


def seconds(environ, duration):
    """The number of seconds ``duration``'s variable gives: its default when it is unset or empty.

    Raises ``ConfigError`` for anything but a number from 0 (above 0 for ``above_zero``) to the
    duration's maximum (so no inf or nan)."""
    name, maximum = duration.variable, duration.maximum
    text = environ.get(name, "").strip()
    if not text:
        return duration.default
    try:
        value = float(text)
    except ValueError:
        value = None
    # nan compares false both ways: refused too
    if value is None or not 0 <= value <= maximum or (duration.above_zero and value == 0):
        shown = text if len(text) <= 60 else text[:57] + "..."
        expected = "above 0 and at most {:g}" if duration.above_zero else "between 0 and {:g}"
        raise ConfigError("{}={!r}: expected a number of seconds {}".format(name, shown, expected.format(maximum)))
    return value + 0.0  # -0 becomes 0


def from_environ(environ):
    """Read every setting from ``environ`` (a mapping like ``os.environ``) -> ``Settings``.

    Raises ``ConfigError`` naming the first unusable variable."""
    durations = {d.field: seconds(environ, d) for d in DURATIONS}
    durations["stall_timeout"] = durations["stall_timeout"] or None  # 0 switches the watchdog off, as unset does
    return Settings(
        base_dir=config.base_dir_from(environ),
        address_map=MappingProxyType(network.parse_address_map(environ.get(names.HOST_ADDRESSES_ENV, ""))),
        s3_endpoint=s3_endpoint(environ),
        channel_secret=channel_secret(environ),
        **durations,
    )


def channel_secret(environ):
    """``MX_TRAINING_CHANNEL_SECRET``, or None when it is unset or empty (the job's secret is then
    derived from its hyperparameters: ``messages.job_secret``). Any text is a usable key."""
    return environ.get(names.CHANNEL_SECRET_ENV) or None


def s3_endpoint(environ):
    """The S3 endpoint URL for ``s3://`` code, or None for AWS's own (the region's) endpoint.

    ``S3_ENDPOINT_URL`` (this toolkit's) wins; then the AWS SDKs' ``AWS_ENDPOINT_URL_S3`` (which the
    SageMaker Python SDK's local mode sets in every container) and ``AWS_ENDPOINT_URL``, in the order
    botocore gives them, unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is ``true``. Empty means unset.
    Read here rather than left to botocore so that the rule holds with any botocore version and an
    error can name the endpoint it tried."""
    ours = environ.get(names.S3_ENDPOINT_ENV, "").strip()
    if ours:
        return ours
    if environ.get(names.AWS_IGNORE_ENDPOINTS_ENV, "").strip().lower() == "true":
        return None
    for name in (names.AWS_S3_ENDPOINT_ENV, names.AWS_ENDPOINT_ENV):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None
