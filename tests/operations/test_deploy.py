"""The deployment files: a hardened systemd unit that systemd itself accepts,
and a container file that runs the same console script as a non-root user."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from susurro.relay.cli import build_parser
from susurro.relay.environment import PREFIX, variable_for
from tests.helpers.processes import WAIT, console_script

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "susurro-relay.service"
#: The template for one cluster node per port (docs/deploy.md, "Scaling out").
TEMPLATE = ROOT / "deploy" / "susurro-relay@.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
ENV_FILE = ROOT / "deploy" / "relay.env"


def pyproject(key: str) -> str:
    """One ``key = value`` line of pyproject.toml (tomllib is not in Python 3.10)."""
    match = re.search(rf"^{re.escape(key)}\s*=\s*(.+)$", (ROOT / "pyproject.toml").read_text(), re.M)
    assert match, key
    return match.group(1).strip()


def unit_settings(unit: Path = UNIT) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def container_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            steps.append((instruction.upper(), rest.strip()))
    return steps


def test_systemd_unit_is_hardened() -> None:
    s = unit_settings()
    assert s["DynamicUser"] == ["yes"] and s["User"] == ["susurro"]  # a dedicated unprivileged user
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    assert s["Restart"] == ["on-failure"]
    assert s["StandardError"] == ["journal"] and s["StandardOutput"] == ["journal"]
    assert s["CapabilityBoundingSet"] == [""]
    for key in ("ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID", "LockPersonality"):
        assert s[key] == ["yes"], key
    assert "AF_INET AF_INET6" in s["RestrictAddressFamilies"][0]


#: What the template may set differently from the single unit: the instance's port, files and name.
PER_INSTANCE = {"Description", "After", "ExecStart", "EnvironmentFile", "SyslogIdentifier"}


def test_the_cluster_template_is_the_single_unit_per_port() -> None:
    single, template = unit_settings(), unit_settings(TEMPLATE)
    for key in set(single) | set(template):
        if key not in PER_INSTANCE:
            assert template.get(key) == single.get(key), key  # the same hardening, limits and restarts
    assert template["ExecStart"] == [single["ExecStart"][0] + " --port %i"]
    assert "-/etc/susurro/relay-%i.env" in template["EnvironmentFile"]
    # The Redis password comes from a root-only file systemd reads, never from a command line.
    assert "/etc/susurro/redis.env" in template["EnvironmentFile"]
    assert "PASSWORD" not in template["ExecStart"][0].upper()


@pytest.mark.parametrize(
    ("source", "name"), [(UNIT, "susurro-relay.service"), (TEMPLATE, "susurro-relay@12345.service")]
)
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path, source: Path, name: str) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    # verify also checks that ExecStart exists: point it at this checkout's script.
    script = console_script("susurro-relay")
    if len(script) != 1:
        pytest.skip("the susurro-relay console script is not installed")
    unit = tmp_path / name  # a template is verified as one of its instances
    unit.write_text(source.read_text().replace("/opt/susurro/.venv/bin/susurro-relay", script[0]))
    result = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=WAIT * 4, check=False, cwd=tmp_path
    )
    # verify exits 0 even for unknown or unparsable settings; it only warns. Demand silence.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_container_runs_the_relay_as_a_non_root_user() -> None:
    steps = container_instructions()
    base = next(args for op, args in steps if op == "FROM")
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base), base
    users = [(i, args) for i, (op, args) in enumerate(steps) if op == "USER"]
    assert users, "no USER: the relay would run as root"
    last_user_index, last_user = users[-1]
    assert last_user.split(":")[0] not in ("root", "0")
    entry_index = next(i for i, (op, _) in enumerate(steps) if op == "ENTRYPOINT")
    assert last_user_index < entry_index
    # The user is created before it is used.
    name = last_user.split(":")[0]
    assert any(op == "RUN" and "useradd" in args and name in args for op, args in steps[:last_user_index])


def test_container_and_unit_use_the_same_console_script() -> None:
    assert pyproject("susurro-relay") == '"susurro.relay.cli:main"'
    entry = next(args for op, args in container_instructions() if op == "ENTRYPOINT")
    assert json.loads(entry) == ["susurro-relay"]  # exec form: SIGTERM reaches the relay
    assert Path(unit_settings()["ExecStart"][0].split()[0]).name == "susurro-relay"


def package_folders() -> set[str]:
    """The repository folders pip reads for the packages in pyproject (susurro/ links to the others)."""
    packages = json.loads(_packages_block())
    folders = {(ROOT / package.replace(".", "/")).resolve().relative_to(ROOT).parts[0] for package in packages}
    assert "susurro" in folders and len(folders) > 1, folders
    return folders | {"susurro"}


def _packages_block() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = (\[.*?\])", text, re.M | re.S)
    assert block, "no packages list in pyproject.toml"
    return re.sub(r",\s*\]$", "]", block.group(1))


def test_container_copies_every_package_it_installs() -> None:
    copies = [args.split() for op, args in container_instructions() if op == "COPY"]
    copied = {parts[0] for parts in copies if len(parts) == 2 and parts[1].rstrip("/") in (parts[0], f"./{parts[0]}")}
    missing = sorted(package_folders() - copied)
    assert not missing, f"Containerfile does not COPY {missing}: pip install would fail"


def test_deploy_files_only_set_variables_the_relay_knows() -> None:
    parser = build_parser()
    known = {variable_for(action) for action in parser._actions if action.option_strings}
    texts = [UNIT.read_text(), TEMPLATE.read_text(), CONTAINERFILE.read_text(), ENV_FILE.read_text()]
    used = {name for text in texts for name in re.findall(PREFIX + r"[A-Z_]+", text)}
    assert used and used <= known, f"unknown: {sorted(used - known)}"
