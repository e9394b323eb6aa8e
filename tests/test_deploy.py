"""The Dockerfile and compose.yaml say what the README promises, and their command lines work.

Docker is not available where these tests run, so the files are parsed and their command
lines (CMD, HEALTHCHECK, the image's ENV) are run here, with the container's paths mapped to a
temporary directory: ``/data`` (the volume) → ``tmp_path``, the image's config → a config
pointing at the loopback fakes.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from bot.health import beat
from tests.fakes.yahoo import YahooFake, chart_response
from tests.procs import wait_until

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def args_of(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile() if kw == keyword]


def exec_form(text: str) -> list[str]:
    """``["python", "-m", "bot"]`` → the list (shell form is refused: no signal forwarding)."""
    assert text.startswith("["), f"not exec form: {text}"
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in args_of("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def healthcheck_cmd() -> list[str]:
    [rest] = args_of("HEALTHCHECK")
    _, _, command = rest.partition("CMD ")
    return exec_form(command.strip())


def volume() -> str:
    [rest] = args_of("VOLUME")
    [path] = exec_form(rest) if rest.startswith("[") else rest.split()
    return path


def local(argv: list[str]) -> list[str]:
    """The container's ``python`` is this interpreter (the test env has the lock installed)."""
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------


def test_dockerfile_essentials() -> None:
    steps = dockerfile()
    keywords = [kw for kw, _ in steps]
    [base] = args_of("FROM")
    wanted = (ROOT / ".python-version").read_text().strip()
    assert base == f"python:{wanted}-slim", "a slim Python base, the version .python-version names"
    # dependencies from the lock, before the app's code (a cached layer), then the app
    copies = args_of("COPY")
    assert copies[0] == "requirements.txt ./"
    assert any("pip install -r requirements.txt" in run for run in args_of("RUN"))
    # a non-root user, switched to after every RUN (which need root) and before CMD
    [user] = args_of("USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")
    assert any("useradd" in run and user in run for run in args_of("RUN"))
    assert keywords.index("USER") < keywords.index("CMD")
    # state on the volume; the health file too
    env = image_env()
    data = volume()
    assert env["DATABASE_URL"] == f"sqlite:///{data}/bot-state.sqlite"
    assert env["BOT_HEALTH_FILE"].startswith(f"{data}/")
    assert any(f"chown {user}" in run and data in run for run in args_of("RUN"))
    assert healthcheck_cmd() == ["python", "-m", "bot", "healthcheck"]
    assert "--start-period=" in args_of("HEALTHCHECK")[0]
    [cmd] = args_of("CMD")
    assert exec_form(cmd) == ["python", "-m", "bot", "run"]
    assert args_of("STOPSIGNAL") == ["SIGTERM"]
    assert not any(kw == "ENTRYPOINT" for kw in keywords)


def mapped_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The image's ENV with ``/data`` → ``tmp_path`` and ``/app`` → the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    env.pop("DATABASE_URL", None)
    data = volume()
    for key, value in image_env().items():
        value = value.replace(data, str(tmp_path)).replace("/app/", f"{ROOT}/")
        env[key] = value
    env.update(extra)
    return env


def test_the_image_config_passes_check(tmp_path: Path) -> None:
    env = mapped_env(tmp_path)
    assert env["BOT_CONFIG"] == str(ROOT / "config.yaml")
    result = subprocess.run(
        local(["python", "-m", "bot", "check"]),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"state: sqlite:///{tmp_path}/bot-state.sqlite" in result.stdout


FAKE_CONFIG = """\
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  chats: {{traders: ${{TELEGRAM_CHAT_ID}}}}
state:
  url: ${{DATABASE_URL}}
poll:
  every: 1s
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
"""


@pytest.fixture
def fake_config(tmp_path: Path, yahoo_fake: YahooFake) -> Path:
    yahoo_fake.chart("^RUT", chart_response(price=2400.0))
    path = tmp_path / "app-config.yaml"
    path.write_text(FAKE_CONFIG.format(yahoo=yahoo_fake.base_url))
    return path


@pytest.mark.slow
def test_the_image_command_runs_beats_its_health_file_and_stops_on_sigterm(
    tmp_path: Path, fake_config: Path
) -> None:
    env = mapped_env(tmp_path, BOT_CONFIG=str(fake_config))
    health = Path(env["BOT_HEALTH_FILE"])
    [cmd] = args_of("CMD")

    def healthcheck() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            local(healthcheck_cmd()), env=env, capture_output=True, text=True, timeout=30
        )

    assert healthcheck().returncode == 1  # not running yet: unhealthy
    process = subprocess.Popen(
        local(exec_form(cmd)),
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(health.exists, 30, "the health file")
        result = healthcheck()
        assert result.returncode == 0, result.stdout
        assert result.stdout.startswith("healthy: last beat")
        assert (tmp_path / "bot-state.sqlite").exists()  # the state is on the volume
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    beat(health, now=time.time() - 600)  # the process is gone: its last beat grows old
    stale = healthcheck()
    assert stale.returncode == 1 and stale.stdout.startswith("unhealthy: last beat 600 s ago")


# ---------------------------------------------------------------------------------------------
# compose.yaml
# ---------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_runs_the_image_with_postgresql() -> None:
    services = compose()["services"]
    bot, db = services["bot"], services["db"]
    assert bot["build"] == "."
    assert str(db["image"]).startswith("postgres:")
    url = urlsplit(bot["environment"]["DATABASE_URL"])
    assert url.scheme == "postgresql" and url.hostname == "db"
    assert url.path.lstrip("/") == db["environment"]["POSTGRES_DB"]
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    # the bot's volume is the image's VOLUME; both named volumes are declared
    [mount] = bot["volumes"]
    name, target = mount.split(":")
    assert target == volume() and name in compose()["volumes"]
    assert db["volumes"][0].split(":")[0] in compose()["volumes"]
    for key in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"):
        assert key in bot["environment"]
    assert bot["restart"] == "unless-stopped"


@pytest.mark.postgres
@pytest.mark.slow
def test_the_compose_database_url_runs_a_cycle_against_postgresql(
    tmp_path: Path, fake_config: Path
) -> None:
    """compose's DATABASE_URL, with its host and credentials swapped for the test server's
    (the server `db` exists only inside compose), drives `run --once` into PostgreSQL."""
    from tests.conftest_store import pg_schema, pg_url_or_skip

    test_url = urlsplit(pg_url_or_skip())
    composed = urlsplit(compose()["services"]["bot"]["environment"]["DATABASE_URL"])
    assert composed.scheme == "postgresql"
    with pg_schema(pg_url_or_skip()) as schema:
        url = urlunsplit((composed.scheme, test_url.netloc, test_url.path, f"schema={schema}", ""))
        env = mapped_env(tmp_path, BOT_CONFIG=str(fake_config), DATABASE_URL=url)
        [cmd] = args_of("CMD")
        result = subprocess.run(
            local([*exec_form(cmd), "--once"]),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        import psycopg

        with psycopg.connect(pg_url_or_skip()) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            }
        assert "rule_state" in tables
        assert not (tmp_path / "bot-state.sqlite").exists()


# ---------------------------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------------------------


def test_readme_quick_start_works_on_a_stock_debian_python() -> None:
    """A venv first (Debian/Ubuntu refuse system-wide pip; `python` may not exist before it),
    then the two commands, both installing the lock."""
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = quick.split("```sh\n")[1:]
    commands = [line for line in blocks[0].splitlines() if line and not line.startswith("#")]
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert commands[:2] == [
        venv + "pip install -r requirements.txt -e . && python -m bot run --demo",
        venv + "pip install -r requirements.txt -e '.[test]' && python -m pytest",
    ]
    assert "pip install -q -r requirements.txt -e '.[test]'" in (ROOT / ".ci" / "run").read_text()
