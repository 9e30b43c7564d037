"""A local S3 server for tests: moto's server on 127.0.0.1, started and stopped by the tests.

It runs in its own process (`python -m moto.server`), not as moto's ThreadedMotoServer inside the
test process: every S3 request of the code under test is served by Python, and in one process the
server and the client share one GIL (the S3 tests took about twice as long that way).

`s3_env` (session): the server and the AWS variables every client reads (AWS_ENDPOINT_URL, keys,
region); `s3_lake_url` (per test): a fresh bucket, its lake URL, and this test's own cache folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    """The AWS environment of a moto S3 server on loopback, set for the session's tests and subprocesses."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_serving(endpoint, server)
        env = {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
                patch.delenv(name, raising=False)
            yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(endpoint: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the moto server exited with code {server.returncode} before serving")
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:  # an HTTP answer of any status: it is serving
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the moto server did not answer at {endpoint} within {timeout:.0f} s")


def make_bucket() -> str:
    import s3fs

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(use_listings_cache=False).mkdir(bucket)
    return bucket


@pytest.fixture
def s3_lake_url(s3_env, tmp_path, monkeypatch) -> str:
    """'s3://<fresh bucket>/lakes/study': a lake location nothing has written yet."""
    monkeypatch.setenv("EMOLAKE_CACHE", str(tmp_path / "cache"))
    return f"s3://{make_bucket()}/lakes/study"
