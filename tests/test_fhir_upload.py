"""Upload behaviour against a scripted local HTTP server: retries with backoff on 5xx, 429 and
timeouts, none on 4xx, the OperationOutcome kept, and the bearer token sent but never logged."""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import LoopbackServer

from cohortflow.fhir.upload import UploadSettings, post_bundle, upload_bundles

TOKEN = "s3cr3t-token-never-logged"
BUNDLE = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:1",
            "resource": {"resourceType": "Patient", "id": "1"},
            "request": {"method": "PUT", "url": "Patient/1"},
        }
    ],
}
OK = (
    200,
    {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": "200", "location": "Patient/1"}}],
    },
)
INVALID = (
    400,
    {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "structure",
                "details": {"text": "Missing required property"},
                "expression": ["Bundle.entry[0].resource DiagnosticReport.imagingStudy"],
            }
        ],
    },
)


class Scripted(LoopbackServer):
    """Answers POSTs from a list of (status, body) or ("sleep", seconds)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), json.loads(body)))
                kind, value = outer.answers.pop(0)
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = OK
                data = json.dumps(value).encode()
                self.send_response(kind)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def scripted():
    servers = []

    def make(*answers):
        servers.append(Scripted(answers))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _settings(url, **kw):
    return UploadSettings(url=url, token_env="COHORTFLOW_TEST_FHIR_TOKEN", **kw)


def test_retries_5xx_and_429_with_exponential_backoff(scripted, monkeypatch):
    monkeypatch.setenv("COHORTFLOW_TEST_FHIR_TOKEN", TOKEN)
    server = scripted((503, {}), (429, {}), (502, {}), OK)
    waits = []
    outcome = post_bundle(
        "b", BUNDLE, _settings(server.url, retries=4, backoff_s=0.5), sleep=waits.append
    )
    assert outcome.result == "ok" and outcome.attempts == 4 and outcome.http_status == 200
    assert waits == [0.5, 1.0, 2.0]
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h, _ in server.requests)
    assert server.requests[0][1] == BUNDLE


def test_gives_up_after_the_retries(scripted):
    server = scripted(*[(500, {})] * 3)
    outcome = post_bundle(
        "b", BUNDLE, _settings(server.url, retries=2, backoff_s=0), sleep=lambda s: None
    )
    assert (outcome.result, outcome.attempts, outcome.http_status) == ("failed", 3, 500)


def test_4xx_is_final_and_keeps_the_operation_outcome(scripted):
    server = scripted(INVALID, OK)
    outcome = post_bundle("b", BUNDLE, _settings(server.url, retries=4), sleep=lambda s: None)
    assert (outcome.result, outcome.attempts, outcome.http_status) == ("failed", 1, 400)
    assert outcome.response == INVALID[1]
    assert "DiagnosticReport.imagingStudy Missing required property" in outcome.error
    assert len(server.requests) == 1 and "Authorization" not in server.requests[0][0]


def test_timeouts_are_retried(scripted):
    server = scripted(("sleep", 1.0), OK)
    outcome = post_bundle(
        "b", BUNDLE, _settings(server.url, timeout_s=0.2, backoff_s=0), sleep=lambda s: None
    )
    assert outcome.result == "ok" and outcome.attempts == 2


def test_an_unreachable_server_fails_without_raising():
    outcome = post_bundle(
        "b",
        BUNDLE,
        _settings("http://127.0.0.1:9/fhir", retries=1, backoff_s=0),
        sleep=lambda s: None,
    )
    assert outcome.result == "failed" and outcome.attempts == 2 and outcome.http_status is None
    assert outcome.error.startswith("no response")


def test_partial_entry_failure_is_a_failure(scripted):
    bad = (
        200,
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "422"}}],
        },
    )
    server = scripted(bad)
    outcome = post_bundle("b", BUNDLE, _settings(server.url), sleep=lambda s: None)
    assert outcome.result == "failed" and "422" in outcome.error


def test_outcome_table_and_logs_never_hold_the_token(scripted, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("COHORTFLOW_TEST_FHIR_TOKEN", TOKEN)
    # A server that echoes the token back in its error must not get it into the outcome.
    echo = (
        401,
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "login", "diagnostics": f"bad token {TOKEN}"}],
        },
    )
    server = scripted(OK, echo)
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}_bundle.json")
        paths[-1].write_text(json.dumps(BUNDLE))
    caplog.set_level(logging.DEBUG)
    outcomes = upload_bundles(
        paths, _settings(server.url), tmp_path / "o.tsv", tmp_path / "o.json", sleep=lambda s: None
    )
    assert [o.result for o in outcomes] == ["ok", "failed"]
    table = (tmp_path / "o.tsv").read_text().splitlines()
    assert table[0].split("\t") == [
        "bundle",
        "entries",
        "result",
        "http_status",
        "attempts",
        "seconds",
        "error",
    ]
    assert table[2].split("\t")[2:5] == ["failed", "401", "1"]
    assert TOKEN not in (tmp_path / "o.tsv").read_text() + (tmp_path / "o.json").read_text()
    assert TOKEN not in caplog.text
    assert "***" in outcomes[1].error
    details = json.loads((tmp_path / "o.json").read_text())
    assert details["bundles"][1]["response"]["resourceType"] == "OperationOutcome"
