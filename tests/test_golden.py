"""The committed golden vectors: the stream of every sampler and dtype is frozen (contract v1)."""

import json

import pytest

import golden

TABLE = json.loads(golden.PATH.read_text())


def test_table_covers_every_sampler_and_dtype():
    assert TABLE["contract"] == "v1"
    seen = {(row["sampler"], row["dtype"]) for row in TABLE["vectors"]}
    assert seen == {(name, dtype) for name, _, dtype, _ in golden.cases()}


@pytest.mark.parametrize("row", TABLE["vectors"], ids=lambda r: f"{r['sampler']}-{r['dtype']}-{r['seed']}")
def test_golden_vector(row):
    sampler, kwargs = golden.kwargs_of(row["sampler"])
    values = sampler(tuple(row["shape"]), dtype=row["dtype"], seed=row["seed"], stream=row["stream"],
                     index=golden.index_of(row["index"]), device="cpu", **kwargs)
    assert golden.bits(values) == row["bits"]
