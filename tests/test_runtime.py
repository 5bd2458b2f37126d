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


# ------------------------------------------------------------------ variants above the baseline


def test_the_variants_are_never_native_and_never_amx() -> None:
    for variant in runtime.VARIANTS:
        args = set(variant.cmake_args)
        assert "-DGGML_NATIVE=OFF" in args and "-DGGML_NATIVE=ON" not in args
        assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= args
        assert "AMX" not in variant.allowed and not any(f.startswith("amx") for f in variant.needs)
        assert variant.build_id != runtime.BUILD_ID


def test_the_server_runs_on_the_best_variant_the_cpu_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libllama.so").write_bytes(b"")
    monkeypatch.setattr(runtime, "installed_build", lambda: {"variants": {"avx512": str(lib)}})
    sapphire = set(runtime.AVX512.needs) | {"avx2", "fma", "amx_tile", "amx_int8"}
    assert runtime.chosen_runtime("auto", sapphire) == (runtime.AVX512, lib)
    assert runtime.chosen_runtime("portable", sapphire) is None  # RAG_LLM_RUNTIME=portable
    assert runtime.chosen_runtime("auto", sapphire - {"avx512_bf16"}) is None  # Ice Lake: no BF16, the baseline
    assert runtime.chosen_runtime("auto", {"avx2", "fma"}) is None  # an AVX2-only machine, the same environment
    (lib / "libllama.so").unlink()
    assert runtime.chosen_runtime("auto", sapphire) is None  # its folder emptied: the baseline
    monkeypatch.setattr(runtime, "installed_build", lambda: {})
    assert runtime.chosen_runtime("auto", sapphire) is None  # never built
    with pytest.raises(RuntimeProblem, match="RAG_LLM_RUNTIME"):
        runtime.chosen_runtime("fastest", sapphire)


def test_make_install_built_the_variant_this_cpu_runs_and_it_holds_no_amx() -> None:
    """On a CPU with AVX-512, VNNI and BF16 the variant was built and is chosen; elsewhere none is (both asserted)."""
    chosen = runtime.chosen_runtime("auto")
    if not set(runtime.AVX512.needs) <= runtime.cpu_flags():
        assert chosen is None
        return
    assert chosen is not None and chosen[0] is runtime.AVX512, "the AVX-512 variant was not built: run `make install`"
    found = runtime.above_baseline(chosen[1])
    assert found and all(set(kinds) <= runtime.AVX512.allowed for kinds in found.values()), found
    info = runtime.check_cpu(lib=chosen[1])  # the CPU has all it needs
    assert {"AVX512", "AVX512_VNNI", "AVX512_BF16"} <= set(info.features) and "AMX_INT8" not in info.features


def _descendants(pid: int) -> list[int]:
    try:
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


@pytest.mark.integration
def test_the_answer_server_loads_the_chosen_build(llm_server: str, real_settings) -> None:  # type: ignore[no-untyped-def]
    import json

    state = json.loads(local_server._state_file(real_settings).read_text())
    chosen = runtime.chosen_runtime(real_settings.llm_runtime)
    assert state["runtime"] == (chosen[0].name if chosen else "portable")
    want = chosen[1] if chosen else runtime.lib_dir()
    assert want is not None
    loaded = {
        line.split()[-1]
        for pid in [state["pid"], *_descendants(state["pid"])]
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if "libggml-cpu.so" in line
    }
    assert loaded and all(Path(p).resolve().parent == want.resolve() for p in loaded), loaded
