"""A real S3-wire-compatible server for the tests: moto's ``moto_server`` in a process of its
own, on a free 127.0.0.1 port (never the internet). boto3 speaks HTTP to it as to AWS.

    server = S3Server(log_dir).start()
    bucket = server.new_bucket()            # a fresh, empty bucket per test
    settings = make_settings(..., **server.settings(bucket))
    server.keys(bucket)                     # the object keys it holds
    server.stop()

``settings`` gives the AUTHGATE_* values of ``AUTHGATE_AVATAR_STORAGE=s3`` with explicit test
credentials, so nothing of the machine's own AWS configuration is used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import free_port
from tests.server_process import port_answers, stop_process, wait_until_answering

HOST = "127.0.0.1"
ACCESS_KEY_ID = "testing-key-id"
SECRET_ACCESS_KEY = "testing-secret"  # moto accepts any
REGION = "us-east-1"
_STARTUP_SECONDS = 30


class S3Server:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> S3Server:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        executable = Path(sys.executable).with_name("moto_server")
        log = (self.log_dir / "moto_server.log").open("ab")
        self.process = subprocess.Popen(
            [str(executable), "-p", str(self.port), "-H", HOST],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
        log.close()
        if not wait_until_answering(
            self.process, lambda: port_answers(self.port), _STARTUP_SECONDS
        ):
            self.stop()
            raise RuntimeError(
                f"moto_server did not listen; see {self.log_dir / 'moto_server.log'}"
            )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 10)
        self.process = None

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def new_bucket(self) -> str:
        name = f"avatars-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        answer = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def settings(self, bucket: str) -> dict[str, Any]:
        return {
            "avatar_storage": "s3",
            "s3_bucket": bucket,
            "s3_endpoint_url": self.url,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
        }
