"""The launcher's own settings (docs/contract.md section 7): read once from the environment, validated.

A setting that is set but unusable (``inf``, ``nan``, ``-5``, ``ten``) is a configuration error naming
the variable, its value and what is expected; it is never replaced by the default behind the
user's back. Unset or empty means the default.
"""

from types import MappingProxyType
from typing import Mapping, NamedTuple

from . import config, network
from .errors import ConfigError

BASE_DIR_ENV = config.BASE_DIR_ENV  # SAGEMAKER_BASE_DIR
HOST_ADDRESSES_ENV = network.HOST_ADDRESSES_ENV  # MX_TRAINING_HOST_ADDRESSES
STOP_GRACE_ENV = "MX_TRAINING_STOP_GRACE_SECONDS"
FAILURE_GRACE_ENV = "MX_TRAINING_FAILURE_GRACE_SECONDS"
HOST_WAIT_ENV = "MX_TRAINING_HOST_WAIT_SECONDS"
LINGER_ENV = "MX_TRAINING_PS_LINGER_SECONDS"
# S3 endpoints for s3:// code, strongest first (see s3_endpoint).
S3_ENDPOINT_ENV = "S3_ENDPOINT_URL"
AWS_S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"  # what the SageMaker Python SDK's local mode sets
AWS_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
AWS_IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"

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


# (field, variable, default, largest value accepted): every duration. A week of waiting for hosts
# covers any real cluster start; a day for the others is already far past any useful grace period,
# and a finite bound keeps deadlines and timers finite.
DURATIONS = (
    ("stop_grace", STOP_GRACE_ENV, DEFAULT_STOP_GRACE, DAY),
    ("failure_grace", FAILURE_GRACE_ENV, DEFAULT_FAILURE_GRACE, DAY),
    ("host_wait", HOST_WAIT_ENV, DEFAULT_HOST_WAIT, WEEK),
    ("linger", LINGER_ENV, DEFAULT_LINGER, DAY),
)


def seconds(environ, name, default, maximum):
    """The number of seconds variable ``name`` gives: ``default`` when it is unset or empty.

    Raises ``ConfigError`` for anything but a number between 0 and ``maximum`` (so no inf or nan)."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= maximum:  # nan compares false both ways: refused too
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ConfigError("{}={!r}: expected a number of seconds between 0 and {:g}".format(name, shown, maximum))
    return value + 0.0  # -0 becomes 0


def from_environ(environ):
    """Read every setting from ``environ`` (a mapping like ``os.environ``) -> ``Settings``.

    Raises ``ConfigError`` naming the first unusable variable."""
    durations = {field: seconds(environ, name, default, maximum) for field, name, default, maximum in DURATIONS}
    return Settings(
        base_dir=config.base_dir_from(environ),
        address_map=MappingProxyType(network.parse_address_map(environ.get(HOST_ADDRESSES_ENV, ""))),
        **durations,
    )


def s3_endpoint(environ):
    """The S3 endpoint URL for ``s3://`` code, or None for AWS's own (the region's) endpoint.

    ``S3_ENDPOINT_URL`` (this toolkit's) wins; then the AWS SDKs' ``AWS_ENDPOINT_URL_S3`` (which the
    SageMaker Python SDK's local mode sets in every container) and ``AWS_ENDPOINT_URL``, in the order
    botocore gives them, unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is ``true``. Empty means unset.
    Read here rather than left to botocore so that the rule holds with any botocore version and an
    error can name the endpoint it tried."""
    ours = environ.get(S3_ENDPOINT_ENV, "").strip()
    if ours:
        return ours
    if environ.get(AWS_IGNORE_ENDPOINTS_ENV, "").strip().lower() == "true":
        return None
    for name in (AWS_S3_ENDPOINT_ENV, AWS_ENDPOINT_ENV):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None
