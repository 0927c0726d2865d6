"""Secret masking for everything the launcher itself writes: its log lines and the failure file.

A hyperparameter looks secret when its name contains one of ``SECRET_WORDS`` (any case, ``-``
read as ``_``), at any depth of the hyperparameters. ``mask`` replaces the values of such
hyperparameters with ``MASK`` wherever they occur in a text: the logged command line, the
environment dump, the stderr tail copied into the failure file. The user script's own output is
not the launcher's text and is never passed through it. The credentials of a URL
(``scheme://user:password@host``: a package index's, a CodeArtifact token) are masked too, always
(``mask_url``).

Texts shorter than ``MIN_SECRET_LENGTH`` characters are not searched for (replacing every ``1`` or
``on`` would garble the log, and such a value hides nothing), nor are ``true``, ``false`` and
``null``. A number is replaced only where it stands alone (not inside a longer number or word). A
line that ends with the first ``MIN_SECRET_LENGTH`` or more characters of a secret text has that
end masked too: it may be a line cut short.

Masking comes before any window or cut (docs/contract.md section 6): whoever keeps the last lines
of a stream, or the start of a long line, masks what it kept first and cuts after. A secret of
several lines (a PEM key) is also masked line by line, each of its lines of ``MIN_SECRET_LENGTH``
or more characters on its own: a window of whole lines that starts inside it shows none of it.
"""

import json
import re

from .hyperparameters import render_value

SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "access_key",
                "private_key", "credential", "auth", "signature")
MASK = "********"
MIN_SECRET_LENGTH = 3

_current = None  # the job's Masker once the configuration is known; until then nothing is masked


def looks_secret(name):
    """Whether a hyperparameter (or a key nested in one) is named like a secret."""
    lowered = str(name).lower().replace("-", "_")
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(value):
    """A copy of ``value`` (the hyperparameters, or anything nested in them) in which the value of
    every secret-looking key, at any depth, is ``MASK``; a secret's own dicts and lists go whole."""
    if isinstance(value, dict):
        return {k: (MASK if looks_secret(k) else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value


def secret_values(value):
    """The values of the secret-looking keys found at any depth of ``value``."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend([item] if looks_secret(key) else secret_values(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(secret_values(item))
    return found


def _texts(value):
    """-> ``(text, standalone)`` for each way ``value`` may be written out: as it is, JSON-escaped,
    as a command-line argument; for a dict or list, also each value inside it."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [(str(value), True)]
    if isinstance(value, str):
        # As it is, JSON-escaped, and as Python shows it: ``%r`` (quotes escaped when it holds both
        # kinds), ``%a``, and its UTF-8 bytes' repr (``b'p\xc3\xa4ss'``), without the quotes.
        encoded = value.encode("utf-8", "surrogatepass")
        return [(value, False), (json.dumps(value)[1:-1], False), (repr(value)[1:-1], False),
                (ascii(value)[1:-1], False), (repr(encoded)[2:-1], False)]
    texts = [(render_value(value), False), (json.dumps(value, sort_keys=True), False),
             (json.dumps(value, sort_keys=True, separators=(",", ":")), False)]
    for item in (value.values() if isinstance(value, dict) else value):
        texts.extend(_texts(item))
    return texts


class Masker:
    """Callable: a text -> the same text with the given hyperparameters' secret values replaced."""

    def __init__(self, hyperparameters):
        found = {}
        for value in secret_values(hyperparameters):
            for text, standalone in _texts(value):
                if len(text) >= MIN_SECRET_LENGTH:
                    found[text] = found.get(text, True) and standalone
                for piece in _lines_of(text):  # each line of a multi-line secret, on its own
                    found[piece] = False
        # Longest first: a secret that contains another one is replaced whole.
        self._needles = sorted(found.items(), key=lambda item: -len(item[0]))
        # The longest secret text, in UTF-8 bytes: whoever keeps N bytes of a text keeps N + reach,
        # masks them, then cuts to N: a secret that starts before the cut is then replaced whole.
        self.reach = max((len(needle.encode("utf-8", "surrogatepass")) for needle in found), default=0)

    def __call__(self, text):
        if not self._needles:
            return text
        for needle, standalone in self._needles:
            if needle in text:
                text = _replace_standalone(text, needle) if standalone else text.replace(needle, MASK)
        return "\n".join(self._mask_cut_end(line) for line in text.split("\n"))

    def _mask_cut_end(self, line):
        """``line`` with its end masked when that is the start of a secret: the stderr tail keeps
        only the first 4000 bytes of a long line, which may cut one in two."""
        for needle, standalone in self._needles:
            if standalone:
                continue
            head = needle[:MIN_SECRET_LENGTH]
            at = line.find(head, max(0, len(line) - len(needle) + 1))
            while at >= 0:
                if needle.startswith(line[at:]):
                    return line[:at] + MASK
                at = line.find(head, at + 1)
        return line


def _lines_of(text):
    """The lines of a multi-line secret text that are long enough to be searched for."""
    pieces = text.splitlines()
    if len(pieces) < 2:
        return []
    return [piece for piece in pieces if len(piece.strip()) >= MIN_SECRET_LENGTH]


def _joins(text, i, step):
    """Whether the character at ``i``, just before (``step`` -1) or after (``step`` 1) a match,
    makes the match part of a longer number or word."""
    if not 0 <= i < len(text):
        return False
    c = text[i]
    if c.isalnum() or c == "_":
        return True
    j = i + step
    return c == "." and 0 <= j < len(text) and text[j].isdigit()  # 1234 in 1234.5 or 0.1234


def _replace_standalone(text, needle):
    out, start = [], 0
    at = text.find(needle)
    while at >= 0:
        end = at + len(needle)
        if not _joins(text, at - 1, -1) and not _joins(text, end, 1):
            out.append(text[start:at] + MASK)
            start = end
        at = text.find(needle, end)
    return "".join(out) + text[start:]


def use(masker):
    """Make ``masker`` (or None: nothing) the one ``mask`` applies, for the rest of the launch."""
    global _current
    _current = masker


def mask(text):
    """``text`` with this job's secret values replaced by ``MASK`` (only URL credentials before ``use``)."""
    text = mask_url(text)
    return _current(text) if _current is not None else text


# Credentials in a URL: scheme://user:password@ or scheme://token@.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def mask_url(text):
    """``text`` with the credentials of every URL in it replaced: ``scheme://user:****@host``."""
    if "@" not in text:
        return text

    def replace(match):
        user, sep, _password = match.group("userinfo").partition(":")
        return "{}{}@".format(match.group("scheme"), user + ":****" if sep else "****")

    return _URL_CREDENTIALS.sub(replace, text)


def reach():
    """The current masker's ``Masker.reach`` (0 before ``use``)."""
    return _current.reach if _current is not None else 0
