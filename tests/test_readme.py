"""README.md's commands run as written: the "Try it" block in bash against a real
``authgate serve``, and the Flask example as a file, with its admin made the way it says."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, free_port

README = Path(__file__).resolve().parents[1] / "README.md"
VENV_BIN = Path(sys.executable).parent
README_PORT = "localhost:8086"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(text: str, *languages: str) -> list[str]:
    names = "|".join(languages)
    return re.findall(rf"^```(?:{names})\n(.*?)^```$", text, flags=re.M | re.S)


def clean_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}"
    return environment | extra


@pytest.fixture
def server_port(tmp_path: Path) -> Iterator[int]:
    """A real ``authgate serve`` (development server) on a free port."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "authgate"), "serve", "--port", str(port)],
        env=clean_environment(AUTHGATE_INSTANCE_PATH=str(tmp_path / "instance")),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's block uses curl")
def test_try_it_runs_verbatim_in_bash(server_port: int, tmp_path: Path) -> None:
    code = blocks(section("Try it"), "sh", "bash")
    assert code, "no ```sh block in the Try it section"
    for block in code:
        assert README_PORT in block
        # Only the port changes; -u fails on a variable nothing sets (was $ACCESS_TOKEN).
        script = block.replace(README_PORT, f"localhost:{server_port}")
        completed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            env=clean_environment(),
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        answers = [json.loads(line) for line in completed.stdout.splitlines()]
        # register, login, /me with the access token, the API token, /me with the API token
        assert len(answers) == 5, completed.stdout
        registered, logged_in, me, created, me_by_token = answers
        assert registered["user"]["email"] == "ada@example.com"
        assert logged_in["token_type"] == "Bearer"
        assert me["user"]["email"] == "ada@example.com"
        assert created["token"].startswith("ag_")
        assert created["scopes"] == ["read"]
        assert me_by_token["user"]["email"] == "ada@example.com"


def _run_in_a_terminal(command: str, cwd: Path, answers: list[str]) -> tuple[int, str]:
    """Run ``command`` with bash on a pseudo-terminal, typing each answer after its prompt
    (getpass flushes what was typed before the prompt)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", command],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=clean_environment(),
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    pending = list(answers)
    answered_at = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's other side closed
                    break
                if not chunk:
                    break
                output += chunk
                if pending and output[answered_at:].rstrip().endswith(b":"):  # a new prompt
                    os.write(master, (pending.pop(0) + "\n").encode())
                    answered_at = len(output)
            elif process.poll() is not None:
                break
        return process.wait(timeout=10), output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)


def test_flask_example_runs_and_its_admin_is_made_as_written(tmp_path: Path) -> None:
    text = section("Protect your own Flask app")
    (example,) = blocks(text, "python")
    (make_admin,) = blocks(text, "sh", "bash")
    assert "flask --app app run" in text
    (tmp_path / "app.py").write_text(example)

    returncode, output = _run_in_a_terminal(make_admin, tmp_path, [PASSWORD, PASSWORD])
    assert returncode == 0, output
    assert (tmp_path / "instance" / "authgate.db").exists()  # Flask's instance folder

    driver = f"""
import json
from app import app

client = app.test_client(use_cookies=False)
credentials = {{"login": "you@example.com", "password": {PASSWORD!r}}}
login = client.post("/api/auth/login", json=credentials)
assert login.status_code == 200, login.get_data(as_text=True)
auth = {{"Authorization": "Bearer " + login.json["access_token"]}}
tenants = client.get("/api/tenants", headers=auth).json["tenants"]
personal = next(t for t in tenants if t["personal"])
answers = {{
    "notes": client.get("/api/notes", headers=auth),
    "delete_note": client.delete("/api/notes/7", headers=auth),
    "send_message": client.post("/api/dialogs/42/messages", headers=auth),
    "update_settings": client.put(f"/api/tenants/{{personal['id']}}/settings", headers=auth),
}}
print(json.dumps({{k: [r.status_code, r.json] for k, r in answers.items()}}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", driver],
        capture_output=True,
        text=True,
        env=clean_environment(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    answers = json.loads(completed.stdout.splitlines()[-1])
    assert answers["notes"] == [200, {"owner": "you@example.com"}]
    assert answers["delete_note"] == [200, {"deleted": "7"}]  # the admin role, as made above
    assert answers["send_message"] == [201, {"dialog": "42", "from": "you@example.com"}]
    assert answers["update_settings"][0] == 200
    assert answers["update_settings"][1]["your_role"] == "owner"
