"""The encoder's precision: bf16 where this CPU computes it natively and it measurably pays, fp32 elsewhere.

`RAG_EMBED_PRECISION=auto` (the default) decides once per process, at the first passages embedded (a build or an
update; questions are embedded in fp32 under `auto`, one short text gains nothing): bf16 only when the CPU reports
AVX512_BF16, or AMX-BF16 that the operating system grants, and a probe on PROBE_TEXTS finds the bf16 vectors within
MIN_COSINE of the fp32 ones and bf16 at least MIN_SPEEDUP times as fast. bf16 means `torch.autocast("cpu",
torch.bfloat16)` around the fp32 model: the matrix products run in bf16, the weights stay fp32 (casting the weights
themselves moved vectors to cosine 0.998 on XQuAD paragraphs, too far). `fp32` and `bf16` force the choice. Vectors of
either precision are within MIN_COSINE of the other's, so an index built in one is searched with the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PRECISIONS = ("auto", "fp32", "bf16")
MIN_COSINE = 0.9999  # the least cosine between a probe text's bf16 and fp32 vectors for `auto` to pick bf16
MIN_SPEEDUP = 1.15  # how much faster bf16 must embed the probe texts for `auto` to pick it
PROBE_ROUNDS = 2  # each precision is timed this many times, alternating; the fastest round counts

# Passages of the lengths a build embeds (sentences and a chunk-sized paragraph), in Arabic and English.
PROBE_TEXTS = (
    "قالت المتحدثة باسم وزارة الخارجية الصينية ماو نينغ إن بلادها تعارض القيود على صادرات المواد ذات الاستخدام "
    "المزدوج.",
    "وأضافت أن الحكومة ستتخذ الإجراءات اللازمة لحماية مصالح الشركات الصينية.",
    "ارتفع عدد سكان العاصمة إلى أكثر من واحد وعشرين مليون نسمة وفق آخر تعداد رسمي نشرته السلطات هذا الأسبوع، "
    "وتوقع الخبراء أن يستمر النمو في السنوات المقبلة مع توسع المدينة نحو الضواحي وارتفاع أسعار المساكن في وسطها. "
    "وقال مسؤولون في البلدية إن خطة النقل الجديدة تشمل خطوط مترو إضافية وحافلات كهربائية وممرات للدراجات.",
    "The ministry said the new rules would take effect next month.",
    "Officials met on Tuesday to discuss the budget, the harbour project and the delayed rail line, and agreed to "
    "publish a report before the end of the year after residents complained about the noise and the closed roads.",
    "انخفضت أسعار النفط.",
    "أعلن الاتحاد الأوروبي عن حزمة مساعدات جديدة للمزارعين المتضررين من الجفاف في جنوب القارة.",
    "The court adjourned the hearing until March.",
)


@dataclass(frozen=True, slots=True)
class PrecisionChoice:
    """The precision passages are embedded in, and why (the probe's figures when one ran)."""

    precision: str  # fp32 | bf16
    reason: str
    cosine: float | None = None  # least cosine between the probe texts' bf16 and fp32 vectors
    speedup: float | None = None  # fp32 time / bf16 time on the probe texts

    def describe(self) -> str:
        """One line for `rag doctor` and logs."""
        return f"{self.precision} ({self.reason})"


def native_bf16(flags: set[str], amx_granted: bool) -> str | None:
    """What computes bf16 natively on this CPU (None: nothing): AMX-BF16 when the OS grants AMX, else AVX512_BF16."""
    if "amx_bf16" in flags and amx_granted:
        return "AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX512_BF16"
    return None


def cpu_bf16() -> str | None:
    """What computes bf16 natively here (this machine's /proc/cpuinfo and the OS's AMX grant)."""
    from rag.provision.runtime import cpu_flags, os_grants_amx

    flags = cpu_flags()
    return native_bf16(flags, "amx_bf16" in flags and os_grants_amx())


Encode = Callable[[Sequence[str], bool], np.ndarray]  # texts, in bf16 -> normalized vectors


def choose(setting: str, device: str, native: str | None, encode: Encode) -> PrecisionChoice:
    """The precision for passages: `setting` fp32 or bf16 is taken as given; `auto` picks bf16 only on a CPU with
    `native` bf16 where the probe (`encode` the PROBE_TEXTS in fp32 and in bf16, PROBE_ROUNDS times each) finds
    cosine >= MIN_COSINE and a speed-up >= MIN_SPEEDUP. Off the CPU (a GPU) `auto` keeps fp32."""
    if setting in ("fp32", "bf16"):
        return PrecisionChoice(setting, f"RAG_EMBED_PRECISION={setting}")
    if setting != "auto":
        raise ValueError(f"RAG_EMBED_PRECISION={setting!r}: use auto, fp32 or bf16.")
    if device != "cpu":
        return PrecisionChoice("fp32", f"auto: embedding on {device}, not the CPU")
    if native is None:
        return PrecisionChoice("fp32", "auto: this CPU has no native bf16 (neither AVX512_BF16 nor granted AMX)")
    texts = list(PROBE_TEXTS)
    encode(texts[:2], False)  # the first calls pay for warming up
    encode(texts[:2], True)
    times: dict[bool, float] = {False: float("inf"), True: float("inf")}
    vectors: dict[bool, np.ndarray] = {}
    for _ in range(PROBE_ROUNDS):
        for bf16 in (False, True):
            t0 = time.perf_counter()
            vectors[bf16] = encode(texts, bf16)
            times[bf16] = min(times[bf16], time.perf_counter() - t0)
    cosine = float(np.min(np.sum(vectors[False] * vectors[True], axis=1)))
    speedup = times[False] / max(times[True], 1e-9)
    figures = f"{native}; probe: cosine {cosine:.6f}, bf16 {speedup:.2f}× the fp32 speed"
    if cosine < MIN_COSINE:
        return PrecisionChoice("fp32", f"auto: {figures}, below cosine {MIN_COSINE}", cosine, speedup)
    if speedup < MIN_SPEEDUP:
        return PrecisionChoice("fp32", f"auto: {figures}, under {MIN_SPEEDUP}×", cosine, speedup)
    return PrecisionChoice("bf16", f"auto: {figures}", cosine, speedup)


def combined(*used: str) -> str:
    """The precisions an index's vectors were embedded in, as the manifest records them ("fp32", "bf16" or
    "bf16+fp32" after an update in the other precision); empty parts are left out."""
    parts = sorted({p for u in used for p in u.split("+") if p})
    return "+".join(parts) or "fp32"
