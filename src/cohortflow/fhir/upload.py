"""Upload transaction bundles to a FHIR server: ``POST [base]`` per bundle.

* The bearer token comes from the environment variable named in the config
  (``fhir.upload.token_env``), is sent only in the ``Authorization`` header and never written to
  a log, an outcome or an error message (any echo of it is masked).
* Timeouts, connection errors, HTTP 5xx and 429 are retried with exponential backoff
  (``backoff_s`` × 2^attempt, at most ``retries`` retries); any other 4xx is final at once: the
  server has judged the bundle, and sending it again cannot change that.
* A transaction is all-or-nothing on the server; the outcome per bundle keeps the server's
  OperationOutcome (on failure) or each entry's status and location (on success).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cohortflow.errors import CohortflowError

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
        if not self.token_env:
            return None
        return os.environ.get(self.token_env) or None


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


def _mask(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _body(raw: bytes, token: str | None) -> dict[str, Any] | None:
    """The server's JSON answer, with any echo of the token masked."""
    try:
        value = json.loads(_mask(raw.decode("utf-8", "replace"), token))
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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
        request = urllib.request.Request(settings.url, data=data, headers=headers, method="POST")
        retry = False
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:
                outcome.http_status = response.status
                outcome.response = _body(response.read(), token)
        except urllib.error.HTTPError as exc:
            outcome.http_status = exc.code
            outcome.response = _body(exc.read(), token)
            outcome.error = f"HTTP {exc.code} {exc.reason}: {_issues(outcome.response)}".strip()
            retry = exc.code in RETRYABLE
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            outcome.http_status = None
            outcome.response = None
            reason = getattr(exc, "reason", exc)
            outcome.error = f"no response ({type(reason).__name__}: {reason})"
            retry = True
        else:
            outcome.error = ""
        outcome.error = _mask(outcome.error, token)
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

    outcomes = []
    for path in paths:
        try:
            bundle = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            outcomes.append(Outcome(bundle=str(path), entries=0, error=f"unreadable: {exc}"))
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
