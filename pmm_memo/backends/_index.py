"""The RediSearch index: the seed's schema plus our exact-match fields, and how to check
that an existing index matches what this process would create.

The seed's fields (`text TEXT, tenant TAG, user TAG, created_at NUMERIC SORTABLE,
embedding VECTOR ... COSINE`) are kept as they are. Filters never use `tenant`/`user`
directly: TAG fields fold case and split on commas, and `{ } | * @` change query meaning,
so every filter uses hex digests in CASESENSITIVE tags — exact for any string, with
nothing to escape: `part` (multi-value: the keyed digest of tenant, user, function and
scope, of tenant and user, and of the tenant; see `_digests.Partitions`), so a lookup
filters with one clause, and `text_h`. Hits are re-checked against the stored plain
values as well.

One index per embedder (vector space): its name is `<CACHE_INDEX_NAME>:<slug>:v2` and its
`FILTER @emb=="<digest>"` admits only entries with that embedder, so a vector is never
searched with another space's query and two dimensions never conflict. `v2` is the
schema: the first one (`<CACHE_INDEX_NAME>:<slug>`, four tags `tenant_h`, `user_h`,
`fn`, `scope`) is never queried with this filter; `legacy_name` finds it, to report it
as a leftover with the command that drops it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .._digests import PART_KEY
from .._errors import IndexSchemaError

# Seed fields first, then ours. (name, type, extra args)
_TAG_FIELDS = ("part", "text_h")
SCHEMA = "v2"  # the suffix of index names with this schema (see the module docstring)
# Fields only the first schema's index had: an index of ours with them is a leftover.
LEGACY_TAGS = ("tenant_h", "user_h")


DEFAULT_PREFIX = "cache:"  # CACHE_KEY_PREFIX's default (API.md's `cache:<tenant>:...`)


def index_name(base: str, slug: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The index of one embedder under CACHE_INDEX_NAME `base`, this schema, for the
    entries under key `prefix`: `<base>:<slug>:v2` for the default prefix, with the
    prefix's own part before the slug otherwise. An index covers one key prefix, so two
    programs on one Redis with their own CACHE_KEY_PREFIX and the default index name
    each get their own index (the second used to find the first's: IndexSchemaError,
    its semantic lookups off)."""
    if prefix != DEFAULT_PREFIX:
        readable = re.sub(r"[^0-9A-Za-z_-]+", "_", prefix).strip("_")[:32]
        digest = hashlib.blake2b(prefix.encode("utf-8", "surrogatepass"), digest_size=4)
        base = f"{base}:{readable}-{digest.hexdigest()}"
    return f"{base}:{slug}:{SCHEMA}"


def legacy_index_name(base: str, slug: str) -> str:
    """The same index's name under the first schema (pmm_memo before `part`)."""
    return f"{base}:{slug}"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    prefix: str
    dim: int
    algorithm: str = "HNSW"  # or FLAT
    vector_type: str = "FLOAT32"  # or FLOAT16
    m: int = 16
    ef_construction: int = 200
    ef_runtime: int = 200
    # Digest of the embedder label (`_embedder_id`): the index holds only entries
    # whose `emb` field equals it, so each vector space has its own index on one server.
    embedder_tag: str | None = None
    # Key of the `part` tags (`_digests.Partitions`): CACHE_HASH_SECRET's, when set.
    part_key: bytes = field(default=PART_KEY, repr=False)
    # The name the first schema gave this index (a leftover when it still exists).
    legacy_name: str | None = None

    def create_args(self) -> list[Any]:
        vector: list[Any] = ["TYPE", self.vector_type, "DIM", self.dim, "DISTANCE_METRIC", "COSINE"]
        if self.algorithm == "HNSW":
            vector += [
                "M",
                self.m,
                "EF_CONSTRUCTION",
                self.ef_construction,
                "EF_RUNTIME",
                self.ef_runtime,
            ]
        schema: list[Any] = [
            "text",
            "TEXT",
            "tenant",
            "TAG",
            "user",
            "TAG",
            "created_at",
            "NUMERIC",
            "SORTABLE",
            "embedding",
            "VECTOR",
            self.algorithm,
            len(vector),
            *vector,
        ]
        for tag in _TAG_FIELDS:
            schema += [tag, "TAG", "CASESENSITIVE"]
        head: list[Any] = ["FT.CREATE", self.name, "ON", "HASH", "PREFIX", 1, self.prefix]
        if self.embedder_tag is not None:
            head += ["FILTER", f'@emb=="{self.embedder_tag}"']
        return [*head, "SCHEMA", *schema]

    def create_command(self) -> str:
        """The FT.CREATE command as text, for error messages and docs."""
        return " ".join(str(a) for a in self.create_args())


def _s(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _as_dict(v: Any) -> dict[str, Any]:
    """FT.INFO parts come as flat lists (RESP2) or dicts (RESP3 / redis-py >= 8)."""
    if isinstance(v, dict):
        return {str(_s(k)): x for k, x in v.items()}
    if isinstance(v, list):
        return {str(_s(v[i])): v[i + 1] for i in range(0, len(v) - 1, 2)}
    return {}


# Words that stand alone in a RESP2 FT.INFO attribute (RESP3 puts them under "flags").
_FLAG_WORDS = frozenset(
    {
        "CASESENSITIVE",
        "SORTABLE",
        "UNF",
        "NOSTEM",
        "NOINDEX",
        "WITHSUFFIXTRIE",
        "INDEXEMPTY",
        "INDEXMISSING",
    }
)


def _attribute(raw: Any) -> dict[str, Any]:
    """One FT.INFO attribute as {lower-case key: value}, with "flags" as a list."""
    attr: dict[str, Any]
    if isinstance(raw, dict):
        attr = {str(_s(k)).lower(): v for k, v in raw.items()}
        attr["flags"] = [str(_s(f)).upper() for f in attr.get("flags", [])]
        return attr
    attr = {"flags": []}
    items = list(raw) if isinstance(raw, list | tuple) else []
    i = 0
    while i < len(items):
        word = str(_s(items[i]))
        if word.upper() in _FLAG_WORDS:
            attr["flags"].append(word.upper())
            i += 1
        else:
            attr[word.lower()] = items[i + 1] if i + 1 < len(items) else None
            i += 2
    return attr


def describe_existing(info: Any) -> dict[str, Any]:
    """The parts of an FT.INFO reply we compare, normalised (RESP2 or RESP3 shapes)."""
    top = _as_dict(info)
    definition = _as_dict(top.get("index_definition", {}))
    fields: dict[str, dict[str, Any]] = {}
    for raw in top.get("attributes", []):
        attr = _attribute(raw)
        name = str(_s(attr.get("attribute", attr.get("identifier"))))
        fields[name] = {
            "type": str(_s(attr.get("type", ""))).upper(),
            "algorithm": str(_s(attr.get("algorithm", ""))).upper(),
            "data_type": str(_s(attr.get("data_type", ""))).upper(),
            "dim": int(_s(attr["dim"])) if attr.get("dim") is not None else None,
            "metric": str(_s(attr.get("distance_metric", ""))).upper(),
            "casesensitive": "CASESENSITIVE" in attr["flags"],
        }
    prefixes = [str(_s(p)) for p in definition.get("prefixes", [])]
    raw_filter = definition.get("filter")
    return {
        "prefixes": prefixes,
        "filter": None if raw_filter is None else str(_s(raw_filter)),
        "fields": fields,
        "num_docs": int(_s(top.get("num_docs", 0))),
    }


def adopt_algorithm(spec: IndexSpec, info: Any) -> IndexSpec:
    """`spec` with the live index's vector algorithm when it uses the other one.

    FLAT or HNSW is a choice of load time, memory and query speed, never of what a
    lookup may return, so an index built under the other setting (an older default, a
    second service) is used as it is, queries following it, rather than refused.
    """
    live = describe_existing(info)["fields"].get("embedding")
    algorithm = live["algorithm"] if live else ""
    if algorithm in ("FLAT", "HNSW") and algorithm != spec.algorithm:
        return replace(spec, algorithm=algorithm)
    return spec


def index_missing(exc: BaseException) -> bool:
    """Does this search error say the index does not exist (never made, dropped, or lost
    with a restarted server)?"""
    text = str(exc).lower()
    return "no such index" in text or "unknown index" in text


def index_stale(exc: BaseException) -> bool:
    """Does this FT.SEARCH error say the index this process knows is gone, or was made
    again differently (another program dropped it and created it with the other vector
    algorithm: HNSW's EF_RUNTIME is then "Error parsing vector similarity parameters")?
    Either way the index is looked up again (and its algorithm adopted) on the next
    lookup, instead of every lookup failing until a restart."""
    return index_missing(exc) or "vector similarity parameters" in str(exc).lower()


def check_compatible(spec: IndexSpec, info: Any) -> None:
    """Raise IndexSchemaError (saying how to migrate) when the live index differs."""
    live = describe_existing(info)
    problems = []
    if live["prefixes"] != [spec.prefix]:
        problems.append(f"key prefix {live['prefixes']} (want [{spec.prefix!r}])")
    if spec.embedder_tag is not None and spec.embedder_tag not in (live["filter"] or ""):
        problems.append(f'FILTER {live["filter"]!r} (want @emb=="{spec.embedder_tag}")')
    emb = live["fields"].get("embedding")
    if emb is None or emb["type"] != "VECTOR":
        problems.append("no VECTOR field 'embedding'")
    else:
        if emb["dim"] != spec.dim:
            problems.append(f"embedding DIM {emb['dim']} (want {spec.dim})")
        if emb["metric"] != "COSINE":
            problems.append(f"DISTANCE_METRIC {emb['metric']} (want COSINE)")
        if emb["data_type"] != spec.vector_type:
            problems.append(f"TYPE {emb['data_type']} (want {spec.vector_type})")
        if emb["algorithm"] != spec.algorithm:
            problems.append(f"algorithm {emb['algorithm']} (want {spec.algorithm})")
    for tag in _TAG_FIELDS:
        f = live["fields"].get(tag)
        if f is None or f["type"] != "TAG" or not f["casesensitive"]:
            problems.append(f"no CASESENSITIVE TAG field {tag!r}")
    for seed_field, kind in (
        ("text", "TEXT"),
        ("tenant", "TAG"),
        ("user", "TAG"),
        ("created_at", "NUMERIC"),
    ):
        f = live["fields"].get(seed_field)
        if f is None or f["type"] != kind:
            problems.append(f"no {kind} field {seed_field!r}")
    shared = ""
    if live["prefixes"] != [spec.prefix]:
        # Most often not an old configuration but another program on this Redis, with
        # its own CACHE_KEY_PREFIX: dropping its index (the advice below) would break it.
        shared = (
            f"If another program uses this Redis with CACHE_KEY_PREFIX "
            f"{', '.join(map(repr, live['prefixes']))}, leave its index alone and give "
            f"this program its own CACHE_INDEX_NAME. "
        )
    if problems:
        raise IndexSchemaError(
            f"search index {spec.name!r} exists with another schema: {'; '.join(problems)}. "
            f"Entries written now would not be searchable. {shared}To migrate, either point "
            f"CACHE_INDEX_NAME at a new index name (old entries expire by TTL), or drop the "
            f"old index without its documents (`FT.DROPINDEX {spec.name}`) and restart; it "
            f"will be re-created as: {spec.create_command()}"
        )
