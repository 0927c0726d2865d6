"""The roles of a job, and what each means to the job: one table.

A role names a process the launcher starts (``ProcessSpec.role``) and the result it reports
(``JobResult.role``), or a result about a whole host. For each the table says its kind (what the
run loop does with it), its failure step (the failure file's first words, ``outcome.TITLES``),
how a failure names it, and the error raised when its process cannot start.

A new strategy that brings a new kind of process adds its row here, and nothing else needs to learn
the name: the policy, the supervisor and ``outcome`` read the table.
"""

from typing import NamedTuple, Optional

from .errors import HorovodError, ParameterServerError, PipInstallError, ToolkitError, UserScriptError

# The roles (ps-lite's own names for the first three).
SCHEDULER = "scheduler"
SERVER = "server"
WORKER = "worker"
RANK = "rank"  # a Horovod rank: a worker with a rank (its spec's and result's role is WORKER)
RENDEZVOUS = "rendezvous"  # Horovod's Gloo rendezvous server, on the first host
PIP = "pip"
LAUNCHER = "launcher"  # a result about a host's launcher (a step failed, a stop, a lost host)
CHANNEL = "channel"  # a result about the launchers' channel itself (an internal error there)
STALL = "stall"  # a result about the whole job: the stall watchdog ended it (``jobrules``)

# Kinds: what a role means to the run loop.
WORKS = "worker"  # the user's code: the job is done when every worker of every host is
SUPPORT = "support"  # runs beside the workers and exits by itself once all have finalised; waited for
SERVICE = "service"  # runs beside the workers and never exits by itself: stopped once all are done
HELPER = "helper"  # runs to its end while the job is prepared
HOST = "host"  # not a process: a whole host, the connection between hosts, or the whole job


class Role(NamedTuple):
    """What one role means to the job."""

    name: str
    kind: str
    step: str  # the failure step (outcome.TITLES) when it fails
    who: str  # how a failure names it: "{entry}" is the entry point, "{rank}" the rank
    error: type = ToolkitError  # raised when its process cannot start

    def cannot_start(self, message, status):
        """The error for a process of this role that could not be started (``status``: 126 or 127;
        a helper's failure has its step's own status)."""
        return self.error(message) if self.kind == HELPER else self.error(message, exit_code=status)

    def names(self, entry, rank=None):
        return self.who.format(entry=entry, rank=rank)


TABLE = {role.name: role for role in (
    Role(SCHEDULER, SUPPORT, "parameter server", "the scheduler process", ParameterServerError),
    Role(SERVER, SUPPORT, "parameter server", "the server process", ParameterServerError),
    Role(WORKER, WORKS, "user script", "{entry}", UserScriptError),
    Role(RANK, WORKS, "user script", "{entry} (rank {rank})", UserScriptError),
    Role(RENDEZVOUS, SERVICE, "horovod", "the rendezvous process", HorovodError),
    Role(PIP, HELPER, "pip install", "the pip process", PipInstallError),
    Role(LAUNCHER, HOST, "peer host", "the launcher on the host"),
    Role(CHANNEL, HOST, "host channel", "the launchers' channel"),
    Role(STALL, HOST, "stalled", "the job"),
)}


def _of_kind(*kinds):
    return tuple(name for name, role in TABLE.items() if role.kind in kinds)


PS_ROLES = _of_kind(SUPPORT)  # the roles that exit by themselves once the workers are done
SERVICE_ROLES = _of_kind(SERVICE)  # the roles stopped once every worker of the job is done
SUPPORT_ROLES = PS_ROLES + SERVICE_ROLES  # every role that runs beside the workers


def role_of(name, rank=None) -> Optional[Role]:
    """The table's row for a process or result of role ``name`` (a worker with a ``rank`` is a
    Horovod rank) -> ``Role``, or None for a name the table does not know (another version's)."""
    if name == WORKER and rank is not None:
        return TABLE[RANK]
    return TABLE.get(name)
