"""The lock files match pyproject.toml (CI fails when a dependency changes without `make lock`), and the
environment `make install` made holds exactly the locked versions."""

from __future__ import annotations

import importlib.metadata
import shutil
import tomllib
from pathlib import Path

from rag.provision.lockfile import LLM_LOCK, LOCK, lock_problems, read_pins

from .conftest import ROOT


def test_the_lock_files_match_pyproject() -> None:
    assert lock_problems(ROOT) == []


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    pins = read_pins(ROOT / LOCK) | read_pins(ROOT / LLM_LOCK)
    assert len(pins) > 50 and all(pin.hashes for pin in pins.values())
    wrong = {}
    for name, pin in pins.items():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "missing"
        if version != pin.version:
            wrong[name] = f"{version} (locked {pin.version})"
    assert wrong == {}, "not installed from the lock: run `make install`"
    torch = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"][0]
    assert torch.startswith("torch==") and importlib.metadata.version("torch").startswith(torch.split("==")[1])


def _copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", LOCK, LLM_LOCK):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_new_dependency_without_a_new_lock_is_caught(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text.replace('"tqdm>=4.66",', '"tqdm>=4.66",\n    "rich-click>=1.8",'))
    problems = lock_problems(root)
    assert any("changed since requirements.lock was made" in p for p in problems)
    assert any(p.startswith("rich-click is in pyproject.toml but not in requirements.lock") for p in problems)


def test_a_pin_outside_pyproject_range_is_caught(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lock = (root / LOCK).read_text()
    version = read_pins(root / LOCK)["bm25s"].version
    (root / LOCK).write_text(lock.replace(f"bm25s=={version}", "bm25s==0.4.0"))
    assert lock_problems(root) == [
        "requirements.lock pins bm25s==0.4.0, outside pyproject.toml's 'bm25s>=0.3,<0.4': make lock."
    ]


def test_comments_and_other_tables_of_pyproject_need_no_new_lock(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text.replace("line-length = 120", "line-length = 119") + "\n# a comment\n")
    assert lock_problems(root) == []
