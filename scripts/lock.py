"""Write the lock files from pyproject.toml: `make lock` (the one command that updates them).

`requirements.lock` pins every package `make install` installs (the project's dependencies and its `test` extra,
with what they pull in) to one version, with the sha256 of each of that version's files on PyPI; pip installs it
with `--require-hashes`. Two packages are kept out of it and installed by their own step:
- torch, pinned in pyproject.toml to its CPU build (`pip install torch==2.13.0`), whose CUDA build on PyPI would
  pull several GB of GPU libraries;
- llama-cpp-python, compiled from its sdist with portable CPU flags (`rag/provision/runtime.py`): its pin and
  hash go to `requirements-llm.lock`.
The first line of `requirements.lock` holds the sha256 of the pyproject.toml requirements it was made from;
`tests/test_lock.py` fails when they changed without a new lock.

Usage: .venv/bin/python scripts/lock.py   (installs `uv` into the venv when it is missing; needs PyPI)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.provision.lockfile import LLM_LOCK, LOCK, pyproject_digest  # noqa: E402

OWN_STEP = ("llama-cpp-python",)  # installed by its own step (the portable build), pinned in requirements-llm.lock
LOCAL_TORCH = Path("/opt/wheels")  # where this workplace keeps torch's CPU build; elsewhere PyTorch's CPU index


def uv() -> str:
    """The uv executable, installed into this interpreter's environment when missing."""
    here = Path(sys.executable).parent / "uv"
    if not here.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "uv"], check=True)
    return str(here) if here.exists() else (shutil.which("uv") or "uv")


def compile_lock(out: Path) -> None:
    """Resolve pyproject.toml (with the test extra) for CPython 3.11 on x86-64 Linux, with every file's hash."""
    torch_source = (
        ["--find-links", str(LOCAL_TORCH)]
        if any(LOCAL_TORCH.glob("torch-*+cpu-*.whl"))
        else ["--extra-index-url", "https://download.pytorch.org/whl/cpu", "--index-strategy", "unsafe-best-match"]
    )
    cmd = [
        uv(), "pip", "compile", "--quiet", str(ROOT / "pyproject.toml"), "--extra", "test", "--generate-hashes",
        "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28", "--no-header",
        "--no-emit-package", "torch", *torch_source, "-o", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)


def split(text: str) -> tuple[str, str]:
    """The compiled lock's blocks, less those installed by their own step; and those blocks."""
    text = text.split("# The following packages were excluded", 1)[0]  # uv's note: torch, said in our header
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    kept, own = [], []
    for block in blocks:
        name = re.match(r"[A-Za-z0-9._-]+", block)
        if name and name.group(0).lower() in OWN_STEP:
            own.append(block)
        elif name:
            kept.append(block)
    return "\n".join(kept) + "\n", "\n".join(own) + "\n"


def main() -> None:
    """Write requirements.lock and requirements-llm.lock."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "compiled.txt"
        if (ROOT / LOCK).exists():  # uv keeps an existing output's pins where they still fit: no needless upgrades
            out.write_text((ROOT / LOCK).read_text() + (ROOT / LLM_LOCK).read_text())
        compile_lock(out)
        kept, own = split(out.read_text())
    header = (
        f"# pyproject-sha256: {pyproject_digest(ROOT / 'pyproject.toml')}\n"
        "# Made by `make lock` (scripts/lock.py) from pyproject.toml: do not edit by hand.\n"
        "# torch (pinned in pyproject.toml, CPU build) and llama-cpp-python (requirements-llm.lock, built with\n"
        "# portable CPU flags by rag/provision/runtime.py) are installed by their own steps.\n"
    )
    (ROOT / LOCK).write_text(header + kept)
    (ROOT / LLM_LOCK).write_text(
        "# Made by `make lock` with requirements.lock: the answer runtime's sdist, compiled by\n"
        "# `python -m rag.provision.runtime` with portable CPU flags (never -march=native).\n" + own
    )
    pins = sum(1 for line in kept.splitlines() if re.match(r"[A-Za-z0-9]", line))
    print(f"wrote {LOCK} ({pins} packages) and {LLM_LOCK}")


if __name__ == "__main__":
    main()
