"""Prompt and generation tokens/s of the answer runtime on this machine, each build side by side
(docs/answer-model.md).

    .venv/bin/python scripts/bench_runtime.py [--model GGUF] [--threads 2] [--rounds 3] [--lib DIR]

Without --lib: times the portable build and every variant `make install` built that this CPU runs
(rag/provision/runtime.py), each in a child process of its own, one after the other (run it on an idle machine),
and prints a table with the ratio to the portable build. With --lib DIR: only the build whose libraries are in DIR.
A build loads the GGUF with llama-cpp-python, then, each round, reads a fresh ~450-token prompt (a new first
line, so nothing is reused from the cache) and generates 64 tokens at temperature 0; the medians of llama.cpp's
own timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSAGE = (
    "وصل وزير الخارجية الروسي سيرغي لافروف إلى بكين يوم الاثنين لعرض قوة العلاقات مع حليفها الدبلوماسي الوثيق "
    "الصين. وقالت المتحدثة باسم وزارة الخارجية الصينية ماو نينغ إن الصين سيطرت دائما على تصدير البنود ذات "
    "الاستخدام المزدوج وفقا للقانون. "
)


def measure(model: Path, threads: int, rounds: int) -> dict[str, object]:
    """Time prompt reading and generation with llama.cpp's own counters (the build this process loads)."""
    import llama_cpp

    llm = llama_cpp.Llama(str(model), n_ctx=2048, n_threads=threads, verbose=False, seed=0)
    prompt_rates, gen_rates = [], []
    for r in range(rounds):
        prompt = f"Round {r}: summarize in English.\n" + PASSAGE * 6
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        llm.create_completion(prompt, max_tokens=64, temperature=0.0)
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        prompt_rates.append(perf.n_p_eval / (perf.t_p_eval_ms / 1000))
        gen_rates.append(perf.n_eval / (perf.t_eval_ms / 1000))
        print(f"round {r}: prompt {perf.n_p_eval} tokens at {prompt_rates[-1]:.1f}/s, "
              f"generation {perf.n_eval} tokens at {gen_rates[-1]:.1f}/s", file=sys.stderr)  # fmt: skip
    return {"features": llama_cpp.llama_print_system_info().decode().strip(),
            "prompt": statistics.median(prompt_rates), "generation": statistics.median(gen_rates)}  # fmt: skip


def main() -> None:
    """Time each build of the answer runtime this CPU runs; print the medians side by side."""
    from rag.config import get_settings
    from rag.provision.paths import gguf_path
    from rag.provision.runtime import VARIANTS, cpu_flags, cpu_model, installed_build, lib_env

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", type=Path, default=gguf_path(get_settings().models_dir))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lib", type=Path, help="time only the build whose libraries are in this folder")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # LLAMA_CPP_LIB_PATH was set by the parent (or not: the portable build)
        print(json.dumps(measure(args.model, args.threads, args.rounds)))
        return
    builds: list[tuple[str, Path | None]] = [("portable", None)]
    if args.lib:
        builds = [(str(args.lib), args.lib)]
    else:
        built = installed_build().get("variants") or {}
        builds += [(v.name, Path(built[v.name])) for v in VARIANTS if v.name in built and set(v.needs) <= cpu_flags()]
    rows = []
    for name, lib in builds:
        cmd = [sys.executable, __file__, "--child", "--model", str(args.model), "--threads", str(args.threads),
               "--rounds", str(args.rounds)]  # fmt: skip
        done = subprocess.run(cmd, env=lib_env(lib), capture_output=True, text=True, check=True)
        rows.append((name, json.loads(done.stdout.strip().splitlines()[-1])))
        print(f"{name}: {rows[-1][1]['features']}")
    base = rows[0][1]
    print(f"\n{cpu_model()}, {args.threads} threads, median of {args.rounds} rounds\n")
    print("| build | prompt tokens/s | generation tokens/s |\n|---|---|---|")
    for name, r in rows:
        ratio = "" if r is base else f" ({r['prompt'] / base['prompt']:.2f}×)"  # type: ignore[operator]
        gen = "" if r is base else f" ({r['generation'] / base['generation']:.2f}×)"  # type: ignore[operator]
        print(f"| {name} | {r['prompt']:.1f}{ratio} | {r['generation']:.1f}{gen} |")


if __name__ == "__main__":
    main()
