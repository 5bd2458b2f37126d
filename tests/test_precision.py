"""The encoder's precision (RAG_EMBED_PRECISION): what `auto` picks and why, both choices forced, and an index of one
precision searched with vectors of the other."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embed.precision import MIN_COSINE, MIN_SPEEDUP, PROBE_TEXTS, choose, combined, cpu_bf16, native_bf16
from rag.index.build import build_index, update_index
from rag.index.manifest import read_manifest
from rag.index.store import index_info, load_index
from rag.retrieve.retriever import Retriever

from .conftest import FakeEmbedder
from .helpers import FAKE_SPEC, build_fake


class Probe:
    """An encoder for the probe: bf16 takes `bf16_s` and fp32 `fp32_s` per call; bf16 vectors moved by `shift`."""

    def __init__(self, fp32_s: float, bf16_s: float, shift: float = 0.0) -> None:
        self.fp32_s, self.bf16_s, self.shift = fp32_s, bf16_s, shift
        self.calls: list[bool] = []

    def __call__(self, texts: Sequence[str], bf16: bool) -> np.ndarray:
        self.calls.append(bf16)
        time.sleep(self.bf16_s if bf16 else self.fp32_s)
        vecs = np.eye(len(texts), 8, dtype=np.float32)
        if bf16:
            vecs[:, -1] += self.shift
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs


def test_native_bf16_is_avx512_bf16_or_amx_the_os_grants() -> None:
    assert native_bf16({"avx2", "avx512_bf16"}, amx_granted=False) == "AVX512_BF16"
    assert native_bf16({"avx2", "amx_bf16", "amx_tile"}, amx_granted=True) == "AMX-BF16"
    assert native_bf16({"avx2", "amx_bf16", "amx_tile"}, amx_granted=False) is None  # reported, not allowed
    assert native_bf16({"avx2", "avx512f"}, amx_granted=True) is None


def test_forced_precisions_are_taken_without_a_probe() -> None:
    probe = Probe(0.0, 0.0)
    for setting in ("fp32", "bf16"):
        choice = choose(setting, "cpu", None, probe)
        assert choice.precision == setting and "RAG_EMBED_PRECISION" in choice.reason
    assert probe.calls == []
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        choose("fp16", "cpu", None, probe)


def test_auto_keeps_fp32_without_native_bf16_or_off_the_cpu() -> None:
    probe = Probe(0.0, 0.0)
    assert choose("auto", "cpu", None, probe).precision == "fp32"
    assert "no native bf16" in choose("auto", "cpu", None, probe).reason
    assert choose("auto", "cuda", "AMX-BF16", probe).precision == "fp32"
    assert probe.calls == []


def test_auto_picks_bf16_only_when_the_probe_finds_it_faster_and_the_same() -> None:
    fast = choose("auto", "cpu", "AMX-BF16", Probe(0.02, 0.005))
    assert fast.precision == "bf16" and fast.speedup is not None and fast.speedup > 2 and fast.cosine == 1.0
    assert "AMX-BF16" in fast.reason
    slow = choose("auto", "cpu", "AVX512_BF16", Probe(0.01, 0.014))
    assert slow.precision == "fp32" and slow.speedup is not None and slow.speedup < 1
    assert f"under {MIN_SPEEDUP}×" in slow.reason
    moved = choose("auto", "cpu", "AMX-BF16", Probe(0.02, 0.005, shift=0.05))
    assert moved.precision == "fp32" and moved.cosine is not None and moved.cosine < MIN_COSINE
    assert f"below cosine {MIN_COSINE}" in moved.reason


def test_the_probe_times_each_precision_on_every_probe_text() -> None:
    probe = Probe(0.0, 0.0)
    choose("auto", "cpu", "AVX512_BF16", probe)
    assert probe.calls.count(True) == probe.calls.count(False) >= 2


def test_the_manifest_records_the_precisions_of_its_vectors(data_copy: Path, tmp_path: Path) -> None:
    assert combined("bf16") == "bf16" and combined("", "fp32") == "fp32" and combined() == "fp32"
    assert combined("bf16", "fp32") == combined("bf16+fp32", "bf16") == "bf16+fp32"
    build_fake(data_copy, tmp_path / "index")
    assert read_manifest(tmp_path / "index").embed_precision == "fp32"  # an embedder that does not say: fp32
    assert index_info(tmp_path / "index")["precision"] == "fp32"

    class Bf16Fake(FakeEmbedder):
        precision = "bf16"

    (data_copy / "extra.txt").write_text("مقال إضافي عن الطقس في القاهرة. الجو حار اليوم.", encoding="utf-8")
    update_index(data_copy, tmp_path / "index", Bf16Fake(), FAKE_SPEC)
    assert read_manifest(tmp_path / "index").embed_precision == "bf16+fp32"  # kept fp32 vectors, new bf16 ones
    build_index(data_copy, tmp_path / "index", Bf16Fake(), FAKE_SPEC)
    assert read_manifest(tmp_path / "index").embed_precision == "bf16"


# ------------------------------------------------------------ the real model


def test_auto_on_this_machine_picks_what_its_cpu_and_probe_say(real_embedder) -> None:  # type: ignore[no-untyped-def]
    auto = real_embedder.with_precision("auto")
    choice = auto.choose_precision()
    native = cpu_bf16()
    print(f"this machine: native bf16 = {native}; auto picks {choice.describe()}")
    if native is None:
        assert choice.precision == "fp32" and choice.cosine is None and "no native bf16" in choice.reason
    else:
        assert choice.cosine is not None and choice.speedup is not None and native in choice.reason
        assert choice.cosine >= 0.999  # bf16 products: the same vectors within rounding
        assert (choice.precision == "bf16") == (choice.cosine >= MIN_COSINE and choice.speedup >= MIN_SPEEDUP)
    assert auto.precision == ""  # nothing embedded yet
    auto.embed_documents(["passage"])
    assert auto.precision == choice.precision


def test_the_probe_times_torch_in_both_precisions(real_embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The probe's eight texts are a short call: they must not go to ONNX Runtime, or fp32 would be timed there."""
    auto = real_embedder.with_precision("auto")
    assert auto.onnx is not None
    monkeypatch.setattr(auto.onnx, "encode", lambda *a, **k: pytest.fail("the probe went through ONNX Runtime"))
    choice = auto.choose_precision(native="AVX512_BF16")  # the probe runs whatever this CPU has
    assert choice.cosine is not None and choice.cosine >= 0.999 and choice.speedup is not None
    print(f"probe forced on this machine: {choice.describe()}")


def test_bf16_and_fp32_vectors_are_the_same_within_the_bar(real_embedder) -> None:  # type: ignore[no-untyped-def]
    fp32, bf16 = real_embedder.with_precision("fp32"), real_embedder.with_precision("bf16")
    a, b = fp32.embed_documents(list(PROBE_TEXTS)), bf16.embed_documents(list(PROBE_TEXTS))
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert not np.array_equal(a, b)  # bf16 really ran
    assert float(np.min(np.sum(a * b, axis=1))) >= MIN_COSINE
    q = ["What did Mao Ning say about dual-use exports?", "ماذا قالت ماو نينغ؟"]
    assert float(np.min(np.sum(fp32.embed_queries(q) * bf16.embed_queries(q), axis=1))) >= MIN_COSINE


def test_an_index_of_one_precision_is_searched_with_the_other(  # type: ignore[no-untyped-def]
    real_embedder, real_settings: Settings, seed_questions: list[dict], tmp_path: Path  # type: ignore[type-arg]
) -> None:
    spec = real_settings.index_spec
    fp32, bf16 = real_embedder.with_precision("fp32"), real_embedder.with_precision("bf16")
    data = tmp_path / "data"
    shutil.copytree(real_settings.data_dir, data)
    for name, embedder in (("fp32", fp32), ("bf16", bf16)):
        build_index(data, tmp_path / name, embedder, spec)
        assert read_manifest(tmp_path / name).embed_precision == name
        assert index_info(tmp_path / name)["precision"] == name
    built = {name: load_index(tmp_path / name, spec) for name in ("fp32", "bf16")}
    a, b = (np.asarray(built[n].vectors.chunks) for n in ("fp32", "bf16"))
    assert a.shape == b.shape and float(np.min(np.sum(a * b, axis=1))) >= MIN_COSINE
    questions = [q["question"] for q in seed_questions][:12]
    for index_precision, query_precision in (("bf16", "fp32"), ("fp32", "bf16")):
        same = Retriever(built[index_precision], {"fp32": fp32, "bf16": bf16}[query_precision])
        ref = Retriever(built[query_precision], {"fp32": fp32, "bf16": bf16}[query_precision])
        for question in questions:
            got, want = same.search(question, 5), ref.search(question, 5)
            assert got[0].chunk.id == want[0].chunk.id, (index_precision, query_precision, question)
            assert abs(got[0].dense - want[0].dense) < 1e-3
    (data / "extra.txt").write_text("مقال إضافي عن الطقس في القاهرة. الجو حار اليوم والرياح خفيفة.", encoding="utf-8")
    update_index(data, tmp_path / "bf16", fp32, spec)  # the bf16 index updated by an fp32 embedder: no rebuild
    assert read_manifest(tmp_path / "bf16").embed_precision == "bf16+fp32"
