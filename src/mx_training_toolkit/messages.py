"""The launchers' channel, on the wire: message framing and decoding, and the proof a host gives.

Pure: everything here is table-tested without sockets.
"""

import json

from . import masking
from .outcome import LAUNCHER, JobResult

MAX_MESSAGE = 64 * 1024  # bytes in one JSON line
MAX_AGE = 3600.0  # seconds: a failure's age as received is kept within 0 and this
MAX_OTHERS = 20  # other failures an abort carries (the failure file shows fewer)
OTHER_TEXT = 300  # characters of each other failure's note and reason an abort carries


def job_secret(hyperparameters, given=None):
    """The key every host of the job derives alike and a stranger on the network never sees: a
    hash of ``given`` (``settings.channel_secret``, MX_TRAINING_CHANNEL_SECRET) when there is one,
    else of all the job's hyperparameters."""
    if given:
        return _sha256(given.encode("utf-8", "surrogateescape"))
    text = json.dumps(hyperparameters, sort_keys=True, separators=(",", ":"), default=str)
    return _sha256(b"mx-training-toolkit channel\0" + text.encode("utf-8", "surrogateescape"))


def _sha256(data):
    import hashlib  # OpenSSL's library: milliseconds and megabytes that a job of one host never needs

    return hashlib.sha256(data).digest()


def job_identity(job_name, hosts, ps_port):
    """What a proof is bound to: this job, these hosts, this port."""
    return json.dumps([job_name, list(hosts), ps_port], separators=(",", ":"))


def proof(secret, nonce, host, identity, purpose="hello"):
    """The HMAC ``host`` gives for ``nonce``: ``purpose`` is ``hello`` for a member proving itself to
    the first host, ``welcome`` for the first host proving itself to a member (so neither can be
    replayed as the other)."""
    import hashlib
    import hmac

    return hmac.new(secret, "\0".join((purpose, nonce, host, identity)).encode("utf-8", "surrogateescape"),
                    hashlib.sha256).hexdigest()


def verify(given, secret, nonce, host, identity, purpose="hello"):
    """Whether ``given`` is the proof ``host`` should give (compared in constant time). Anything but an
    ASCII string is simply not the proof: ``compare_digest`` raises on a str with other characters."""
    if not isinstance(given, str) or not given.isascii():
        return False
    import hmac

    return hmac.compare_digest(given, proof(secret, nonce, host, identity, purpose))


def _hex_digits(value, count):
    return isinstance(value, str) and len(value) == count and all(c in "0123456789abcdef" for c in value)


def is_nonce(value):
    """A nonce as a launcher makes one: 32 hexadecimal digits."""
    return _hex_digits(value, 32)


def is_proof(value):
    """A proof as a launcher makes one (a SHA-256 HMAC): 64 hexadecimal digits, right or wrong."""
    return _hex_digits(value, 64)


def encode(message):
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


class BadMessage(Exception):
    """A message that is not a JSON object of the expected shape, or too long."""


class LineReader:
    """Splits received bytes into JSON-object messages, never holding more than ``MAX_MESSAGE``."""

    def __init__(self):
        self._parts = []
        self._size = 0

    def feed(self, data):
        """-> the complete messages in ``data`` (dicts). Raises ``BadMessage``."""
        messages = []
        while data:
            end = data.find(b"\n")
            if end < 0:
                self._size += len(data)
                if self._size > MAX_MESSAGE:
                    raise BadMessage("a message longer than {} bytes".format(MAX_MESSAGE))
                self._parts.append(data)
                return messages
            line = b"".join(self._parts) + data[:end]
            self._parts, self._size = [], 0
            data = data[end + 1:]
            if len(line) > MAX_MESSAGE:
                raise BadMessage("a message longer than {} bytes".format(MAX_MESSAGE))
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                raise BadMessage("a message that is not JSON") from None
            if not isinstance(message, dict) or not isinstance(message.get("t"), str):
                raise BadMessage("a message that is not a JSON object with a type")
            messages.append(message)
        return messages


def field(message, key, kind, default):
    value = message.get(key, default)
    return value if isinstance(value, kind) and not isinstance(value, bool) else default


def reported_result(message, note):
    """A failure another host reported -> its ``JobResult`` (fields of the wrong type get defaults)."""
    tail = field(message, "tail", list, [])
    return JobResult(field(message, "role", str, LAUNCHER)[:100], field(message, "host", str, "?")[:300],
                     field(message, "status", int, 1) & 0xFF or 1, tuple(str(line)[:4000] for line in tail[-20:]),
                     field(message, "note", str, note)[:4000], field(message, "signal", int, 0) & 0x7F,
                     field(message, "reason", str, "")[:4000], field(message, "rank", int, None),
                     message.get("consequence") is True, message.get("recorded") is True)


def reported_age(message):
    """How many seconds before it was sent the failure in ``message`` happened (0 when not said)."""
    age = message.get("age", 0.0)
    if not isinstance(age, (int, float)) or isinstance(age, bool) or not age > 0:
        return 0.0
    return min(float(age), MAX_AGE)


def failure_message(result, age=0.0, tail=True):
    """A failure that happened ``age`` seconds ago -> the message that tells the other hosts. Its
    texts are masked here, before the window of the last 20 stderr lines and before the receiver
    cuts them. Without ``tail``: no stderr lines (another failure, listed below the root cause)."""
    lines = masking.mask("\n".join(result.stderr_tail)).split("\n")[-20:] if tail and result.stderr_tail else []
    return {"t": "failed", "host": result.host, "role": result.role, "status": result.status,
            "note": masking.mask(result.note), "tail": lines, "signal": result.signal,
            "reason": masking.mask(result.reason), "rank": result.rank, "consequence": result.consequence,
            "recorded": result.recorded, "age": round(max(0.0, age), 3)}


def verdict_message(verdict):
    """The first host's ``jobrules.Verdict`` -> the message every host is told: ``all-done``, or
    ``abort`` with the root cause and (without their stderr) the first ``MAX_OTHERS`` other failures."""
    if not verdict.failed:
        return {"t": "all-done"}
    message = failure_message(verdict.root)
    del message["age"]
    others = [failure_message(r, tail=False) for r in verdict.others[:MAX_OTHERS]]
    for other in others:  # masked first, then cut: the failure file shows 200 characters of each
        other.update(note=other["note"][:OTHER_TEXT], reason=other["reason"][:OTHER_TEXT])
        del other["age"]
    message.update(t="abort", others=others)
    return message


def reported_verdict(message):
    """An ``abort`` message -> (the root cause, the other failures) as ``JobResult`` values."""
    others = field(message, "others", list, [])[:MAX_OTHERS]
    return reported_result(message, "failed"), tuple(reported_result(m, "failed") for m in others
                                                     if isinstance(m, dict))
