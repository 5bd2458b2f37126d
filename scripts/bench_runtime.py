"""Prompt and generation tokens/s of the answer runtime on this machine (docs/answer-model.md).

    .venv/bin/python scripts/bench_runtime.py [--model GGUF] [--threads 2] [--rounds 3]

Loads the GGUF with llama-cpp-python in this process (whatever build the interpreter's environment holds, so
the same script times two builds: run it with each venv's python, one after the other, on an idle machine),
then, each round, reads a fresh ~450-token prompt (a new first line, so nothing is reused from the cache) and
generates 64 tokens at temperature 0. Prints the build's features and the medians of llama.cpp's own timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSAGE = (
    "وصل وزير الخارجية الروسي سيرغي لافروف إلى بكين يوم الاثنين لعرض قوة العلاقات مع حليفها الدبلوماسي الوثيق "
    "الصين. وقالت المتحدثة باسم وزارة الخارجية الصينية ماو نينغ إن الصين سيطرت دائما على تصدير البنود ذات "
    "الاستخدام المزدوج وفقا للقانون. "
)


def main() -> None:
    """Time prompt reading and generation with llama.cpp's own counters; print the medians."""
    import llama_cpp

    from rag.config import get_settings
    from rag.provision.paths import gguf_path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", type=Path, default=gguf_path(get_settings().models_dir))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    llm = llama_cpp.Llama(str(args.model), n_ctx=2048, n_threads=args.threads, verbose=False, seed=0)
    prompt_rates, gen_rates = [], []
    for r in range(args.rounds):
        prompt = f"Round {r}: summarize in English.\n" + PASSAGE * 6
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        llm.create_completion(prompt, max_tokens=64, temperature=0.0)
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        prompt_rates.append(perf.n_p_eval / (perf.t_p_eval_ms / 1000))
        gen_rates.append(perf.n_eval / (perf.t_eval_ms / 1000))
        print(f"round {r}: prompt {perf.n_p_eval} tokens at {prompt_rates[-1]:.1f}/s, "
              f"generation {perf.n_eval} tokens at {gen_rates[-1]:.1f}/s")  # fmt: skip
    print(llama_cpp.llama_print_system_info().decode().strip())
    print(f"median: prompt {statistics.median(prompt_rates):.1f} tokens/s, "
          f"generation {statistics.median(gen_rates):.1f} tokens/s ({args.threads} threads)")  # fmt: skip


if __name__ == "__main__":
    main()
