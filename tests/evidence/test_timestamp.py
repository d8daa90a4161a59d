"""RFC 3161 timestamps of the checkpoint file, from a real TSA: `openssl ts -reply` behind a
loopback HTTP server; the token is checked by `openssl ts -verify`, not by our code."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from lti_tool.cli import main
from lti_tool.runtime import Runtime
from tests.conftest import skip_unless_installed
from tests.evidence.conftest import Archive

PORT = 8170  # helper 7's range (8170-8179)

CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@pytest.fixture
def tsa(tmp_path: Path):
    if shutil.which("openssl") is None:
        skip_unless_installed("openssl")
    folder = tmp_path / "tsa"
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=Test TSA", "-keyout", str(folder / "tsa.key"), "-out",
                    str(folder / "tsa.crt"), "-addext", "extendedKeyUsage=critical,timeStamping",
                    "-addext", "basicConstraints=CA:FALSE"],
                   check=True, capture_output=True)
    (folder / "serial").write_text("01\n")
    (folder / "openssl.cnf").write_text(CONFIG.format(dir=folder))
    answer = {"garbage": False}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if answer["garbage"]:
                reply = b"not a timestamp"
            else:
                (folder / "q.tsq").write_bytes(body)
                subprocess.run(["openssl", "ts", "-reply", "-config", str(folder / "openssl.cnf"),
                                "-queryfile", str(folder / "q.tsq"), "-out",
                                str(folder / "r.tsr")], check=True, capture_output=True)
                reply = (folder / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, answer
    server.shutdown()
    server.server_close()


def test_the_exported_file_carries_a_token_openssl_verifies(archive: Archive, tsa,
                                                            tmp_path: Path) -> None:
    folder, answer = tsa
    runtime = dataclasses.replace(archive.runtime, settings=dataclasses.replace(
        archive.runtime.settings, evidence_tsa_url=f"http://127.0.0.1:{PORT}/tsa"))
    runtime = Runtime(settings=runtime.settings, engine=runtime.engine,
                      sessions=runtime.sessions)
    out = tmp_path / "checkpoints.json"
    result = CliRunner().invoke(main, ["evidence", "checkpoint", "export", "--out", str(out)],
                                obj={"runtime": runtime})
    assert result.exit_code == 0, result.output
    assert "(RFC 3161 timestamp included)" in result.output
    data = json.loads(out.read_text())
    stamp = data["timestamp"]
    assert stamp["imprint"] == "sha256:" + data["digest"]
    token = tmp_path / "token.der"
    token.write_bytes(base64.b64decode(stamp["token"]))
    check = subprocess.run(["openssl", "ts", "-verify", "-digest", data["digest"], "-in",
                            str(token), "-token_in", "-CAfile", str(folder / "tsa.crt")],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "Verification: OK" in check.stdout, check.stderr
    # The stamped file still proves the database holds what it records.
    assert archive.verify("--against", str(out)).exit_code == 0

    answer["garbage"] = True
    bad = CliRunner().invoke(main, ["evidence", "checkpoint", "export", "--out",
                                    str(tmp_path / "b.json")], obj={"runtime": runtime})
    assert bad.exit_code == 1 and "not an RFC 3161 response" in bad.stderr
    assert "Traceback" not in bad.output and not (tmp_path / "b.json").exists()
