"""The upload token never reaches a file the run writes or its terminal output.

A malformed token (CR/LF from a file saved on Windows, spaces, tabs, control or non-ASCII
characters) stops the workflow at start with a config error naming the variable, and stops
the job before any request. A well-formed token is masked on every error path of the upload:
a hostile server echoes it in its status line, a header and the body (plain, percent-encoded,
base64), answers with garbage, a malformed status line, a cut connection, a redirect or too
late; the connection is refused; TLS fails; the HTTP client refuses a header; an unexpected
exception carries it. Each time every file under the working folder, the log and stderr are
searched for the token in each of its forms.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import LoopbackServer, snakemake_command

from cohortflow.errors import ConfigError
from cohortflow.fhir import upload
from cohortflow.fhir.run import run_upload
from cohortflow.fhir.upload import UploadError, UploadSettings, post_bundle
from cohortflow.logutil import job_logging
from cohortflow.privacy import secrets as redact

ENV = "COHORTFLOW_FHIR_TOKEN"
TOKEN = "cf24Tok_9f3kQ.zX/7+w=="  # '/', '+' and '=' change under percent-encoding
BUNDLE = {"resourceType": "Bundle", "type": "transaction", "entry": []}
MALFORMED = {
    "crlf": (TOKEN + "\r\n", "ends with a carriage return/line feed"),
    "lf": (TOKEN + "\n", "ends with a carriage return/line feed"),
    "leading space": (" " + TOKEN, "starts or ends with whitespace"),
    "inner space": ("cf24Tok_9f3kQ zX7w", "holds whitespace (U+0020) at character 14"),
    "tab": ("cf24Tok_9f3kQ\tzX7w", "holds whitespace (U+0009) at character 14"),
    "inner crlf": ("cf24Tok_9f3kQ\r\nzX7w", "holds a line break at character 14"),
    "escape": ("cf24Tok_9f3kQ\x1bzX7w", "holds a control character (U+001B) at character 14"),
    "nul": ("cf24Tok_9f3kQ\x00zX7w", "holds a control character (U+0000) at character 14"),
    "delete": ("cf24Tok_9f3kQ\x7fzX7w", "holds a control character (U+007F) at character 14"),
    "non-ascii": ("cf24Tök_9f3kQzX7w", "holds a non-ASCII character (U+00F6) at character 6"),
    "no-break space": ("cf24Tok_9f3kQ\u00a0zX7w", "holds whitespace (U+00A0) at character 14"),
    "empty": ("", "is set but empty"),
}


def forms(secret: str) -> list[str]:
    """What to search for: the secret, its stripped and printable pieces, and its encodings."""
    pieces = {secret, secret.strip(), "cf24Tok_9f3kQ", "cf24T"}
    out = set()
    for piece in filter(None, pieces):
        raw = piece.encode()
        out |= {
            piece,
            urllib.parse.quote(piece, safe=""),
            base64.b64encode(raw).decode().rstrip("="),
            json.dumps(piece)[1:-1],
            repr(raw)[2:-1],
        }
    return sorted(out)


def leaks(text: str, secret: str = TOKEN) -> list[str]:
    return [form for form in forms(secret) if form in text]


def files_leaking(folder: Path, secret: str = TOKEN) -> dict[str, list[str]]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hits = leaks(path.read_bytes().decode("utf-8", "replace"), secret)
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


@pytest.fixture(autouse=True)
def _no_secrets_left():
    redact.forget_secrets()
    yield
    redact.forget_secrets()


# ------------------------------------------------------------------ the token check


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_token_is_a_config_error_naming_the_variable(monkeypatch, case):
    value, reason = MALFORMED[case]
    with pytest.raises(ConfigError) as caught:
        if "\x00" in value:  # an environment cannot hold NUL: check the value itself
            redact.check_token(value, ENV)
        else:
            monkeypatch.setenv(ENV, value)
            redact.read_token(ENV)
    message = str(caught.value)
    assert ENV in message and reason in message, message
    if value:
        assert not leaks(message, value), message


@pytest.mark.parametrize(
    "value", [TOKEN, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-DEF_ghi", "a~b!c#d$e%f&g'h(i)*"]
)
def test_a_well_formed_token_passes(monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    assert redact.read_token(ENV) == value
    assert redact.mask(f"x {value} y {urllib.parse.quote(value, safe='')}") == "x *** y ***"


def test_no_variable_or_an_unset_one_sends_no_token(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert redact.read_token(ENV) is None and redact.read_token(None) is None


# ------------------------------------------------------------------ a hostile server


class Hostile(LoopbackServer):
    """A FHIR endpoint that misbehaves, one answer per request, echoing the token."""

    ANSWERS = (
        "echo-401",
        "echo-500",
        "garbage-200",
        "bad-status-line",
        "drop",
        "redirect",
        "late",
        "encoded-echo-400",
    )

    def __init__(self, answers=ANSWERS):
        self.answers = list(answers)
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, self.headers.get("Authorization")))
                answer = outer.answers.pop(0) if outer.answers else "echo-401"
                getattr(self, "answer_" + answer.replace("-", "_"))()

            def do_GET(self):  # a followed redirect would arrive as a GET
                self.do_POST()

            def _json(self, status, body, reason=None, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status, reason)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _outcome(self, text):
                return {
                    "resourceType": "OperationOutcome",
                    f"key-{TOKEN}": TOKEN,
                    "issue": [{"severity": "error", "code": "login", "diagnostics": text}],
                }

            def answer_echo_401(self):
                self._json(
                    401,
                    self._outcome(f"invalid token {TOKEN}"),
                    reason=f"Unauthorized {TOKEN}",
                    headers=[("WWW-Authenticate", f'Bearer error_description="{TOKEN}"')],
                )

            def answer_echo_500(self):
                self._json(500, self._outcome(f"crash handling Bearer {TOKEN}"), f"Boom {TOKEN}")

            def answer_encoded_echo_400(self):
                encoded = [urllib.parse.quote(TOKEN, safe=""), base64.b64encode(TOKEN.encode())]
                text = f"got {encoded[0]} / {encoded[1].decode()} / {json.dumps(TOKEN)}"
                self._json(400, self._outcome(text))

            def answer_garbage_200(self):
                data = f"<html>not JSON {TOKEN}".encode()
                self.send_response(200, f"OK {TOKEN}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def answer_bad_status_line(self):
                self.wfile.write(f"HTTP/1.1 abc {TOKEN}\r\n\r\n".encode())
                self.close_connection = True

            def answer_drop(self):
                self.close_connection = True  # nothing at all

            def answer_redirect(self):
                self.send_response(302, f"Found {TOKEN}")
                self.send_header("Location", f"/elsewhere?token={TOKEN}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def answer_late(self):
                time.sleep(1.5)
                self._json(200, self._outcome(TOKEN))

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def hostile():
    servers = []

    def make(*answers):
        servers.append(Hostile(answers or Hostile.ANSWERS))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bundles(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        path = folder / f"part-{i:03d}_bundle.json"
        path.write_text(json.dumps(BUNDLE))
        paths.append(str(path))
    return paths


def _upload_job(work: Path, url: str, n: int, **settings) -> int:
    """What workflow/scripts/fhir_upload.py does, in this process: the exit code."""
    section = {"url": url, "token_env": ENV, "retries": 0, "backoff_s": 0, "timeout_s": 0.5}
    section.update(settings)
    log = work / "logs/fhir/upload.log"
    outputs = {
        "table": str(work / "results/fhir/upload/outcomes.tsv"),
        "details": str(work / "results/fhir/upload/outcomes.json"),
    }
    try:
        with job_logging(log, "fhir.upload"):
            run_upload(_bundles(work / "results/fhir/genotypes", n), outputs, section, str(log))
    except SystemExit as exc:
        return int(exc.code)
    return 0


def test_every_server_error_path_is_masked(hostile, monkeypatch, tmp_path, capfd):
    monkeypatch.setenv(ENV, TOKEN)
    server = hostile()
    code = _upload_job(tmp_path, server.url, len(Hostile.ANSWERS))
    out, err = capfd.readouterr()
    assert code == 1
    # Every request carried the token, and the redirect was not followed.
    assert [path for path, _ in server.requests] == ["/fhir"] * len(Hostile.ANSWERS)
    assert {auth for _, auth in server.requests} == {f"Bearer {TOKEN}"}
    log = (tmp_path / "logs/fhir/upload.log").read_text()
    for expected in (
        "HTTP 401 Unauthorized ***",
        "HTTP 500 Boom ***",
        "not a transaction-response Bundle",
        "BadStatusLine",
        "RemoteDisconnected",
        "HTTP 302 Found ***",
        "a redirect, not followed",
        "TimeoutError",
        "HTTP 400",
    ):
        assert expected in log, log
    details = json.loads((tmp_path / "logs/fhir/upload_outcomes.json").read_text())
    assert details["bundles"][0]["response"]["issue"][0]["diagnostics"] == "invalid token ***"
    assert files_leaking(tmp_path) == {}
    assert leaks(out + err) == []


def test_refused_connection_and_tls_failure_are_masked(hostile, monkeypatch, tmp_path, capfd):
    monkeypatch.setenv(ENV, TOKEN)
    server = hostile()
    tls = server.url.replace("http://", "https://")
    assert _upload_job(tmp_path / "refused", f"http://127.0.0.1:{_closed_port()}/fhir", 1) == 1
    assert _upload_job(tmp_path / "tls", tls, 1) == 1
    assert "ConnectionRefusedError" in (tmp_path / "refused/logs/fhir/upload.log").read_text()
    assert "SSL" in (tmp_path / "tls/logs/fhir/upload.log").read_text()
    out, err = capfd.readouterr()
    assert files_leaking(tmp_path) == {} and leaks(out + err) == []


@pytest.mark.parametrize("case", ["crlf", "inner space", "tab", "non-ascii"])
def test_a_malformed_token_stops_the_job_before_any_request(
    hostile, monkeypatch, tmp_path, capfd, case
):
    value, reason = MALFORMED[case]
    monkeypatch.setenv(ENV, value)
    server = hostile()
    assert _upload_job(tmp_path, server.url, 2) == 1
    out, err = capfd.readouterr()
    assert server.requests == []
    log = (tmp_path / "logs/fhir/upload.log").read_text()
    assert ENV in log and reason in log
    assert not (tmp_path / "results/fhir/upload").exists()
    assert files_leaking(tmp_path, value) == {} and leaks(out + err, value) == []


def test_a_header_the_http_client_refuses_is_recorded_masked(hostile, monkeypatch, tmp_path):
    # Should the check ever be bypassed, http.client's own refusal (its message quotes the
    # header) is an outcome, masked, and not an exception with the token in it.
    secret = TOKEN + "\r\n"
    monkeypatch.setattr(UploadSettings, "token", lambda self: secret)
    redact.register_secret(secret)
    server = hostile()
    outcome = post_bundle("b", BUNDLE, UploadSettings(url=server.url), sleep=lambda s: None)
    assert server.requests == []
    assert outcome.result == "failed" and outcome.error.startswith("request not sent (ValueError")
    assert leaks(outcome.error, secret) == [] and "***" in outcome.error


def test_an_unexpected_exception_is_masked_and_cut_from_its_chain(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv(ENV, TOKEN)

    def explode(request, timeout):
        try:
            raise KeyError(request.headers["Authorization"])
        except KeyError as exc:
            raise RuntimeError(f"boom {request.headers['Authorization']}") from exc

    monkeypatch.setattr(upload._OPENER, "open", explode)
    with pytest.raises(UploadError) as caught:
        post_bundle("b", BUNDLE, UploadSettings(url="http://127.0.0.1:9", token_env=ENV))
    error = caught.value
    assert error.__cause__ is None and error.__suppress_context__
    assert "RuntimeError: boom Bearer ***" in str(error) and "KeyError" in str(error)
    assert leaks(str(error) + repr(error.args)) == []
    # Through the job's logging: the traceback is logged masked, the job exits 1.
    assert _upload_job(tmp_path, "http://127.0.0.1:9/fhir", 1) == 1
    out, err = capfd.readouterr()
    assert "upload stopped" in err
    assert files_leaking(tmp_path) == {} and leaks(out + err) == []


def test_the_job_log_masks_a_bug_s_traceback(monkeypatch, tmp_path, capfd):
    redact.register_secret(TOKEN)
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit), job_logging(log, "test"):
        try:
            raise ValueError(TOKEN)
        except ValueError as exc:
            raise TypeError(f"while handling {base64.b64encode(TOKEN.encode())}") from exc
    out, err = capfd.readouterr()
    assert "Traceback" in log.read_text() and "ValueError: ***" in log.read_text()
    assert leaks(log.read_text()) == [] and leaks(out + err) == []


# ------------------------------------------------------------------ through Snakemake

UPLOAD_ONLY = {
    "stages": {
        "ingest": False,
        "preprocess": False,
        "wm_clusters": False,
        "classify": False,
        "deface": False,
        "deface_qa": False,
        "genotype_qc": True,
        "association": False,
        "fhir": True,
        "fhir_upload": True,
    },
    # The genotype stage is on (its bundles are uploaded), so it names its input.
    "genotypes": {"input": "resources/demo/genotypes/demo"},
    "fhir": {
        "validation": {"schema": None, "profiles": None, "validator": None},
    },
}


def _snakemake(repo: Path, work: Path, url: str, token: str, *args: str):
    """The upload rule alone, on bundles already in results/fhir/genotypes."""
    if not (work / "config").exists():
        shutil.copytree(repo / "config", work / "config")
        shutil.copytree(repo / "tests/configs", work / "tests/configs")
    config = json.loads(json.dumps(UPLOAD_ONLY))
    config["fhir"]["upload"] = {"url": url, "retries": 0, "backoff_s": 0, "timeout_s": 0.5}
    (work / "upload.yaml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_")}
    env[ENV] = token
    command = snakemake_command(
        repo, work, "--configfile", "tests/configs/ok_demo_small/config.yaml", "upload.yaml",
        "--allowed-rules", "fhir_upload", *args, cores=1,
    )  # fmt: skip
    command += ["--", "results/fhir/upload/outcomes.tsv"]
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["crlf", "tab", "non-ascii"])
def test_snakemake_stops_at_start_on_a_malformed_token(repo, tmp_path, case):
    value, reason = MALFORMED[case]
    result = _snakemake(repo, tmp_path, "http://127.0.0.1:9/fhir", value, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"environment variable {ENV}" in output and reason in output, output
    assert "Building DAG of jobs" not in output, "the token is checked before the DAG"
    assert leaks(output, value) == [] and files_leaking(tmp_path, value) == {}


def test_snakemake_upload_run_writes_the_token_nowhere(repo, hostile, tmp_path):
    server = hostile()
    _bundles(tmp_path / "results/fhir/genotypes", len(Hostile.ANSWERS))
    result = _snakemake(repo, tmp_path, server.url, TOKEN)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert len(server.requests) == len(Hostile.ANSWERS), output
    assert "HTTP 401 Unauthorized ***" in output  # show-failed-logs prints the job's log
    assert "HTTP 401 Unauthorized ***" in (tmp_path / "logs/fhir/upload.log").read_text()
    assert list((tmp_path / ".snakemake/log").glob("*.snakemake.log"))
    assert leaks(output) == [] and files_leaking(tmp_path) == {}


def test_an_answer_nested_too_deep_is_not_json_rather_than_a_crash():
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert upload._body(deep) is None


def test_a_log_call_whose_arguments_do_not_fit_is_still_masked(tmp_path, capfd):
    redact.register_secret(TOKEN)
    log = tmp_path / "job.log"
    with job_logging(log, "test") as logger:
        logger.info("two %s %s", TOKEN)
    out, err = capfd.readouterr()
    assert "two %s %s ('***',)" in log.read_text()
    assert leaks(log.read_text()) == [] and leaks(out + err) == []
