"""Full-text search (circuitlake/search.py, jobs/search_index.py): tantivy's BM25 ranks as DuckDB's `fts`
BM25 did (the index it replaced), on the same documents: the same matches, the same scores up to
tantivy's one-byte document lengths, stop words and stems alike."""

from __future__ import annotations

import random

import duckdb
import pytest

from circuitlake import duck, search
from circuitlake.jobs import search_index
from circuitlake.settings import warehouse

WORDS = ["aspirin", "dose", "dosing", "french", "verbs", "plural", "nouns", "commas", "python", "3", "the", "of", "and"]
WORDS += [f"w{i}" for i in range(40)] + ["Éclair", "naïve"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """300 labeled neurons of 1-60 words in a DuckDB database shaped like a built warehouse, indexed both ways."""
    rng = random.Random(7)
    con = duck.load(duckdb.connect(), "fts")
    con.execute("create schema stg; create schema lake")
    con.execute("create table lake.atlases as select 'a' as atlas, 100 as neurons_per_layer")
    con.execute(
        """create table neurons (atlas text, layer int, neuron int, feature_id bigint, label text, output_label text,
           input_label text, description text, cluster_path text, top_cluster int)"""
    )
    rows = [(i // 100, i % 100, i, " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60)))) for i in range(300)]
    con.executemany("insert into neurons values ('a', ?, ?, ?, ?, null, null, null, null, null)", rows)
    con.execute("create table stg.neuron_labels as select * exclude (feature_id, cluster_path, top_cluster) from neurons limit 0")
    wh = warehouse(tmp_path_factory.mktemp("search"))
    assert search_index.index_docs(con, wh, "a", "fp") == 300
    con.execute("create table docs as select feature_id, label from neurons")
    settings = r"stemmer = 'porter', stopwords = 'english', ignore = '(\.|[^a-z0-9])+'"  # the DuckDB index of before
    con.execute(f"pragma create_fts_index('docs', 'feature_id', 'label', {settings})")
    yield con, search.fts_folder(wh, "a", "fp")
    con.close()


@pytest.mark.parametrize("query", ["aspirin", "aspirin doses", "DOSING of Aspirin", "w3 w17 plural", "python 3", "eclair naive"])
def test_bm25_matches_and_scores_as_duckdb_fts(indexed, query):
    con, folder = indexed
    folded = duck.scalar(con, f"select {search.FOLD.format('?')}", [query])
    ours = {layer * 100 + neuron: score for layer, neuron, score in search.bm25(folder, folded, 1000)}
    theirs = dict(
        con.execute(
            "select * from (select feature_id, fts_main_docs.match_bm25(feature_id, ?) as score from docs) where score is not null", [query]
        ).fetchall()
    )
    assert ours and set(ours) == set(theirs)
    assert max(abs(ours[k] / theirs[k] - 1) for k in theirs) < 0.04  # document lengths kept in one byte by tantivy
    assert max(ours, key=ours.__getitem__) == max(theirs, key=theirs.__getitem__)


def test_stop_words_alone_find_nothing_and_the_limit_holds(indexed):
    _con, folder = indexed
    assert search.bm25(folder, "the of and", 10) == []
    assert len(search.bm25(folder, "aspirin", 5)) == 5
