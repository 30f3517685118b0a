"""Fixtures of the `q3vl serve` tests: a package built from the CTest fixture checkpoint
`tiny` (deterministic random weights), servers on free loopback ports, and `q3vl run --json`
as the reference for greedy output.

CTest passes Q3VL_EXE, Q3VL_SOURCE_DIR and Q3VL_TEST_WORK_DIR (tests/CMakeLists.txt)."""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

EXE = Path(os.environ["Q3VL_EXE"])
SOURCE = Path(os.environ["Q3VL_SOURCE_DIR"])
WORK = Path(os.environ["Q3VL_TEST_WORK_DIR"])
MEDIA = SOURCE / "tests" / "goldens" / "model" / "media"
API_KEY = "test-key-123"
MODEL = "tiny"


def data_url(path):
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


@pytest.fixture(scope="session")
def scratch():
    d = Path(tempfile.mkdtemp(prefix="q3vl-serve-test-", dir=WORK))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def package(scratch):
    """An FP32 package of the `tiny` checkpoint (the CTest fixture made it)."""
    checkpoint = WORK / "checkpoint-tiny"
    assert (checkpoint / "config.json").exists(), "the CTest fixture fixture.checkpoint.tiny must run first"
    out = scratch / "package-tiny"
    subprocess.run([str(EXE), "build", "--model", str(checkpoint), "--out", str(out), "--quiet"], check=True,
                   timeout=120)
    return out


class Server:
    """A `q3vl serve` process on a free loopback port; stderr is collected for the test."""

    def __init__(self, package, *flags, wait=True):
        self.log = []
        self.proc = subprocess.Popen(
            [str(EXE), "serve", "--model", str(package), "--model-name", MODEL, "--port", "0", "--threads", "1",
             "--no-spin", *map(str, flags)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.time() + 20
        while self.port is None:
            if self.proc.poll() is not None:  # exited: its output may still be in the pipe
                self.reader.join(timeout=5)
                assert self.port is not None, "q3vl serve exited: " + "\n".join(self.log)
                break
            assert time.time() < deadline, "no 'listening on' line: " + "\n".join(self.log)
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"
        if wait:
            self.wait_healthy()

    def _read(self):
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))

    def wait_healthy(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            assert self.proc.poll() is None, "q3vl serve exited: " + "\n".join(self.log)
            time.sleep(0.05)
        raise AssertionError("server not healthy in time: " + "\n".join(self.log))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("q3vl serve did not stop on signal: " + "\n".join(self.log))
        self.reader.join(timeout=5)
        return self.proc.returncode

    def metrics(self, key=API_KEY):
        req = urllib.request.Request(self.url + "/metrics", headers={"Authorization": "Bearer " + key})
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


@pytest.fixture(scope="module")
def server(package):
    """The main test server: API key, local media from the goldens' media folder."""
    s = Server(package, "--api-key", API_KEY, "--allowed-media-path", MEDIA, "--parallel", "4",
               "--ctx-per-slot", "2048")
    yield s
    assert s.stop() == 0, "\n".join(s.log)


@pytest.fixture(scope="module")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


def run_reference(package, scratch, messages, max_tokens, tools=None):
    """`q3vl run --json` (greedy) on the same messages: the reference for the server."""
    body = {"messages": messages}
    if tools is not None:
        body["tools"] = tools
    f = tempfile.NamedTemporaryFile("w", suffix=".json", dir=scratch, delete=False)
    json.dump(body, f)
    f.close()
    r = subprocess.run([str(EXE), "run", "--model", str(package), "--messages", f.name, "--temperature", "0",
                        "--max-new-tokens", str(max_tokens), "--json", "--threads", "1", "--no-spin"],
                       check=True, capture_output=True, text=True, timeout=120)
    return json.loads(r.stdout)
