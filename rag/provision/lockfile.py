"""The lock files: what `make install` installs, and whether they still match pyproject.toml."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

LOCK = "requirements.lock"
LLM_LOCK = "requirements-llm.lock"
LOCKED_EXTRAS = ("test",)
OWN_STEPS = {"torch": "pyproject.toml (its CPU build, `pip install torch==…`)", "llama-cpp-python": LLM_LOCK}


@dataclass(frozen=True)
class Pin:
    """One locked package: its name (normalized), exact version and the sha256 of its allowed files."""

    name: str
    version: str
    hashes: tuple[str, ...]


def normalize(name: str) -> str:
    """A package name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path) -> list[str]:
    """The requirement strings the lock is made from: the dependencies and the locked extras."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(r for extra in LOCKED_EXTRAS for r in extras.get(extra, []))]


def pyproject_digest(pyproject: Path) -> str:
    """sha256 of the requirements the lock is made from (a comment or a new script in pyproject.toml is no change)."""
    return hashlib.sha256(json.dumps(requirements(pyproject)).encode()).hexdigest()


def read_pins(lock: Path) -> dict[str, Pin]:
    """The pins of a lock file, by normalized name."""
    pins: dict[str, Pin] = {}
    current: list[str] = []
    for line in lock.read_text(encoding="utf-8").splitlines() + [""]:
        if line and not line.startswith((" ", "#")) and current:
            _add(pins, current)
            current = []
        if line and not line.startswith("#"):
            current.append(line.strip())
    if current:
        _add(pins, current)
    return pins


def _add(pins: dict[str, Pin], lines: list[str]) -> None:
    text = " ".join(part.rstrip("\\").strip() for part in lines if not part.startswith("#"))
    match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", text)
    if match:
        name = normalize(match.group(1))
        pins[name] = Pin(name, match.group(2), tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", text)))


def recorded_digest(lock: Path) -> str | None:
    """The pyproject digest written at the top of a lock file."""
    match = re.search(r"^# pyproject-sha256: ([0-9a-f]{64})$", lock.read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else None


def lock_problems(root: Path) -> list[str]:
    """Why the lock files do not match pyproject.toml (empty when they do); each says to run `make lock`."""
    from packaging.requirements import Requirement

    pyproject, lock, llm_lock = root / "pyproject.toml", root / LOCK, root / LLM_LOCK
    for path in (lock, llm_lock):
        if not path.exists():
            return [f"{path.name} is missing: run `make lock`."]
    problems = []
    if recorded_digest(lock) != pyproject_digest(pyproject):
        problems.append(f"pyproject.toml's requirements changed since {LOCK} was made: run `make lock`.")
    pins, own = read_pins(lock), read_pins(llm_lock)
    for text in requirements(pyproject):
        req = Requirement(text)
        name = normalize(req.name)
        if name == "torch":
            continue  # pinned exactly in pyproject.toml itself (tested there)
        pin = (own if name in OWN_STEPS else pins).get(name)
        where = LLM_LOCK if name in OWN_STEPS else LOCK
        if pin is None:
            problems.append(f"{req.name} is in pyproject.toml but not in {where}: run `make lock`.")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{where} pins {req.name}=={pin.version}, outside pyproject.toml's {text!r}: make lock.")
        elif not pin.hashes:
            problems.append(f"{where} has no hash for {req.name}: run `make lock`.")
    for name in OWN_STEPS:
        if name in pins:
            problems.append(f"{LOCK} must not hold {name} (it has its own step, {OWN_STEPS[name]}): run `make lock`.")
    return problems
