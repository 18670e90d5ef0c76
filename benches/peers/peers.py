#!/usr/bin/env python3
"""Peer comparison for huashu's engine: SQLite FTS5 + jieba and bm25s + jieba.

Both peers index the same phrasebook huashu serves (phrase text + keywords,
segmented with jieba and the phrasebook's own user dictionary) and answer the
same buyer messages, one query at a time, returning the top 3 phrases. Every
timed query includes segmenting the message with jieba.

    peers.py --phrasebook DIR --shop S --messages FILE [--huashu-json FILE]
             [--label L] [--json] [--out FILE]
    peers.py --combine RESULT.json... [--json]

The first form benchmarks one phrasebook and prints a table (or, with --json,
one JSON object); --out also writes that JSON object to FILE. The second form
merges several such objects (e.g. one per phrasebook size) into one table.
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import logging
import math
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
import tomllib
import unicodedata
import warnings

SCHEMA = "huashu-peers/1"
TOP_K = 3
ENGINE_FTS5 = "sqlite-fts5+jieba"
ENGINE_BM25S = "bm25s+jieba"
ENGINE_HUASHU = "huashu"
ENGINE_JIEBA = "jieba-only"  # opt-in baseline: segmentation alone, no retrieval
ALL_PEERS = (ENGINE_FTS5, ENGINE_BM25S)
KNOWN_ENGINES = ALL_PEERS + (ENGINE_JIEBA,)

# `{name|default}` -> default, `{name}` -> "" (policy placeholders in templates).
PLACEHOLDER = re.compile(r"\{([^{}|]*)(?:\|([^{}]*))?\}")


# Particles and pronouns huashu never searches for: a copy of `is_stopword` in
# src/text/tokenize.rs. Both peers drop them from queries too (not from the
# index), unless --keep-stopwords.
STOPWORDS = frozenset("""
    的 了 吗 呢 吧 啊 呀 哦 嘛 哈 么 啦 喔 噢 哇
    亲 您 你 我 我们 你们 是 在 就 都 也 还 和 跟
    这 那 这个 那个 一下 请问 请 个 有 没 不
""".split())

# --------------------------------------------------------------------------- data


def load_phrases(root: str, shop: str) -> list[dict]:
    """Enabled phrases of one shop, in file order: id, intent, text, keywords."""
    intents_dir = os.path.join(root, shop, "intents")
    files = sorted(glob.glob(os.path.join(intents_dir, "*.toml")))
    if not files:
        sys.exit(f"peers.py: no intent files in {intents_dir}")
    phrases = []
    for path in files:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        intent = os.path.splitext(os.path.basename(path))[0]
        for p in doc.get("phrase", []):
            if p.get("enabled", True) is False:
                continue
            text = PLACEHOLDER.sub(lambda m: m.group(2) or "", p["text"])
            phrases.append(
                {
                    "id": p["id"],
                    "intent": intent,
                    "text": text,
                    "keywords": list(p.get("keywords", [])),
                }
            )
    if not phrases:
        sys.exit(f"peers.py: shop {shop} in {root} has no enabled phrases")
    return phrases


def load_messages(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        msgs = [line.strip() for line in f]
    msgs = [m for m in msgs if m]
    if not msgs:
        sys.exit(f"peers.py: no messages in {path}")
    return msgs


def load_huashu(path: str) -> dict:
    """huashu's `bench --engine --json` output: the last line that is a JSON object."""
    with open(path, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip().startswith("{")]
    if not lines:
        sys.exit(f"peers.py: no JSON object in {path}")
    doc = json.loads(lines[-1])
    for key in ("p50_us", "p99_us"):
        if not isinstance(doc.get(key), (int, float)):
            sys.exit(f"peers.py: {path} lacks a numeric {key!r}")
    return doc


# --------------------------------------------------------------------------- jieba


class Segmenter:
    """jieba set up like huashu's tokenizer: phrasebook dictionaries, no HMM."""

    def __init__(self, root: str, shop: str, hmm: bool, stopwords: frozenset = STOPWORDS):
        warnings.filterwarnings("ignore", category=SyntaxWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import jieba  # noqa: PLC0415 (imported late: only the venv has it)

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        self.dict_files = sorted(glob.glob(os.path.join(root, "dict", "*.txt")))
        for path in self.dict_files:
            jieba.load_userdict(path)  # `word freq tag` lines, same as huashu's
        shop_toml = os.path.join(root, shop, "shop.toml")
        self.shop_words = []
        if os.path.exists(shop_toml):
            with open(shop_toml, "rb") as f:
                self.shop_words = list(tomllib.load(f).get("dict", {}).get("words", []))
        for w in self.shop_words:
            jieba.add_word(w)
        self.jieba = jieba
        self.hmm = hmm
        self.stopwords = stopwords

    def tokens(self, text: str) -> list[str]:
        """jieba tokens without whitespace and punctuation/symbol-only tokens."""
        return [t for t in self.jieba.lcut(text, HMM=self.hmm) if keep_token(t)]

    def query_tokens(self, message: str) -> list[str]:
        """Tokens of a buyer message, as searched: distinct, without stopwords."""
        return list(dict.fromkeys(t for t in self.tokens(message) if t not in self.stopwords))


_KEEP_CACHE: dict[str, bool] = {}


def keep_token(tok: str) -> bool:
    hit = _KEEP_CACHE.get(tok)
    if hit is None:
        hit = any(unicodedata.category(c)[0] in "LN" for c in tok)
        if len(_KEEP_CACHE) < 100_000:
            _KEEP_CACHE[tok] = hit
    return hit


# --------------------------------------------------------------------------- engines


def fts5_quote(tok: str) -> str:
    return '"' + tok.replace('"', '""') + '"'


class Fts5Engine:
    name = ENGINE_FTS5

    def __init__(self, seg: Segmenter, workdir: str):
        self.seg = seg
        self.path = os.path.join(workdir, "fts5.sqlite")

    def build(self, phrases: list[dict]) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)
        db = sqlite3.connect(self.path)
        db.execute(
            "CREATE VIRTUAL TABLE t USING fts5(pid UNINDEXED, text, keywords)"
        )
        rows = []
        for p in phrases:
            kw = [t for k in p["keywords"] for t in self.seg.tokens(k)]
            rows.append((p["id"], " ".join(self.seg.tokens(p["text"])), " ".join(kw)))
        db.executemany("INSERT INTO t(pid, text, keywords) VALUES (?, ?, ?)", rows)
        db.execute("INSERT INTO t(t) VALUES ('optimize')")
        db.commit()
        self.db = db
        self.sql = "SELECT pid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT %d" % TOP_K

    def query(self, message: str) -> list:
        toks = self.seg.query_tokens(message)
        if not toks:
            return []  # an empty MATCH expression is a syntax error in FTS5
        expr = " OR ".join(fts5_quote(t) for t in toks)
        return self.db.execute(self.sql, (expr,)).fetchall()

    def close(self) -> None:
        self.db.close()


class Bm25sEngine:
    name = ENGINE_BM25S

    def __init__(self, seg: Segmenter, workdir: str):
        self.seg = seg

    def build(self, phrases: list[dict]) -> None:
        import bm25s  # noqa: PLC0415

        corpus = []
        for p in phrases:
            toks = self.seg.tokens(p["text"])
            for k in p["keywords"]:
                toks.extend(self.seg.tokens(k))
            corpus.append(toks)
        # backend/csc_backend "numpy": no numba, no scipy (neither is installed).
        self.retriever = bm25s.BM25(backend="numpy", csc_backend="numpy")
        self.retriever.index(corpus, show_progress=False)
        self.k = min(TOP_K, len(phrases))  # bm25s raises if k > number of documents

    def query(self, message: str) -> list:
        toks = self.seg.query_tokens(message)
        # One query per call, as a live service would; a list of one token list.
        res = self.retriever.retrieve([toks], k=self.k, show_progress=False, n_threads=0)
        scores = res.scores[0]
        return [int(d) for d, s in zip(res.documents[0], scores) if s > 0]

    def close(self) -> None:
        pass


class JiebaOnly:
    """Baseline, not a peer: what segmenting the message alone costs in Python."""

    name = ENGINE_JIEBA

    def __init__(self, seg: Segmenter, workdir: str):
        self.seg = seg

    def build(self, phrases: list[dict]) -> None:
        pass

    def query(self, message: str) -> list:
        return self.seg.query_tokens(message)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- timing


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile in µs."""
    n = len(sorted_ns)
    i = min(n - 1, max(0, math.ceil(q * n) - 1))
    return sorted_ns[i] / 1000.0


def bench_engine(engine, phrases, messages, args) -> dict:
    t0 = time.perf_counter_ns()
    engine.build(phrases)
    build_ms = (time.perf_counter_ns() - t0) / 1e6

    n_msgs = len(messages)
    for i in range(args.warmup):
        engine.query(messages[i % n_msgs])

    target = min(max(args.min_queries, n_msgs), args.max_queries)
    budget_ns = int(args.time_budget * 1e9)
    lat = []
    answered = 0
    gc.collect()
    clock = time.perf_counter_ns
    start = clock()
    for i in range(target):
        msg = messages[i % n_msgs]
        a = clock()
        hits = engine.query(msg)
        b = clock()
        lat.append(b - a)
        if hits:
            answered += 1
        if b - start > budget_ns:
            break
    wall_s = (clock() - start) / 1e9
    engine.close()
    lat.sort()
    q = len(lat)
    return {
        "engine": engine.name,
        "phrases": len(phrases),
        "queries": q,
        "p50_us": round(percentile(lat, 0.50), 1),
        "p90_us": round(percentile(lat, 0.90), 1),
        "p99_us": round(percentile(lat, 0.99), 1),
        "p999_us": round(percentile(lat, 0.999), 1),
        "max_us": round(lat[-1] / 1000.0, 1),
        "mean_us": round(sum(lat) / q / 1000.0, 1),
        "build_ms": round(build_ms, 1),
        "answered": round(answered / q, 4),
        "wall_s": round(wall_s, 2),
        "stopped_by_time_budget": q < target,
    }


# --------------------------------------------------------------------------- metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "nproc": nproc,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


def versions() -> dict:
    v = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    for mod in ("jieba", "bm25s", "numpy", "scipy"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    return v


def check_fts5() -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE x USING fts5(a)")
    except sqlite3.OperationalError as e:
        sys.exit(
            f"peers.py: this Python's SQLite {sqlite3.sqlite_version} has no FTS5 ({e}); "
            "use a python3 whose sqlite3 is built with FTS5 (Debian/Ubuntu/python.org builds are)"
        )
    finally:
        db.close()


# --------------------------------------------------------------------------- report


def add_ratios(run: dict) -> None:
    hs = next((e for e in run["engines"] if e["engine"] == ENGINE_HUASHU), None)
    for e in run["engines"]:
        for p in ("p50", "p99"):
            key = f"{p}_x_vs_huashu"
            if hs and hs.get(f"{p}_us"):
                e[key] = round(e[f"{p}_us"] / hs[f"{p}_us"], 2)
            else:
                e[key] = None


def fmt(v, spec=".1f") -> str:
    return "—" if v is None else format(v, spec)


def table(doc: dict) -> str:
    head = ("size", "engine", "phrases", "queries", "p50 µs", "p90 µs", "p99 µs",
            "max µs", "build ms", "p50 ×", "p99 ×")
    rows = []
    for run in doc["runs"]:
        for e in run["engines"]:
            rows.append((
                str(run["label"]), e["engine"], str(e.get("phrases", "—")),
                str(e.get("queries", "—")),
                fmt(e.get("p50_us")), fmt(e.get("p90_us")), fmt(e.get("p99_us")),
                fmt(e.get("max_us")), fmt(e.get("build_ms")),
                fmt(e.get("p50_x_vs_huashu"), ".2f"), fmt(e.get("p99_x_vs_huashu"), ".2f"),
            ))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    left = {0, 1}

    def line(r):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))

    out = [line(head), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    m, v = doc["machine"], doc["versions"]
    out.append("")
    out.append(f"machine: {m['nproc']} cpu, {m['cpu_model']}; load at start {m['loadavg_at_start']}")
    out.append("versions: " + ", ".join(f"{k} {v[k]}" for k in v if v[k] is not None))
    out.append("× = peer percentile / huashu percentile (>1: huashu is faster). "
               "huashu's time covers tokenization, intent detection, ranking and compliance; "
               "the peers only segment and retrieve.")
    return "\n".join(out)


def combine(paths: list[str]) -> dict:
    docs = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            docs.append(json.load(f))
    if not docs:
        sys.exit("peers.py: --combine needs at least one file")
    out = dict(docs[0])
    out["runs"] = [r for d in docs for r in d["runs"]]
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phrasebook", help="phrasebook root (holds <shop>/ and dict/)")
    ap.add_argument("--shop", help="shop id, e.g. demo or s000")
    ap.add_argument("--messages", help="buyer messages, one per line")
    ap.add_argument("--huashu-json", help="output of `huashu bench --engine --json`")
    ap.add_argument("--huashu-version", help="recorded as versions.huashu (run.sh passes git describe)")
    ap.add_argument("--label", help="row label for this phrasebook (default: phrase count)")
    ap.add_argument("--engines", default=",".join(ALL_PEERS),
                    help=f"comma-separated engines to run (default {','.join(ALL_PEERS)}; "
                         f"add {ENGINE_JIEBA} for a segmentation-only baseline row)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed queries first (200)")
    ap.add_argument("--min-queries", type=int, default=5000,
                    help="timed queries: messages cycled to at least this many (5000)")
    ap.add_argument("--max-queries", type=int, default=20000, help="cap on timed queries (20000)")
    ap.add_argument("--time-budget", type=float, default=60.0,
                    help="seconds of timed queries per engine before it stops early (60)")
    ap.add_argument("--jieba-hmm", action="store_true",
                    help="segment with jieba's HMM (huashu does not; off by default)")
    ap.add_argument("--keep-stopwords", action="store_true",
                    help="search particles/pronouns too (huashu drops them; so do the peers by default)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--out", help="also write the JSON result to this file")
    ap.add_argument("--combine", nargs="+", metavar="RESULT",
                    help="merge JSON results written with --out into one table")
    args = ap.parse_args(argv)
    if not args.combine:
        missing = [o for o in ("phrasebook", "shop", "messages") if not getattr(args, o)]
        if missing:
            ap.error("missing " + ", ".join("--" + m for m in missing))
        bad = [e for e in args.engines.split(",") if e and e not in KNOWN_ENGINES]
        if bad:
            ap.error(f"unknown engine(s) {bad}; choose from {list(KNOWN_ENGINES)}")
    return args


def run(args) -> dict:
    check_fts5()
    phrases = load_phrases(args.phrasebook, args.shop)
    messages = load_messages(args.messages)
    seg = Segmenter(args.phrasebook, args.shop, args.jieba_hmm,
                    frozenset() if args.keep_stopwords else STOPWORDS)

    engines = []
    if args.huashu_json:
        hs = dict(load_huashu(args.huashu_json))
        hs["engine"] = ENGINE_HUASHU
        hs.setdefault("build_ms", None)
        engines.append(hs)
        if hs.get("phrases") not in (None, len(phrases)):
            print(f"peers.py: note: huashu indexed {hs['phrases']} phrases, peers {len(phrases)}",
                  file=sys.stderr)

    classes = {ENGINE_FTS5: Fts5Engine, ENGINE_BM25S: Bm25sEngine, ENGINE_JIEBA: JiebaOnly}
    with tempfile.TemporaryDirectory(prefix="huashu-peers-") as work:
        for name in [e for e in args.engines.split(",") if e]:
            print(f"peers.py: {name} on {len(phrases)} phrases ...", file=sys.stderr)
            engines.append(bench_engine(classes[name](seg, work), phrases, messages, args))

    doc = {
        "schema": SCHEMA,
        "machine": machine_info(),
        "versions": {**versions(), "huashu": args.huashu_version},
        "settings": {
            "top_k": TOP_K,
            "warmup": args.warmup,
            "min_queries": args.min_queries,
            "max_queries": args.max_queries,
            "time_budget_s": args.time_budget,
            "jieba_hmm": args.jieba_hmm,
            "query_stopwords_dropped": not args.keep_stopwords,
            "jieba_user_dicts": [os.path.basename(p) for p in seg.dict_files],
            "shop_dict_words": len(seg.shop_words),
            "percentile": "nearest-rank over every timed query",
        },
        "runs": [{
            "label": args.label or str(len(phrases)),
            "phrasebook": os.path.abspath(args.phrasebook),
            "shop": args.shop,
            "phrases": len(phrases),
            "messages": len(messages),
            "engines": engines,
        }],
    }
    add_ratios(doc["runs"][0])
    return doc


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    doc = combine(args.combine) if args.combine else run(args)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
    if args.json:
        print(json.dumps(doc, ensure_ascii=False))
    else:
        print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
