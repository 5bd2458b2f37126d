"""The answer runtime is built for the portable baseline: no AMX, no AVX-512, no VNNI in any of its libraries
(disassembled with objdump), and a CPU that lacks what a build needs gets an error naming it, not a crash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.errors import LLMError
from rag.llm import local_server
from rag.provision import runtime
from rag.provision.runtime import BASELINE, BuildInfo, RuntimeProblem, foreign_instructions, missing_features

NON_CPU = {"LLAMAFILE", "OPENMP", "REPACK"}  # build options that need no instruction

# One function of each kind the scan must catch: an AMX tile configuration, an AVX-512 add, an AVX-VNNI dot product.
FOREIGN_C = r"""
#include <immintrin.h>
void amx(const void *cfg) { _tile_loadconfig(cfg); _tile_release(); }
__m512 avx512(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
__m256i vnni(__m256i s, __m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(s, a, b); }
__m256 avx2(__m256 a, __m256 b) { return _mm256_fmadd_ps(a, b, a); }
"""


def test_every_runtime_library_holds_no_instruction_above_avx2() -> None:
    libs = runtime.libraries()
    names = {lib.name.split(".so")[0] for lib in libs}
    assert {"libggml-cpu", "libggml-base", "libllama"} <= names, f"llama-cpp-python's libraries not found: {names}"
    for lib in libs:
        assert foreign_instructions(lib) == {}, f"{lib} holds instructions above the baseline: run `make install`"


def test_the_build_reports_only_baseline_features() -> None:
    info = runtime.build_info()
    assert "AVX2" in info.features
    assert set(info.features) - NON_CPU <= set(BASELINE), info.text
    assert runtime.installed_build().get("build") == runtime.BUILD_ID, "not installed by `make install`'s step"


def test_the_scan_finds_amx_avx512_and_vnni_in_a_native_object(tmp_path: Path) -> None:
    """The check can fail: an object compiled with those instructions is caught, kind by kind."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "gcc is missing (apt-get install -y gcc)"
    source, lib = tmp_path / "foreign.c", tmp_path / "libforeign.so"
    source.write_text(FOREIGN_C)
    flags = ["-O2", "-shared", "-fPIC", "-mamx-tile", "-mavx512f", "-mavxvnni", "-mavx2", "-mfma"]
    subprocess.run([gcc, *flags, str(source), "-o", str(lib)], check=True)
    found = foreign_instructions(lib)
    assert set(found) == {"AMX", "AVX-512", "VNNI/BF16"}, found
    plain = tmp_path / "libplain.so"
    source.write_text(FOREIGN_C.split("void amx")[0] + FOREIGN_C.split("\n")[-2])  # the AVX2 function alone
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-mavx2", "-mfma", str(source), "-o", str(plain)], check=True)
    assert foreign_instructions(plain) == {}


def test_missing_features_name_what_the_cpu_lacks() -> None:
    info = BuildInfo(("SSE3", "AVX", "AVX2", "FMA", "AMX_INT8", "OPENMP"), "")
    haswell = {"pni", "avx", "avx2", "fma"}
    assert missing_features(info, haswell | {"amx_int8"}, amx_granted=True) == []
    assert missing_features(info, {"pni", "avx", "fma"}, amx_granted=True) == ["AVX2", "AMX_INT8"]
    denied = missing_features(info, haswell | {"amx_int8"}, amx_granted=False)
    assert denied == ["AMX_INT8 (the CPU reports it, the operating system does not grant it)"]


def test_a_cpu_without_avx2_gets_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda cpuinfo=None: {"pni", "ssse3", "avx", "f16c", "fma", "bmi2"})
    with pytest.raises(RuntimeProblem, match=r"lacks: AVX2\. Rebuild"):
        runtime.check_cpu()


@pytest.mark.integration
def test_the_server_is_not_started_on_a_cpu_that_lacks_an_instruction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda cpuinfo=None: {"pni", "ssse3", "avx", "f16c", "fma"})
    settings = get_settings(llm_port=8797, cache_dir=tmp_path)
    with pytest.raises(LLMError, match=r"lacks: AVX2, BMI2"):
        local_server.ensure_local_server(settings)
    assert not (tmp_path / "llm-server-8797.json").exists()  # nothing was started
