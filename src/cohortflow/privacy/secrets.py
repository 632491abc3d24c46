"""Secrets (the FHIR upload token): checked before use, and masked wherever text leaves a job.

* :func:`read_token` reads a token from the environment variable a config key names and checks
  it: non-empty, printable ASCII without whitespace (0x21-0x7E, what an HTTP ``Authorization``
  header can carry). A bad one is a :class:`~cohortflow.errors.ConfigError` naming the variable
  and what is wrong, never the value. It runs when the workflow starts and again in the job.
* A token that was read is registered here: :func:`mask` replaces it, and the forms it takes
  in other encodings (percent-encoding, base64, JSON and Python escapes, the value without
  surrounding whitespace) by ``***``. :class:`MaskingFilter` applies this to every record a job
  logs, tracebacks included (``cohortflow.logutil.job_logging`` installs it), and
  :func:`describe` gives an exception's text (and its chain's) masked, for an error re-raised
  ``from None``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import traceback
import urllib.parse

from cohortflow.errors import ConfigError

MASK = "***"
# Pieces of a malformed token that are masked on their own (shorter ones would mask ordinary
# words; a malformed token never reaches the network, this only guards the logs).
MIN_PIECE = 6

_SECRETS: set[str] = set()


def token_problem(value: str) -> str | None:
    """What makes ``value`` unusable as a bearer token (never quoting it), or None."""
    if value == "":
        return "is set but empty (unset it to send no Authorization header)"
    if value.rstrip("\r\n") != value:
        return "ends with a carriage return/line feed (a token file saved on Windows?)"
    if value.strip() != value:
        return "starts or ends with whitespace"
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if char in "\r\n":
            return f"holds a line break at character {position}"
        if char.isspace():
            return f"holds whitespace (U+{code:04X}) at character {position}"
        if code < 0x20 or code == 0x7F:
            return f"holds a control character (U+{code:04X}) at character {position}"
        if code > 0x7E:
            return f"holds a non-ASCII character (U+{code:04X}) at character {position}"
    return None


def check_token(value: str, env_name: str) -> str:
    """``value``, if it is a usable token; else a ConfigError naming ``env_name``."""
    problem = token_problem(value)
    if problem:
        register_secret(value)
        raise ConfigError(
            f"environment variable {env_name} (config key fhir.upload.token_env): the token "
            f"{problem}; a token is printable ASCII without spaces or control characters "
            "(its value is not shown)"
        )
    return value


def read_token(env_name: str | None) -> str | None:
    """The checked token in the environment variable ``env_name``; None when no variable is
    named or it is unset (no Authorization header is sent). The token is registered for
    masking."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        return None
    register_secret(value)
    return check_token(value, env_name)


def variants(secret: str) -> set[str]:
    """The texts under which ``secret`` can appear in a message, a body or a traceback."""
    forms = {secret, secret.strip()}
    forms.update(piece for piece in re.split(r"[\s\x00-\x1f\x7f]+", secret))
    for form in list(forms):
        raw = form.encode("utf-8", "surrogatepass")
        forms.update(
            {
                urllib.parse.quote(form, safe=""),
                urllib.parse.quote_plus(form, safe=""),
                base64.b64encode(raw).decode(),
                base64.b64encode(raw).decode().rstrip("="),
                base64.urlsafe_b64encode(raw).decode().rstrip("="),
                json.dumps(form)[1:-1],
                json.dumps(form, ensure_ascii=False)[1:-1],
                repr(form)[1:-1],
                repr(raw)[2:-1],
                form.encode("unicode_escape").decode(),
            }
        )
    return {form for form in forms if len(form) >= MIN_PIECE or form == secret.strip() != ""}


def register_secret(secret: str | None) -> None:
    if secret and secret.strip():
        _SECRETS.update(variants(secret))


def forget_secrets() -> None:
    """Forget every registered secret (tests; a job's process ends instead)."""
    _SECRETS.clear()


def mask(text: str) -> str:
    """``text`` with every registered secret, in every form, replaced by ``***``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def describe(exc: BaseException, *, chain: bool = True) -> str:
    """``Type: message`` of ``exc`` (and, with ``chain``, of the exceptions it was raised
    from or while handling), masked."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = (current.__cause__ or current.__context__) if chain else None
    return mask(" <- ".join(parts))


class MaskingFilter(logging.Filter):
    """Masks registered secrets in a record's message, traceback and stack (on a handler, so
    that records from every logger below it are covered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging would print them raw
            message = f"{record.msg} {record.args!r}"
        record.msg = mask(message)
        record.args = ()
        if record.exc_info:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = mask(text.rstrip("\n"))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True
