"""Encoder runtimes (`make bench-encoder`): is there a faster way to run the embedding model with the same vectors?

Times the product's encoder (sentence-transformers on torch, `embed_documents`) against ONNX Runtime running the
same model exported from the same local folder: as exported (fp32), with ONNX Runtime's transformer fusions
(fp32), and with dynamic int8 weights. Each runs on the same texts, a random sample of the passages a build embeds
(chunks and sentences of the bench-scale corpus), length-sorted, batch size as the product's, the machine's
threads. Prints seconds, speed against torch measured in the same run, and the cosine of each vector to torch's
(min and median): the issue asks for cosine >= 0.999 before a runtime may replace torch.

    .venv/bin/python scripts/bench_encoder.py [--texts 1200] [--work DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def sample_texts(count: int, embedder: object) -> list[str]:
    """`count` passages as a build embeds them (chunks and their sentences, in the product's embedding form)."""
    from bench_scale import real_articles

    from rag.config import get_settings
    from rag.index.build import passage_texts, split_sentences
    from rag.ingest.chunking import chunk_articles, make_splitter
    from rag.text.arabic import for_embedding

    spec = get_settings().index_spec
    count_tokens = embedder.count_tokens  # type: ignore[attr-defined]
    chunks = chunk_articles(
        real_articles(400, count_tokens), make_splitter(count_tokens, spec.chunk_tokens, spec.chunk_overlap)
    )
    texts, _ = passage_texts(chunks, split_sentences(chunks), spec.chunk_vectors)
    picked = random.Random(0).sample(range(len(texts)), min(count, len(texts)))
    return [for_embedding(texts[i]) for i in picked]


def export(model_path: str, work: Path) -> dict[str, Path]:
    """The model as ONNX graphs: exported, fused, int8. The graph ends in e5's mean pooling and normalization."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    paths = {"fp32": work / "e5.onnx", "fp32 fused": work / "e5-fused.onnx", "int8": work / "e5-int8.onnx"}
    example = tokenizer(["passage: مرحبا", "passage: hello world"], padding=True, return_tensors="pt")
    axes = {"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "vector": {0: "b"}}
    torch.onnx.export(
        Pooled().eval(),
        (example["input_ids"], example["attention_mask"]),
        str(paths["fp32"]),
        input_names=["input_ids", "attention_mask"],
        output_names=["vector"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    config = model.config
    fused = optimizer.optimize_model(
        str(paths["fp32"]), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
    )
    fused.save_model_to_file(str(paths["fp32 fused"]))
    quantize_dynamic(
        str(paths["fp32"]), str(paths["int8"]), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
    )
    return paths


def run_onnx(path: Path, texts: list[str], embedder: object) -> np.ndarray:
    """`texts` through ONNX Runtime, length-sorted batches of the product's size, the same prompt and truncation."""
    import onnxruntime as ort

    model = embedder.model  # type: ignore[attr-defined]
    batch = embedder.batch_size  # type: ignore[attr-defined]
    prompt = model.prompts.get("passage", "")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), embedder.dim), np.float32)  # type: ignore[attr-defined]
    for start in range(0, len(texts), batch):
        rows = order[start : start + batch]
        enc = model.tokenizer(
            [prompt + texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=model.max_seq_length,
            return_tensors="np",
        )
        feed = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        out[rows] = session.run(None, feed)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1200)
    parser.add_argument("--work", type=Path, default=None, help="where the ONNX graphs go (default: a temp folder)")
    args = parser.parse_args()

    import torch

    from rag.config import get_settings
    from rag.embed.embedder import embedder_for

    embedder = embedder_for(get_settings())
    texts = sample_texts(args.texts, embedder)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"exporting {embedder.path} to ONNX in {work}", file=sys.stderr, flush=True)
        paths = export(embedder.path, work)
        embedder.embed_documents(texts[:32])  # warm-up
        t0 = time.perf_counter()
        reference = embedder.embed_documents(texts)
        torch_s = time.perf_counter() - t0
        rows = [("torch (sentence-transformers, the product)", torch_s, 1.0, 1.0)]
        for name, path in paths.items():
            run_onnx(path, texts[:32], embedder)  # warm-up
            t0 = time.perf_counter()
            vectors = run_onnx(path, texts, embedder)
            seconds = time.perf_counter() - t0
            cosine = (vectors * reference).sum(1)
            rows.append((f"ONNX Runtime {name}", seconds, float(cosine.min()), statistics.median(cosine.tolist())))
    tokens = sum(embedder.count_tokens(t) for t in texts)
    print(
        f"\n{len(texts)} passages, {tokens:,} tokens, batch {embedder.batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print("| runtime | seconds | speed vs torch | cosine to torch min / median |")
    print("|---|---|---|---|")
    for name, seconds, low, mid in rows:
        print(f"| {name} | {seconds:.1f} | {torch_s / seconds:.2f}× | {low:.4f} / {mid:.4f} |")


if __name__ == "__main__":
    main()
