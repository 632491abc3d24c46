"""Upload transaction bundles to a FHIR server: ``POST [base]`` per bundle.

* The bearer token comes from the environment variable named in the config
  (``fhir.upload.token_env``), is checked before any request
  (:func:`cohortflow.privacy.secrets.read_token`:
  printable ASCII, no whitespace or control characters), is sent only in the ``Authorization``
  header, and never written to a log, an outcome or an error message: every failure (HTTP
  errors, refused or dropped connections, timeouts, TLS, malformed answers, a request the HTTP
  client refuses to send) is recorded with any echo of the token masked, and an unexpected
  exception is re-raised masked and without its chain. Redirects are not followed (a redirect
  would carry the token to another address); a 3xx is a final failure.
* Timeouts, connection errors, malformed answers, HTTP 5xx and 429 are retried with exponential
  backoff (``backoff_s`` × 2^attempt, at most ``retries`` retries); any other 4xx is final at
  once: the server has judged the bundle, and sending it again cannot change that.
* A transaction is all-or-nothing on the server; the outcome per bundle keeps the server's
  OperationOutcome (on failure) or each entry's status and location (on success).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cohortflow.errors import CohortflowError
from cohortflow.privacy.secrets import describe, mask, read_token

LOG = logging.getLogger("cohortflow.fhir.upload")
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class UploadSettings:
    url: str
    token_env: str | None = None
    timeout_s: float = 60.0
    retries: int = 4
    backoff_s: float = 2.0

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> UploadSettings:
        if not section.get("url"):
            raise CohortflowError("fhir.upload.url: the FHIR base URL to upload to is not set")
        return cls(
            url=str(section["url"]).rstrip("/"),
            token_env=section.get("token_env"),
            timeout_s=float(section.get("timeout_s", 60)),
            retries=int(section.get("retries", 4)),
            backoff_s=float(section.get("backoff_s", 2.0)),
        )

    def token(self) -> str | None:
        """The checked token (a ConfigError naming the variable if it is malformed), or None."""
        return read_token(self.token_env)


class UploadError(CohortflowError):
    """The upload stopped on an unexpected error (its text masked, its chain cut)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx reaches the caller as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Outcome:
    bundle: str
    entries: int
    result: str = "failed"  # "ok" or "failed"
    http_status: int | None = None
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""
    response: dict[str, Any] | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("response")
        return row


def _masked(value: Any) -> Any:
    """A parsed JSON value with every string in it (keys too) masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _body(raw: bytes) -> dict[str, Any] | None:
    """The server's JSON answer, with any echo of the token masked (None if not JSON)."""
    try:
        value = json.loads(raw.decode("utf-8", "replace"))
        return _masked(value) if isinstance(value, dict) else None
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return None


def _read_error_body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except (OSError, http.client.HTTPException, ValueError):
        return b""


def _issues(outcome: dict[str, Any] | None) -> str:
    if not outcome or outcome.get("resourceType") != "OperationOutcome":
        return ""
    texts = []
    for issue in outcome.get("issue", []):
        where = (issue.get("expression") or [""])[0]
        what = (issue.get("details") or {}).get("text") or issue.get("diagnostics", "")
        texts.append(f"{where} {what}".strip())
    return "; ".join(texts[:5]) + (f" (+{len(texts) - 5} more)" if len(texts) > 5 else "")


def post_bundle(
    name: str,
    bundle: dict[str, Any],
    settings: UploadSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """POST one transaction with retries; never raises for a server or network failure."""
    token = settings.token()
    data = json.dumps(bundle).encode()
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    outcome = Outcome(bundle=name, entries=len(bundle.get("entry", [])))
    start = time.monotonic()
    for attempt in range(settings.retries + 1):
        outcome.attempts = attempt + 1
        retry = False
        try:
            request = urllib.request.Request(
                settings.url, data=data, headers=headers, method="POST"
            )
            with _OPENER.open(request, timeout=settings.timeout_s) as response:
                outcome.http_status = response.status
                outcome.response = _body(response.read())
        except urllib.error.HTTPError as exc:
            outcome.http_status = exc.code
            outcome.response = _body(_read_error_body(exc))
            outcome.error = f"HTTP {exc.code} {exc.reason}: {_issues(outcome.response)}".strip()
            if 300 <= exc.code < 400:
                outcome.error = (
                    f"HTTP {exc.code} {exc.reason}: a redirect, not followed (the token is sent "
                    "to fhir.upload.url only)"
                )
            retry = exc.code in RETRYABLE
        except (OSError, http.client.HTTPException) as exc:
            # URLError (refused, DNS, TLS), timeouts, resets, malformed or cut-off answers.
            outcome.http_status = None
            outcome.response = None
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, BaseException):
                outcome.error = f"no response ({describe(reason, chain=False)})"
            else:
                outcome.error = f"no response (URLError: {reason})"
            retry = True
        except ValueError as exc:
            # The HTTP client refused the request (an illegal header value or URL): final.
            outcome.http_status = None
            outcome.response = None
            outcome.error = f"request not sent ({describe(exc, chain=False)})"
        except Exception as exc:
            LOG.error("%s", mask("".join(traceback.format_exception(exc)).rstrip()))
            raise UploadError(f"{name}: upload stopped ({describe(exc)})") from None
        else:
            outcome.error = ""
        outcome.error = mask(outcome.error)
        if not retry:
            break
        if attempt < settings.retries:
            wait = settings.backoff_s * 2**attempt
            LOG.warning(
                "%s: %s; retry %d of %d in %.1f s",
                name,
                outcome.error,
                attempt + 1,
                settings.retries,
                wait,
            )
            sleep(wait)
    outcome.seconds = round(time.monotonic() - start, 3)
    if outcome.http_status is not None and 200 <= outcome.http_status < 300:
        statuses = [
            str((e.get("response") or {}).get("status", ""))
            for e in (outcome.response or {}).get("entry", [])
        ]
        bad = [s for s in statuses if not s.startswith("2")]
        if outcome.response is None or outcome.response.get("type") != "transaction-response":
            outcome.error = "the server's answer is not a transaction-response Bundle"
        elif len(statuses) != outcome.entries or bad:
            outcome.error = f"entry statuses {sorted(set(statuses))} for {outcome.entries} entries"
        else:
            outcome.result = "ok"
    return outcome


def upload_bundles(
    paths: list[str | Path],
    settings: UploadSettings,
    table: str | Path,
    details: str | Path,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Upload every bundle (all of them, even after a failure) and write the outcome table
    (TSV) and the server's answers (JSON) atomically."""
    from cohortflow.io.atomic import write_json, write_text

    settings.token()  # a malformed token stops here, before any request
    outcomes = []
    for path in paths:
        try:
            bundle = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            outcomes.append(Outcome(bundle=str(path), entries=0, error=mask(f"unreadable: {exc}")))
            continue
        outcome = post_bundle(str(path), bundle, settings, sleep=sleep)
        LOG.info(
            "%s: %s (HTTP %s, %d entries, %d attempt(s), %.2f s)%s",
            path,
            outcome.result,
            outcome.http_status,
            outcome.entries,
            outcome.attempts,
            outcome.seconds,
            f": {outcome.error}" if outcome.error else "",
        )
        outcomes.append(outcome)
    columns = list(Outcome("", 0).row())
    lines = ["\t".join(columns)] + [
        "\t".join(str(o.row()[c]).replace("\t", " ").replace("\n", " ") for c in columns)
        for o in outcomes
    ]
    write_text(table, "\n".join(lines) + "\n")
    write_json(
        details,
        {
            "server": settings.url,
            "bundles": [{**o.row(), "response": o.response} for o in outcomes],
        },
    )
    return outcomes
