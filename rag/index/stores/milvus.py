"""The Milvus store (`RAG_VECTOR_STORE=milvus`): chunk and sentence vectors in two Milvus collections, for archives
that outgrow one machine. `RAG_MILVUS_URI` names a Milvus server or cluster (`http://host:19530`) or a Milvus Lite
file (embedded, one process at a time; unset = `<index>/milvus.db`).

What lives where: the version folder keeps what every version keeps (manifest, records, BM25 postings, sentence
offsets) plus `chunk_keys.i64`, the Milvus key of each chunk position. Milvus holds the vectors:

- `<prefix>_<build>_chunks`: key (INT64, primary), article (VARCHAR, for filters), vector (HNSW, inner product);
- `<prefix>_<build>_sentences`: key = chunk key × 1024 + the sentence's place in its chunk, chunk (the chunk's key),
  vector (HNSW).

Keys are stable: `rag index build` makes a new pair of collections, `rag index update` writes into the live pair,
inserting only new and changed articles' chunks under fresh keys (the manifest's `next_key` on). Rows no version
reads any more are deleted when their last version folder is removed (the previous version is kept one switch
longer, as for FAISS), and a collection pair is dropped with the last version that reads it. So the switch stays
the one rename of `current`: a reader of version V searches Milvus and keeps only the keys its own
`chunk_keys.i64` knows, never a mix of two versions. An alias `<prefix>_current_chunks` (and `_sentences`)
follows the live collections for other tools.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexChangedError, RagError
from rag.files import mapped_rows
from rag.index.backend import OFFSETS, Fetched, Kept, StoredVersion, Where, sentence_counts, unit_floor, write_offsets
from rag.types import StoreOptions

CHUNK_KEYS = "chunk_keys.i64"  # raw int64, one per chunk position: its key in the Milvus collections
SLOTS = 1024  # sentences per chunk at most (a 200-token chunk has a few dozen at the very most)
HNSW = {"M": 16, "efConstruction": 128}
EF_MIN = 64  # HNSW candidates visited per search at least; else twice the candidates asked for (measured on 10k
# real chunks, 100 asked for: ef 64 recalls 0.98 of the exact top 10, ef 200 all, at the same latency)
INSERT_ROWS = 2000  # rows sent per insert call
SEARCH_LIMIT = 16_384  # most hits one Milvus search returns
QUERY_KEYS = 4000  # keys per get/delete call (Milvus caps a request's size)
LITE_DB = "milvus.db"


@dataclass(frozen=True, slots=True)
class MilvusOptions:
    """The Milvus settings: the server's URI ("" = the Milvus Lite file in the index folder), the collections'
    prefix and the credentials."""

    uri: str = ""
    prefix: str = "rag"
    token: str = field(default="", repr=False)

    @classmethod
    def of(cls, options: StoreOptions) -> MilvusOptions:
        """From the settings (RAG_MILVUS_URI, RAG_MILVUS_PREFIX, RAG_MILVUS_TOKEN); a scratch index keeps its
        Milvus Lite file in its own folder whatever the server configured."""
        token = options.get("milvus_token", "")
        token = token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)
        uri = "" if options.scratch else str(options.get("milvus_uri", ""))
        return cls(uri, str(options.get("milvus_prefix", "rag")), token)


def lite_path(uri: str, index_dir: Path) -> str:
    """The URI to connect to: the given one, or the Milvus Lite file inside the index folder."""
    return uri or str(index_dir / LITE_DB)


def client_for(options: MilvusOptions, index_dir: Path, recorded: str = "") -> Any:
    """A client for the index's Milvus: the settings' URI (and token), else the one the manifest recorded, else the
    Milvus Lite file in the index folder."""
    return connect(lite_path(options.uri or recorded, index_dir), options.token)


def connect(uri: str, token: str = "") -> Any:
    """A client for a Milvus server or a Milvus Lite file, with errors that say what to do."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover (installed by make install)
        raise RagError("RAG_VECTOR_STORE=milvus needs pymilvus and milvus-lite: run `make install`.") from exc
    lite = not re.match(r"^[a-z]+://", uri)
    if lite:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri, token=token) if token and not lite else MilvusClient(uri)
    except Exception as exc:  # noqa: BLE001 (pymilvus raises several kinds; all mean the same to a user)
        if lite:
            raise RagError(
                f"Cannot open the Milvus Lite file {uri} ({_first_line(exc)}). Milvus Lite serves one process at a "
                "time: stop the other rag command or chat page using it, or run a Milvus server and set "
                "RAG_MILVUS_URI=http://host:19530."
            ) from exc
        raise RagError(
            f"Cannot reach the Milvus server at {uri} ({_first_line(exc)}): check that it runs, RAG_MILVUS_URI and "
            "RAG_MILVUS_TOKEN."
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def collection_names(prefix: str, version: str) -> tuple[str, str]:
    """The chunk and sentence collections of a build (Milvus names: letters, digits, underscores)."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", f"{prefix}_{version}")
    base = base if re.match(r"[A-Za-z_]", base) else f"_{base}"
    return f"{base}_chunks", f"{base}_sentences"


def _schema(client: Any, dim: int, sentences: bool) -> tuple[Any, Any]:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.INT64, is_primary=True)
    if sentences:
        schema.add_field("chunk", DataType.INT64)
    else:
        schema.add_field("article", DataType.VARCHAR, max_length=2048)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params=HNSW)
    return schema, index


def _keys_expr(field: str, keys: np.ndarray) -> str:
    return f"{field} in [{','.join(str(int(k)) for k in keys)}]"


def _batches(keys: np.ndarray, size: int = QUERY_KEYS) -> Iterator[np.ndarray]:
    for a in range(0, len(keys), size):
        yield keys[a : a + size]


class MilvusWriter:
    """Fills a version's Milvus store (`VectorStoreWriter`): a new pair of collections for a build, the live pair
    for an update (`collections` and `next_key` from the live manifest)."""

    def __init__(
        self,
        folder: Path,
        dim: int,
        client: Any,
        uri: str,
        prefix: str,
        collections: tuple[str, str] | None = None,
        next_key: int = 0,
    ) -> None:
        self.folder = folder
        self.dim = dim
        self.client = client
        self.uri = uri
        self.prefix = prefix
        self.created = collections is None
        self.chunks_name, self.sentences_name = collections or collection_names(
            prefix, folder.name.removesuffix(".tmp")
        )
        self.first_key = self.next_key = next_key
        if self.created:
            for name, sentences in ((self.chunks_name, False), (self.sentences_name, True)):
                if client.has_collection(name):
                    client.drop_collection(name)
                schema, index = _schema(client, dim, sentences)
                client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        else:  # rows a killed writer inserted after the live version's keys: nobody reads them
            client.delete(self.chunks_name, filter=f"key >= {next_key}")
            client.delete(self.sentences_name, filter=f"key >= {next_key * SLOTS}")
        self._keys = (folder / CHUNK_KEYS).open("wb")
        self._counts: list[np.ndarray] = []
        self._chunk_rows: list[dict[str, Any]] = []
        self._sentence_rows: list[dict[str, Any]] = []
        self.n = 0

    def add(
        self,
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
        sentence_chunks: np.ndarray,
        chunk_articles: list[str] | None = None,
    ) -> None:
        """New chunks: fresh keys, inserted (in batches of INSERT_ROWS rows)."""
        chunk_vectors = np.asarray(chunk_vectors, dtype=np.float32).reshape(-1, self.dim)
        counts = sentence_counts(sentence_chunks, len(chunk_vectors))
        if chunk_articles is None or len(chunk_articles) != len(chunk_vectors):
            raise ValueError("the Milvus store needs each new chunk's article")
        if int(counts.max(initial=0)) > SLOTS:
            raise ValueError(f"a chunk has more than {SLOTS} sentences")
        keys = np.arange(self.next_key, self.next_key + len(chunk_vectors), dtype=np.int64)
        self.next_key += len(chunk_vectors)
        self._chunk_rows += [
            {"key": int(k), "article": a, "vector": v}
            for k, a, v in zip(keys, chunk_articles, chunk_vectors, strict=True)
        ]
        places = np.arange(len(sentence_chunks)) - np.repeat(np.cumsum(counts) - counts, counts)
        owners = keys[np.asarray(sentence_chunks, dtype=np.int64)]
        vectors = np.asarray(sentence_vectors, dtype=np.float32).reshape(-1, self.dim)
        self._sentence_rows += [
            {"key": int(o * SLOTS + p), "chunk": int(o), "vector": v}
            for o, p, v in zip(owners, places, vectors, strict=True)
        ]
        self._append(keys, counts)
        self._insert(final=False)

    def add_kept(self, kept: Kept) -> None:
        """Chunks of the live version: their rows stay, only their keys are written."""
        if not isinstance(kept.held, np.ndarray):
            raise TypeError(f"Milvus carries over chunks kept by a Milvus store, not {type(kept.held).__name__}")
        self._append(kept.held, kept.counts)

    def _append(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self._keys.write(np.asarray(keys, dtype=np.int64).tobytes())
        self._counts.append(np.asarray(counts, dtype=np.int64))
        self.n += len(keys)

    def _insert(self, final: bool) -> None:
        for name, rows in ((self.chunks_name, self._chunk_rows), (self.sentences_name, self._sentence_rows)):
            while len(rows) >= INSERT_ROWS or (final and rows):
                self.client.insert(name, rows[:INSERT_ROWS])
                del rows[:INSERT_ROWS]

    def close(self) -> tuple[list[str], dict[str, Any]]:
        """Send what is left and flush; the files written and the `store` section's parameters: how it is searched
        (`ann`), where (`uri`), the collections and the next free key."""
        self._insert(final=True)
        self.client.flush(self.chunks_name)
        self.client.flush(self.sentences_name)
        self._keys.close()
        names = [CHUNK_KEYS, write_offsets(self.folder, self._counts)]
        return names, {
            "ann": {"kind": "hnsw", **HNSW},
            "uri": self.uri,
            "prefix": self.prefix,
            "chunks": self.chunks_name,
            "sentences": self.sentences_name,
            "next_key": self.next_key,
        }

    def switched(self) -> None:
        """The version is live: the aliases follow it."""
        point_aliases(self.client, self.prefix, self.chunks_name, self.sentences_name)

    def discard(self) -> None:
        """An abandoned version: its new collections dropped, or its new rows deleted from the live ones."""
        self._keys.close()
        try:
            if self.created:
                for name in (self.chunks_name, self.sentences_name):
                    self.client.drop_collection(name)
            else:
                self.client.delete(self.chunks_name, filter=f"key >= {self.first_key}")
                self.client.delete(self.sentences_name, filter=f"key >= {self.first_key * SLOTS}")
        except Exception:  # noqa: BLE001, S110 (the next writer removes them: its keys start at the live next_key)
            pass


def point_aliases(client: Any, prefix: str, chunks: str, sentences: str) -> None:
    """`<prefix>_current_chunks` / `_sentences` name the live collections (for other tools; we read by name)."""
    existing = set(client.list_aliases().get("aliases", []))
    for alias, name in ((f"{prefix}_current_chunks", chunks), (f"{prefix}_current_sentences", sentences)):
        if alias in existing:
            client.alter_alias(name, alias)
        else:
            client.create_alias(name, alias)


def release(
    client: Any,
    retired: list[tuple[Mapping[str, Any], np.ndarray]],
    kept: list[tuple[Mapping[str, Any], np.ndarray]],
) -> None:
    """Delete what only retired versions read: their rows absent from every kept version of the same collections,
    and collections no kept version reads (each version given as its manifest's `milvus` and its chunk keys).
    Collections of this prefix's builds that no kept version reads (a build killed before its switch) go too."""
    live: dict[str, list[np.ndarray]] = {}
    for info, keys in kept:
        live.setdefault(info["chunks"], []).append(keys)
    if kept:
        ours = {info["prefix"] for info, _ in kept}
        reading = {name for info, _ in kept for name in (info["chunks"], info["sentences"])}
        for name in client.list_collections():
            built = any(name.startswith(collection_names(p, "v")[0].removesuffix("_chunks") + "_") for p in ours)
            if built and name not in reading:
                client.drop_collection(name)
    for info, keys in retired:
        if info["chunks"] not in live:
            for name in (info["chunks"], info["sentences"]):
                if client.has_collection(name):
                    client.drop_collection(name)
            continue
        gone = np.setdiff1d(keys, np.concatenate(live[info["chunks"]]))
        for part in _batches(gone):
            client.delete(info["chunks"], filter=_keys_expr("key", part))
            client.delete(info["sentences"], filter=_keys_expr("chunk", part))


class MilvusVectors:
    """A version's Milvus store (`VectorStore`): searches and fetches by key, keeping only this version's keys."""

    def __init__(self, client: Any, info: Mapping[str, Any], folder: Path, offsets: np.ndarray, dim: int) -> None:
        self.client = client
        self.info = info
        self.chunks_name = str(info["chunks"])
        self.sentences_name = str(info["sentences"])
        self.folder = folder
        self.keys = mapped_rows(folder / CHUNK_KEYS, np.int64)
        self.offsets = offsets
        self._dim = dim
        self._order = np.argsort(self.keys, kind="stable")
        self._sorted = np.asarray(self.keys)[self._order]
        for name in (self.chunks_name, self.sentences_name):
            if not client.has_collection(name):
                raise RagError(f"The Milvus collection {name} of this index is missing at {info['uri'] or 'the index'}")
            client.load_collection(name)
        # Rows of earlier versions that this one dropped linger until their last version is retired: searches ask for
        # that many more candidates (never more later: new rows have keys from next_key on).
        self.next_key = int(info["next_key"])
        held = client.query(self.chunks_name, filter=f"key < {self.next_key}", output_fields=["count(*)"])
        self.stale = max(0, int(held[0]["count(*)"]) - len(self.keys))

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(len(self.keys))

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Positions of the keys this version holds (others dropped), in the order given."""
        keys = np.asarray(keys, dtype=np.int64)
        at = np.clip(np.searchsorted(self._sorted, keys), 0, max(len(self._sorted) - 1, 0))
        known = (self._sorted[at] == keys) if len(self._sorted) else np.zeros(len(keys), dtype=bool)
        return self._order[at[known]].astype(np.int64)

    def search(self, queries: np.ndarray, k: int, where: Where | None = None) -> list[np.ndarray]:
        """One Milvus search for all query vectors (a filter becomes `article in [...]`)."""
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, len(self) if where is None else len(where.positions))
        if k <= 0 or not len(q):
            return [np.zeros(0, dtype=np.int64) for _ in q]
        # No filter unless one is asked for: Milvus Lite's filtered HNSW search missed about one in nine of the
        # exact top 10 for XQuAD questions (bench-scale, 10k chunks), unfiltered none. Rows of a later version
        # (keys from next_key on) are dropped below instead: a reader still on a superseded version (the page
        # between two questions) that gets fewer than k of its own asks again for more, so it still gets k.
        expr = ""
        if where is not None:
            expr = f"key < {self.next_key} and article in {json.dumps(list(where.articles), ensure_ascii=False)}"
        limit = min(k + self.stale, SEARCH_LIMIT)
        while True:
            found = self.client.search(
                self.chunks_name,
                data=q.tolist(),
                limit=limit,
                filter=expr,
                output_fields=[],
                search_params={"metric_type": "IP", "params": {"ef": max(EF_MIN, 2 * limit)}},
            )
            self._still_kept()
            kept = [self.positions(np.array([h["key"] for h in hits], dtype=np.int64))[:k] for hits in found]
            short = any(len(p) < k and len(hits) == limit for p, hits in zip(kept, found, strict=True))
            if not short or limit == SEARCH_LIMIT:
                return kept
            limit = min(2 * limit, SEARCH_LIMIT)

    def nearest(self, query: np.ndarray, k: int, where: Where | None = None) -> np.ndarray:
        return self.search(np.asarray(query)[None], k, where)[0]

    def fetch(self, ids: np.ndarray) -> Fetched:
        """Chunk vectors and sentence vectors, both by primary key (a sentence's key follows from its chunk's key and
        its place, the counts from the version's offsets): two gets, no scalar filter."""
        ids = np.asarray(ids, dtype=np.int64)
        keys = np.asarray(self.keys[ids], dtype=np.int64) if len(ids) else np.zeros(0, np.int64)
        counts = (self.offsets[ids + 1] - self.offsets[ids]).astype(np.int64)
        sentence_keys = np.repeat(keys * SLOTS, counts) + (
            np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        return Fetched(self._get(self.chunks_name, keys), self._get(self.sentences_name, sentence_keys), counts)

    def _get(self, collection: str, keys: np.ndarray) -> np.ndarray:
        """Vectors of rows by key, in the keys' order (IndexChangedError when the version was retired meanwhile,
        never a silently smaller set of passages)."""
        vectors = np.zeros((len(keys), self.dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for start in range(0, len(keys), QUERY_KEYS):
            part = keys[start : start + QUERY_KEYS]
            rows = self.client.get(collection, ids=part.tolist(), output_fields=["vector"])
            if not rows:
                continue
            got = np.fromiter((int(r["key"]) for r in rows), dtype=np.int64, count=len(rows))
            order = np.argsort(part, kind="stable")
            at = start + order[np.searchsorted(part[order], got)]
            vectors[at] = np.asarray([r["vector"] for r in rows], dtype=np.float32)
            found[at] = True
        self._still_kept()
        if not found.all():
            raise RagError(
                f"{int((~found).sum())} rows of this index are missing from the Milvus collection {collection}: it "
                "was changed outside rag. Rebuild the index with `rag index build`."
            )
        return vectors

    def _still_kept(self) -> None:
        """After each Milvus call: the version folder is still there, so no row of it was deleted before the call
        returned (a writer renames a retired version's folder before it deletes its rows)."""
        if not self.folder.is_dir():
            raise IndexChangedError(
                f"The index changed while this search ran: the version it read ({self.folder.name}) was replaced "
                "twice and retired meanwhile. Ask again: the next question reads the live version."
            )

    def units(self, chunk: int) -> np.ndarray:
        fetched = self.fetch(np.array([chunk], dtype=np.int64))
        return fetched.sentence_vectors if fetched.counts[0] else fetched.chunk_vectors

    def best_unit_score(self, query: np.ndarray, pool: int = 100) -> float:
        """Among the sentences of the `pool` nearest chunks (as for an IVF index)."""
        if not len(self):
            return 0.0
        return unit_floor(self.fetch(self.nearest(query, pool)), query)

    def keep(self, ids: np.ndarray) -> Kept:
        ids = np.asarray(ids, dtype=np.int64)
        return Kept((self.offsets[ids + 1] - self.offsets[ids]).astype(np.int64), np.asarray(self.keys[ids]))


class MilvusBackend:
    """The registry's Milvus entry: collections on a server or in a Milvus Lite file, chunk keys in the folder."""

    kind = "milvus"

    def writer(self, folder: Path, dim: int, options: StoreOptions, live: Mapping[str, Any] | None) -> MilvusWriter:
        o = MilvusOptions.of(options)
        client = client_for(o, folder.parent)
        if live is None or live.get("prefix") != o.prefix:  # a build: a new pair of collections
            return MilvusWriter(folder, dim, client, o.uri, o.prefix)
        collections = (str(live["chunks"]), str(live["sentences"]))
        return MilvusWriter(folder, dim, client, o.uri, o.prefix, collections, int(live["next_key"]))

    def open(self, version: StoredVersion, dim: int, options: StoreOptions) -> MilvusVectors:
        folder, section = version.folder, version.section
        client = client_for(MilvusOptions.of(options), folder.parent, str(section.get("uri", "")))
        offsets = np.load(folder / OFFSETS)
        vectors = MilvusVectors(client, section, folder, offsets, dim)
        if len(offsets) != len(vectors) + 1:
            raise ValueError(f"its {CHUNK_KEYS} does not match {OFFSETS}")
        return vectors

    def retire(
        self, index_dir: Path, retired: list[StoredVersion], kept: list[StoredVersion], options: StoreOptions
    ) -> None:
        """Rows and collections only the retired versions read (and the collections of builds killed before their
        switch), on the Milvus the versions recorded unless the settings name one."""

        def keys(v: StoredVersion) -> tuple[Mapping[str, Any], np.ndarray]:
            return v.section, np.asarray(mapped_rows(v.folder / CHUNK_KEYS, np.int64))

        recorded = str((kept or retired)[0].section.get("uri", ""))
        client = client_for(MilvusOptions.of(options), index_dir, recorded)
        release(client, [keys(v) for v in retired], [keys(v) for v in kept])

    def describe(self, section: Mapping[str, Any], index_dir: Path) -> dict[str, Any]:
        return {
            "search": f"HNSW (M {section['ann']['M']})",
            "milvus": {"uri": section.get("uri") or str(index_dir / LITE_DB), "chunks": section["chunks"]},
        }


BACKEND = MilvusBackend()
