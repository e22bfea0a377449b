"""Approximate stores through HTTP: create with a kind and options, the kind (and the tuned search
setting) in GET /stores, bad options refused with 400, and LocalAI's find/delete semantics on hnsw
and ivf stores."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import assert_error


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


def post(client: TestClient, path: str, **body: object) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def gaussian_keys(n: int, dim: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(n)]


def test_create_with_a_kind_and_options_shows_in_the_list(client: TestClient) -> None:
    created = post(client, "/stores/create", name="graph", index="hnsw", index_options={"m": 16, "ef_search": 64})
    assert (created["index_kind"], created["index_options"]) == ("hnsw", {"m": 16, "ef_search": 64})
    post(client, "/stores/create", name="cells", index="ivf", index_options={"train_threshold": 500})
    post(client, "/stores/create", name="plain")
    listed = {s["name"]: s for s in client.get("/stores").json()["stores"]}
    assert {name: listed[name]["index_kind"] for name in ("graph", "cells", "plain")} == {
        "graph": "hnsw", "cells": "ivf", "plain": "exact",
    }
    assert listed["cells"]["index_options"] == {"train_threshold": 500}
    assert listed["plain"]["index_options"] is None


@pytest.mark.parametrize(
    ("body", "param", "contains"),
    [
        ({"index": "hnsw", "index_options": {"M": 16}}, "index_options.M", "'M'"),
        ({"index": "hnsw", "index_options": {"ef_search": 0}}, "index_options.ef_search", "ef_search"),
        ({"index": "ivf", "index_options": {"nlist": "auto"}}, "index_options.nlist", "nlist"),
        ({"index": "ivf", "index_options": {"nlist": 16, "nprobe": 32}}, "index_options.nprobe", "nprobe"),
        ({"index": "exact", "index_options": {"nprobe": 4}}, "index_options.nprobe", "nprobe"),
        ({"index": "hnsw", "index_options": {"target_recall": 1.5}}, "index_options.target_recall", "(0, 1]"),
        ({"index": "ivf", "index_options": {"target_recall": 0}}, "index_options.target_recall", "(0, 1]"),
        (
            {"index": "ivf", "index_options": {"nprobe": 4, "target_recall": 0.9}},
            "index_options.target_recall",
            "not both",
        ),
    ],
)
def test_bad_index_options_are_400(client: TestClient, body: dict, param: str, contains: str) -> None:
    assert_error(client.post("/stores/create", json={"name": "bad", **body}), 400, param=param, contains=contains)
    assert "bad" not in {s["name"] for s in client.get("/stores").json()["stores"]}


def test_the_tuned_search_setting_shows_in_the_list(client: TestClient) -> None:
    post(client, "/stores/create", name="t", index="hnsw", index_options={"target_recall": 0.9})
    post(client, "/stores/create", name="fixed", index="hnsw", index_options={"ef_search": 64})
    keys = gaussian_keys(1200, 8, seed=5)
    for name in ("t", "fixed"):
        post(client, "/stores/set", store=name, keys=keys, values=[str(i) for i in range(len(keys))])
    deadline = time.monotonic() + 30
    while True:  # measured in the background once the store leaves its exact-scan regime
        listed = {s["name"]: s for s in client.get("/stores").json()["stores"]}
        if listed["t"]["tuned"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    tuned = listed["t"]["tuned"]
    assert listed["t"]["index_options"] == {"target_recall": 0.9}
    assert set(tuned) == {"ef_search", "recall", "target_recall", "at_count"}
    assert tuned["target_recall"] == 0.9 and tuned["recall"] >= 0.91 and tuned["at_count"] == 1200
    assert listed["fixed"]["tuned"] is None  # an explicit ef_search is never tuned


def test_an_unknown_kind_is_400(client: TestClient) -> None:
    assert_error(client.post("/stores/create", json={"name": "bad", "index": "lsh"}), 400)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_localai_semantics_on_an_approximate_store(client: TestClient, kind: str) -> None:
    options = {"train_threshold": 500} if kind == "ivf" else None
    post(client, "/stores/create", name="s", index=kind, index_options=options)
    keys = gaussian_keys(1200, 8, seed=3)
    post(client, "/stores/set", store="s", keys=keys, values=[str(i) for i in range(len(keys))])
    found = post(client, "/stores/find", store="s", key=keys[7], topk=3)
    assert found["values"][0] == "7" and found["similarities"][0] == pytest.approx(1.0, abs=1e-6)
    assert found["similarities"] == sorted(found["similarities"], reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in found["similarities"])
    post(client, "/stores/delete", store="s", keys=keys[:100])
    for i in (0, 7, 99):  # a deleted key's own entry (similarity 1.0) never comes back
        found = post(client, "/stores/find", store="s", key=keys[i], topk=5)
        assert str(i) not in found["values"] and found["similarities"][0] < 0.999
    everything = post(client, "/stores/find", store="s", key=keys[0], topk=5000)
    assert len(everything["values"]) == 1100 and not {str(i) for i in range(100)} & set(everything["values"])
    post(client, "/stores/set", store="s", keys=[keys[500]], values=["replaced"])
    assert post(client, "/stores/find", store="s", key=keys[500], topk=1)["values"] == ["replaced"]


def test_an_approximate_store_survives_a_restart(make_app: Callable[..., FastAPI]) -> None:
    keys = gaussian_keys(1100, 8, seed=4)
    with TestClient(make_app()) as first:
        post(first, "/stores/create", name="keep", index="hnsw")
        post(first, "/stores/set", store="keep", keys=keys, values=[str(i) for i in range(len(keys))])
        post(first, "/stores/delete", store="keep", keys=keys[:10])
    with TestClient(make_app()) as second:
        listed = {s["name"]: s for s in second.get("/stores").json()["stores"]}
        assert (listed["keep"]["index_kind"], listed["keep"]["count"]) == ("hnsw", 1090)
        found = post(second, "/stores/find", store="keep", key=keys[3], topk=2)
        assert "3" not in found["values"] and len(found["values"]) == 2
        assert post(second, "/stores/find", store="keep", key=keys[30], topk=1)["values"] == ["30"]
