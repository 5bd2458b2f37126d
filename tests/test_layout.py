"""The package's shape: the runtime does not load provisioning tooling or Streamlit."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RAG = Path(__file__).resolve().parents[1] / "rag"


def test_the_runtime_does_not_import_model_provisioning_or_streamlit() -> None:
    code = (
        "import sys\n"
        "import rag.embed.embedder, rag.retrieve.retriever, rag.answer.pipeline, rag.llm.client, rag.index.build\n"
        "tooling = ('streamlit', 'rag.provision.install', 'rag.cli')\n"
        "print(sorted(m for m in sys.modules if m.startswith(tooling)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_nothing_under_rag_imports_streamlit() -> None:
    offenders = []
    for path in RAG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.relative_to(RAG)}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_every_stage_is_a_sub_package() -> None:
    top = sorted(p.stem for p in RAG.glob("*.py"))
    assert top == ["__init__", "config", "errors", "files", "types"]
    stages = sorted(p.name for p in RAG.iterdir() if (p / "__init__.py").exists())
    assert stages == [
        "answer",
        "attribute",
        "check",
        "cli",
        "embed",
        "eval",
        "index",
        "ingest",
        "llm",
        "provision",
        "retrieve",
        "serve",
        "sources",
        "state",
        "text",
    ]
