"""The answer runtime (llama-cpp-python): built for a portable CPU baseline, and what it needs of the CPU.

llama-cpp-python compiles llama.cpp on the machine that installs it, by default with `-march=native`: a build
made on a processor with AMX or AVX-512 uses them, and crashes where they are missing or not allowed (a
virtual machine that reports AMX but does not grant it faults at `ldtilecfg`). `python -m
rag.provision.runtime` (run by `make install`) builds the locked sdist with native flags off, for the x86-64
baseline below, caches the wheel under `$RAG_MODELS_DIR/wheels`, and installs it. At run time, before the
server starts, `check_cpu` compares what the built library was compiled for with what this CPU reports.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The baseline: x86-64 with AVX2 (Intel Haswell, 2013, and AMD Zen on). No AVX-512, no AVX-VNNI, no AMX.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_SSE42=ON",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_BMI2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_AVX_VNNI=OFF",
    "-DGGML_AVX512=OFF",
    "-DGGML_AVX512_VBMI=OFF",
    "-DGGML_AVX512_VNNI=OFF",
    "-DGGML_AVX512_BF16=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
)
BUILD_ID = hashlib.sha256(" ".join(PORTABLE_CMAKE_ARGS).encode()).hexdigest()[:12]
RECORD = "rag-llm-runtime.json"  # in the venv (sys.prefix): which build of llama-cpp-python is installed

# llama_print_system_info()'s names for what a build was compiled with -> the /proc/cpuinfo flag it needs.
CPU_FLAG = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}
BASELINE = ("SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2")  # what the portable build needs

# Instructions above the baseline, as objdump writes them: AMX tiles, AVX-512 (zmm registers, opmask registers,
# the upper 16 xmm/ymm registers only EVEX can name) and the VNNI / BF16 dot products.
FOREIGN = {
    "AMX": re.compile(r"\b(ldtilecfg|sttilecfg|tileloadd|tileloaddt1|tilestored|tilerelease|tilezero|tdp\w+)\b"),
    "AVX-512": re.compile(r"%zmm\d|%k[0-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b"),
    "VNNI/BF16": re.compile(r"\b(\{vex\} )?(vpdpbusds?|vpdpwssds?|vdpbf16ps|vcvtne2ps2bf16|vcvtneps2bf16)\b"),
}


class RuntimeProblem(Exception):
    """The answer runtime cannot run here; the message names what is missing and how to fix it."""


@dataclass(frozen=True)
class BuildInfo:
    """What llama.cpp reports about its own build (`llama_print_system_info`)."""

    features: tuple[str, ...]  # compiled-in CPU features, system-info names (AVX2, AMX_INT8, ...)
    text: str  # the whole line, for `rag doctor`


def lib_dir() -> Path | None:
    """Where the installed llama-cpp-python keeps its compiled libraries (found without importing it)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return folder if folder.is_dir() else None


def libraries(folder: Path | None = None) -> list[Path]:
    """The compiled libraries of the answer runtime (one path per library, symlinked versions skipped)."""
    folder = folder or lib_dir()
    if folder is None:
        return []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.so*")):
        seen.setdefault(path.name.split(".so")[0], path)
    return list(seen.values())


def foreign_instructions(library: Path) -> dict[str, int]:
    """How many instructions above the baseline `library` holds, by kind ({} when none); needs objdump."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise RuntimeProblem("objdump is missing: install binutils (apt-get install -y binutils).")
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True)
    if dis.returncode != 0:
        raise RuntimeProblem(f"objdump could not read {library}: {dis.stderr.strip()[:200]}")
    counts: dict[str, int] = {}
    for line in dis.stdout.splitlines():
        if "\t" not in line:
            continue
        for kind, pattern in FOREIGN.items():
            if pattern.search(line):
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def above_baseline(folder: Path | None = None) -> dict[str, dict[str, int]]:
    """The runtime's libraries that hold instructions above the baseline, with their counts by kind."""
    return {lib.name: kinds for lib in libraries(folder) if (kinds := foreign_instructions(lib))}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as the kernel reports them (empty when unknown)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    return set(match.group(1).split()) if match else set()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, or 'unknown CPU'."""
    try:
        match = re.search(r"^model name\s*:\s*(.*)$", cpuinfo.read_text(), re.M)
    except OSError:
        return "unknown CPU"
    return match.group(1).strip() if match else "unknown CPU"


def os_grants_amx() -> bool:
    """True when the kernel lets this process use AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM)."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(158, 0x1023, 18)) == 0  # SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA
    except (OSError, AttributeError):
        return False


def build_info(python: str = sys.executable, timeout: float = 120.0) -> BuildInfo:
    """Ask the installed runtime what it was built with, in a child process (a build the CPU cannot run may
    crash while loading: that is reported, not suffered)."""
    code = "import llama_cpp, sys; sys.stdout.write(llama_cpp.llama_print_system_info().decode())"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeProblem(f"Loading the answer runtime took over {timeout:.0f} s.") from exc
    if done.returncode < 0:
        raise RuntimeProblem(
            f"The answer runtime (llama-cpp-python) crashed while loading ({describe_exit(done.returncode)}): it was "
            f"built for another CPU. Rebuild it for this one: `{python} -m rag.provision.runtime --force`."
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeProblem(f"The answer runtime (llama-cpp-python) does not load: {last}. Run `make install`.")
    text = done.stdout.strip()
    return BuildInfo(tuple(re.findall(r"(\w+) = 1", text)), text)


def missing_features(info: BuildInfo, flags: set[str], amx_granted: bool | None = None) -> list[str]:
    """The compiled-in features this CPU (or its operating system) does not offer."""
    missing = [f for f in info.features if f in CPU_FLAG and CPU_FLAG[f] not in flags]
    if "AMX_INT8" in info.features and "AMX_INT8" not in missing:
        if not (os_grants_amx() if amx_granted is None else amx_granted):
            missing.append("AMX_INT8 (the CPU reports it, the operating system does not grant it)")
    return missing


def check_cpu(python: str = sys.executable) -> BuildInfo:
    """Raise RuntimeProblem naming the instructions the installed runtime needs and this CPU lacks."""
    info = build_info(python)
    flags = cpu_flags()
    if not flags:
        return info  # no /proc/cpuinfo to compare with: nothing to say
    missing = missing_features(info, flags)
    if missing:
        raise RuntimeProblem(
            f"The answer runtime was built for instructions this CPU ({cpu_model()}) lacks: {', '.join(missing)}. "
            f"Rebuild it for the portable baseline (AVX2, no AVX-512 or AMX): `{python} -m rag.provision.runtime "
            "--force`; a CPU without AVX2 cannot run the embedded model (see docs/answer-model.md: set "
            "OPENAI_BASE_URL to another answer server)."
        )
    return info


def describe_exit(returncode: int) -> str:
    """'signal 11, SIGSEGV' for a process killed by a signal, else 'exit code N'."""
    if returncode < 0:
        try:
            return f"signal {-returncode}, {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


# ------------------------------------------------------------------ building (make install)


def _record_path() -> Path:
    return Path(sys.prefix) / RECORD


def installed_build() -> dict[str, str]:
    """What `install` recorded of the llama-cpp-python in this environment ({} when it did not install it)."""
    try:
        record = json.loads(_record_path().read_text())
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}


def _locked(lock: Path) -> str:
    """The llama-cpp-python version the lock pins (pip checks its hash when it builds the sdist)."""
    from rag.provision.lockfile import read_pins

    pin = read_pins(lock).get("llama-cpp-python")
    if pin is None:
        raise SystemExit(f"error: {lock} pins no llama-cpp-python: run `make lock`.")
    return pin.version


def install(lock: Path, wheels: Path, force: bool = False) -> Path:
    """Build (once per version and flags, cached in `wheels`) and install the portable llama-cpp-python."""
    version = _locked(lock)
    want = {"version": version, "build": BUILD_ID}
    try:
        have = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        have = ""
    folder = wheels / f"llama-cpp-python-{version}-{BUILD_ID}"
    if not force and have == version and {k: installed_build().get(k) for k in want} == want:
        print(f"llama-cpp-python {version}, portable build {BUILD_ID}: installed")
        return folder
    built = sorted(folder.glob("llama_cpp_python-*.whl"))
    if force or not built:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"Compiling llama-cpp-python {version} for the x86-64 baseline (AVX2, no AVX-512/AMX): about 5 min")
        env = {**os.environ, "CMAKE_ARGS": " ".join(PORTABLE_CMAKE_ARGS), "FORCE_CMAKE": "1"}
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir", "--require-hashes",
               "--no-binary", "llama-cpp-python", "-r", str(lock), "-w", str(folder)]  # fmt: skip
        subprocess.run(cmd, check=True, env=env)
        built = sorted(folder.glob("llama_cpp_python-*.whl"))
    wheel = built[-1]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)], check=True
    )
    foreign = above_baseline()
    if foreign:
        raise SystemExit(f"error: the built runtime holds instructions above the baseline: {foreign}; see {wheel}")
    _record_path().write_text(json.dumps({**want, "wheel": str(wheel), "cmake_args": list(PORTABLE_CMAKE_ARGS)}))
    print(f"llama-cpp-python {version}, portable build {BUILD_ID}: installed from {wheel}")
    return folder


def main(argv: list[str] | None = None) -> None:
    """`python -m rag.provision.runtime [--force]`: build and install the portable answer runtime."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--lock", type=Path, default=Path(__file__).resolve().parents[2] / "requirements-llm.lock")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached wheel exists")
    args = parser.parse_args(argv)
    from rag.config import get_settings

    install(args.lock, get_settings().models_dir / "wheels", force=args.force)


if __name__ == "__main__":
    main()
