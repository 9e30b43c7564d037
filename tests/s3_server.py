"""A local S3 server for tests: moto's ThreadedMotoServer on 127.0.0.1, started and stopped by the tests.

`s3_env` (session): the server and the AWS variables every client reads (AWS_ENDPOINT_URL, keys,
region); `s3_lake_url` (per test): a fresh bucket, its lake URL, and this test's own cache folder.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    """The AWS environment of a moto S3 server on loopback, set for the session's tests and subprocesses."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        yield env
    server.stop()


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
