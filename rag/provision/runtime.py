"""The answer runtime (llama-cpp-python): built for a portable CPU baseline, and what it needs of the CPU.

llama-cpp-python compiles llama.cpp on the machine that installs it, by default with `-march=native`: a build
made on a processor with AMX or AVX-512 uses them, and crashes where they are missing or not allowed (a
virtual machine that reports AMX but does not grant it faults at `ldtilecfg`). `python -m
rag.provision.runtime` (run by `make install`) builds the locked sdist with native flags off, for the x86-64
baseline below, caches the wheel under `$RAG_MODELS_DIR/wheels`, and installs it. At run time, before the
server starts, `check_cpu` compares what the built library was compiled for with what this CPU reports.

On a CPU that has more, the baseline leaves speed unused (AVX-512 with VNNI and BF16: prompts read 1.57x and
answers written 1.10x faster here). So `make install` also builds the VARIANTS this CPU can run, into their own
folder beside the cached wheel (AMX never: a virtual machine may report it without granting it), and the server
is started on the best variant whose every flag the CPU reports (`chosen_runtime`, RAG_LLM_RUNTIME=auto), else on
the baseline: a copied environment or another machine falls back by itself.
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
from typing import Any

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


@dataclass(frozen=True)
class Variant:
    """A build of the runtime above the baseline, used only where the CPU reports every flag in `needs`."""

    name: str
    cmake_args: tuple[str, ...]
    needs: tuple[str, ...]  # /proc/cpuinfo flags
    allowed: frozenset[str]  # the kinds of FOREIGN instructions its libraries may hold (never AMX)
    describe: str

    @property
    def build_id(self) -> str:
        return hashlib.sha256(" ".join(self.cmake_args).encode()).hexdigest()[:12]

    def forbidden(self, lib: Path) -> dict[str, dict[str, int]]:
        """The libraries in `lib` that hold instructions this variant must not (AMX), with their counts."""
        return {name: kinds for name, kinds in above_baseline(lib).items() if set(kinds) - self.allowed}


_ABOVE = {"-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF", "-DGGML_AVX512_BF16=OFF"}
# Intel Sapphire Rapids and later (AMX left out), AMD Zen 4 and later; Ice Lake lacks BF16: baseline there.
AVX512 = Variant(
    "avx512",
    tuple(a for a in PORTABLE_CMAKE_ARGS if a not in _ABOVE)
    + ("-DGGML_AVX512=ON", "-DGGML_AVX512_VBMI=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX512_BF16=ON"),
    ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni", "avx512_bf16"),
    frozenset({"AVX-512", "VNNI/BF16"}),
    "AVX-512 with VBMI, VNNI and BF16; no AMX",
)
VARIANTS = (AVX512,)  # best first
RUNTIMES = ("auto", "portable")  # RAG_LLM_RUNTIME
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


def lib_env(lib: Path | None) -> dict[str, str]:
    """The environment that makes llama-cpp-python load its libraries from `lib` (a variant's folder), or the
    installed baseline's for None."""
    env = dict(os.environ)
    if lib is not None:
        env["LLAMA_CPP_LIB_PATH"] = str(lib)
    return env


def build_info(python: str = sys.executable, timeout: float = 120.0, lib: Path | None = None) -> BuildInfo:
    """Ask the installed runtime (or the variant in `lib`) what it was built with, in a child process (a build the
    CPU cannot run may crash while loading: that is reported, not suffered)."""
    code = "import llama_cpp, sys; sys.stdout.write(llama_cpp.llama_print_system_info().decode())"
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=timeout, env=lib_env(lib)
        )
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


def check_cpu(python: str = sys.executable, lib: Path | None = None) -> BuildInfo:
    """Raise RuntimeProblem naming the instructions the installed runtime (or the variant in `lib`) needs and this
    CPU lacks."""
    info = build_info(python, lib=lib)
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


def installed_build() -> dict[str, Any]:
    """What `install` recorded of the llama-cpp-python in this environment ({} when it did not install it)."""
    try:
        record = json.loads(_record_path().read_text())
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}


def chosen_runtime(setting: str = "auto", flags: set[str] | None = None) -> tuple[Variant, Path] | None:
    """The variant the answer server runs on: the best one `make install` built whose every flag this CPU reports,
    under RAG_LLM_RUNTIME=auto; None (the baseline) for `portable`, or when none fits or was built."""
    if setting not in RUNTIMES:
        raise RuntimeProblem(f"Unknown RAG_LLM_RUNTIME={setting!r}: set auto or portable.")
    if setting == "portable":
        return None
    flags = cpu_flags() if flags is None else flags
    built = installed_build().get("variants") or {}
    for variant in VARIANTS:
        lib = built.get(variant.name) if isinstance(built, dict) else None
        if lib and set(variant.needs) <= flags and any(Path(lib).glob("libllama.so*")):
            return variant, Path(lib)
    return None


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


def install_variants(lock: Path, wheels: Path, force: bool = False, flags: set[str] | None = None) -> dict[str, str]:
    """Build (once per version and flags, cached in `wheels`) the variants this CPU can run, each into a `lib`
    folder of its own, checked for instructions it must not hold; record them. Variant name -> its folder."""
    version = _locked(lock)
    flags = cpu_flags() if flags is None else flags
    built: dict[str, str] = {}
    for variant in VARIANTS:
        lacking = [f for f in variant.needs if f not in flags]
        if lacking:
            print(f"llama-cpp-python {variant.name} variant: not built, this CPU lacks {', '.join(lacking)}")
            continue
        folder = wheels / f"llama-cpp-python-{version}-{variant.name}-{variant.build_id}"
        lib = folder / "lib"
        if force or not any(lib.glob("libllama.so*")):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            print(f"Compiling llama-cpp-python {version}, {variant.name} variant ({variant.describe}): about 5 min")
            env = {**os.environ, "CMAKE_ARGS": " ".join(variant.cmake_args), "FORCE_CMAKE": "1"}
            env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
            cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir", "--require-hashes",
                   "--no-binary", "llama-cpp-python", "-r", str(lock), "-w", str(folder)]  # fmt: skip
            if subprocess.run(cmd, env=env).returncode != 0:  # optional: the baseline serves without it
                shutil.rmtree(folder, ignore_errors=True)
                print(f"warning: the {variant.name} variant did not compile; the server keeps the portable build")
                continue
            import zipfile

            wheel = sorted(folder.glob("llama_cpp_python-*.whl"))[-1]
            scratch = folder / "lib.tmp"
            with zipfile.ZipFile(wheel) as z:
                for name in z.namelist():
                    if name.startswith("llama_cpp/lib/") and not name.endswith("/"):
                        (scratch / Path(name).name).parent.mkdir(parents=True, exist_ok=True)
                        (scratch / Path(name).name).write_bytes(z.read(name))
            wheel.unlink()  # the Python half is the installed baseline's, the same version
            wrong = variant.forbidden(scratch)
            if wrong:  # never used: the portable build serves
                shutil.rmtree(folder, ignore_errors=True)
                print(f"warning: the {variant.name} variant holds instructions it must not ({wrong}); not used")
                continue
            scratch.replace(lib)
        built[variant.name] = str(lib)
        print(f"llama-cpp-python {version}, {variant.name} variant: in {lib}")
    record = installed_build()
    if record:
        _record_path().write_text(json.dumps({**record, "variants": built}))
    return built


def main(argv: list[str] | None = None) -> None:
    """`python -m rag.provision.runtime [--force]`: build and install the portable answer runtime, and the
    variants this CPU can run."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--lock", type=Path, default=Path(__file__).resolve().parents[2] / "requirements-llm.lock")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached wheel exists")
    args = parser.parse_args(argv)
    from rag.config import get_settings

    wheels = get_settings().models_dir / "wheels"
    install(args.lock, wheels, force=args.force)
    install_variants(args.lock, wheels, force=args.force)


if __name__ == "__main__":
    main()
