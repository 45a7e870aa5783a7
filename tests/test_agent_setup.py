"""The host agent's setup: its config file, where the token comes from, plain-http refusal, the
spool's file modes, and agent/install.sh with its systemd unit.

Delivery goes to the stand-in receiver of tests/test_agent.py (a real HTTP server on loopback).
"""

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.host_agent import Spool, parse_args
from tests.test_agent import (  # noqa: F401 (receiver: a fixture)
    ROOT,
    environment_without_vigil,
    receiver,
    spooled_batch,
)


def run_installed_agent(prefix: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=prefix,
        env=environment_without_vigil(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def authorizations(receiver) -> set[str]:  # noqa: F811 (the fixture's value)
    return {request["headers"]["Authorization"] for request in receiver.requests}


@pytest.fixture
def agent_copy(tmp_path) -> Path:
    """The agent/ folder copied alone onto a "host" directory, as install.sh or scp would."""
    host = tmp_path / "host"
    (host / "agent").mkdir(parents=True)
    for name in ("__init__.py", "__main__.py", "host_agent.py"):
        (host / "agent" / name).write_bytes((ROOT / "agent" / name).read_bytes())
    return host


# Where the token comes from


def test_the_token_can_come_from_the_environment_instead_of_the_command_line(
    receiver,  # noqa: F811
    agent_copy,
):
    done = run_installed_agent(
        agent_copy,
        *("--url", receiver.url, "--spool", "spool.jsonl", "--once"),
        VIGIL_AGENT_TOKEN="vgl_from_the_environment",
    )

    assert done.returncode == 0, done.stderr
    assert authorizations(receiver) == {"Bearer vgl_from_the_environment"}
    assert receiver.batches


def test_a_config_file_gives_every_setting_its_paths_relative_to_it_and_options_win_over_it(
    receiver,  # noqa: F811
    agent_copy,
):
    (agent_copy / "token").write_text("vgl_from_the_token_file\n")
    (agent_copy / "agent.toml").write_text(
        f'url = "{receiver.url}"\n'
        'token_file = "token"\n'
        'spool = "spool/spool.jsonl"\n'
        'agent_id = "from-the-file"\n'
        'name = "Configured"\n'
        "interval = 8\n"
    )

    done = run_installed_agent(
        agent_copy.parent,
        "--config",
        "host/agent.toml",
        "--name",
        "From the option",
        "--once",
        PYTHONPATH=str(agent_copy),
    )

    assert done.returncode == 0, done.stderr
    assert authorizations(receiver) == {"Bearer vgl_from_the_token_file"}
    instance = receiver.batches[-1]["body"]["instance"]
    assert (instance["agent_id"], instance["name"]) == ("from-the-file", "From the option")


def test_the_config_file_may_come_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("vgl_t\n")
    config = tmp_path / "agent.toml"
    config.write_text(f'url = "https://vigil.example.com"\ntoken_file = "{tmp_path / "token"}"\n')
    monkeypatch.setenv("VIGIL_AGENT_CONFIG", str(config))
    monkeypatch.delenv("VIGIL_AGENT_TOKEN", raising=False)

    args = parse_args([])

    assert (args.url, args.token, args.interval) == ("https://vigil.example.com", "vgl_t", 30.0)


@pytest.mark.parametrize(
    "config, complaint",
    [
        ('url = "https://vigil.example.com"\ntoken = "vgl_inline"\n', "token_file"),
        ('url = "https://vigil.example.com"\nintervall = 5\n', "unknown settings intervall"),
        ('url = "https://vigil.example.com"\ninterval = "often"\n', "interval must be a float"),
        ("url = \n", "--config"),
    ],
)
def test_a_config_file_with_a_mistake_is_refused_and_says_what_is_wrong(
    agent_copy, config, complaint
):
    (agent_copy / "agent.toml").write_text(config)

    done = run_installed_agent(
        agent_copy, "--config", "agent.toml", "--once", VIGIL_AGENT_TOKEN="vgl_t"
    )

    assert done.returncode == 2
    assert complaint in done.stderr


def test_without_any_token_the_agent_says_where_one_may_come_from(agent_copy):
    done = run_installed_agent(agent_copy, "--url", "https://vigil.example.com", "--once")

    assert done.returncode == 2
    assert "--token-file" in done.stderr and "VIGIL_AGENT_TOKEN" in done.stderr


# Plain http


@pytest.mark.parametrize(
    "url", ["http://vigil.example.com", "http://10.0.0.5:8000", "http://[2001:db8::1]/"]
)
def test_plain_http_to_another_host_is_refused(url, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(["--url", url, "--token", "vgl_t"])

    assert exited.value.code == 2
    assert "refusing plain http://" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]
)
def test_plain_http_to_this_host_itself_is_allowed(url):
    assert parse_args(["--url", url, "--token", "vgl_t"]).url == url


def test_insecure_allows_plain_http_to_another_host():
    args = parse_args(["--url", "http://vigil.example.com", "--token", "vgl_t", "--insecure"])

    assert args.insecure and args.url == "http://vigil.example.com"


def test_https_to_another_host_needs_nothing_more():
    assert parse_args(["--url", "https://vigil.example.com", "--token", "vgl_t"]).token == "vgl_t"


# The spool


def test_the_spool_is_created_owner_only_whatever_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        spool = Spool(tmp_path / "cache" / "spool.jsonl")
        spool.append(spooled_batch(1))
        appended_mode = mode_of(spool.path)
        spool.replace([spooled_batch(2)])
    finally:
        os.umask(previous)

    assert appended_mode == 0o600
    assert mode_of(spool.path) == 0o600
    assert mode_of(spool.path.parent) == 0o700
    assert [batch.key for batch in spool.pending()] == ["key-2"]


def test_a_spool_left_readable_by_an_older_agent_is_made_owner_only(tmp_path):
    path = tmp_path / "spool.jsonl"
    path.write_text("")
    path.chmod(0o644)

    Spool(path).append(spooled_batch(1))

    assert mode_of(path) == 0o600


# agent/install.sh and agent/vigil-agent.service


def test_install_sh_installs_a_working_agent_with_its_config_token_and_unit(
    receiver,  # noqa: F811
    tmp_path,
):
    places = {
        "VIGIL_AGENT_PREFIX": tmp_path / "opt",
        "VIGIL_AGENT_CONFIG_DIR": tmp_path / "etc",
        "VIGIL_AGENT_STATE_DIR": tmp_path / "state",
        "VIGIL_AGENT_UNIT_DIR": tmp_path / "units",
    }
    places["VIGIL_AGENT_UNIT_DIR"].mkdir()
    user = pwd.getpwuid(os.getuid()).pw_name
    env = {name: str(path) for name, path in places.items()}
    env |= {"VIGIL_AGENT_USER": user, "VIGIL_AGENT_PYTHON": sys.executable}
    env |= {"VIGIL_AGENT_NO_START": "1", "VIGIL_AGENT_TOKEN": "vgl_installed"}

    done = subprocess.run(
        ["sh", str(ROOT / "agent" / "install.sh"), "--url", receiver.url, "--name", "Installed"],
        env=environment_without_vigil(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    config_dir, state_dir = places["VIGIL_AGENT_CONFIG_DIR"], places["VIGIL_AGENT_STATE_DIR"]
    token_file = config_dir / "token"
    assert token_file.read_text().strip() == "vgl_installed"
    assert mode_of(token_file) == 0o640 and mode_of(config_dir / "agent.toml") == 0o640
    assert mode_of(state_dir) == 0o700
    unit = (places["VIGIL_AGENT_UNIT_DIR"] / "vigil-agent.service").read_text()
    assert f"ExecStart={sys.executable} -m agent --config {config_dir}/agent.toml" in unit
    assert f"WorkingDirectory={places['VIGIL_AGENT_PREFIX']}" in unit
    assert f"User={user}" in unit and f"ReadWritePaths={state_dir}" in unit
    assert "vgl_installed" not in unit
    verified = subprocess.run(
        ["systemd-analyze", "verify", places["VIGIL_AGENT_UNIT_DIR"] / "vigil-agent.service"],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr

    ran = run_installed_agent(
        places["VIGIL_AGENT_PREFIX"], "--config", str(config_dir / "agent.toml"), "--once"
    )

    assert ran.returncode == 0, ran.stderr
    assert authorizations(receiver) == {"Bearer vgl_installed"}
    assert receiver.batches[-1]["body"]["instance"]["name"] == "Installed"


def test_install_sh_refuses_to_install_without_a_token(tmp_path):
    env = {
        "VIGIL_AGENT_PREFIX": str(tmp_path / "opt"),
        "VIGIL_AGENT_CONFIG_DIR": str(tmp_path / "etc"),
        "VIGIL_AGENT_STATE_DIR": str(tmp_path / "state"),
        "VIGIL_AGENT_UNIT_DIR": str(tmp_path),
        "VIGIL_AGENT_USER": pwd.getpwuid(os.getuid()).pw_name,
        "VIGIL_AGENT_PYTHON": sys.executable,
        "VIGIL_AGENT_NO_START": "1",
    }

    done = subprocess.run(
        ["sh", str(ROOT / "agent" / "install.sh"), "--url", "https://vigil.example.com"],
        env=environment_without_vigil(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "no token" in done.stderr
    assert not (tmp_path / "vigil-agent.service").exists()
