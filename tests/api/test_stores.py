"""LocalAI's /stores contract through HTTP, our create/list/drop, and data that survives a restart."""

from __future__ import annotations

import math
import random
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


def test_set_and_delete_answer_an_empty_body(client: TestClient) -> None:
    response = client.post("/stores/set", json={"keys": [[1.0, 0.0]], "values": ["x"]})
    assert response.status_code == 200 and response.content == b""
    response = client.post("/stores/delete", json={"keys": [[1.0, 0.0]]})
    assert response.status_code == 200 and response.content == b""


def test_localai_orthogonal_vectors(client: TestClient) -> None:
    keys = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]
    post(client, "/stores/set", keys=keys, values=["x", "y", "z", "-x"])
    found = post(client, "/stores/find", key=[1.0, 0.0, 0.0], topk=4)
    assert found["values"][0] == "x" and found["values"][-1] == "-x"
    assert sorted(found["values"][1:3]) == ["y", "z"]
    assert found["similarities"] == pytest.approx([1.0, 0.0, 0.0, -1.0], abs=1e-6)
    assert found["keys"][0] == [1.0, 0.0, 0.0]


def test_non_normalised_keys_rank_by_cosine(client: TestClient) -> None:
    post(client, "/stores/set", keys=[[10.0, 1.0], [0.5, 0.5], [-3.0, 0.1]], values=["near", "diag", "far"])
    found = post(client, "/stores/find", key=[2.0, 0.0], topk=3)
    assert found["values"] == ["near", "diag", "far"]
    assert found["similarities"][0] == pytest.approx(10 / math.hypot(10, 1), abs=1e-6)


def test_triangle_inequality_of_angular_distance(client: TestClient) -> None:
    rng = random.Random(1)
    keys = [[rng.gauss(0, 1) for _ in range(768)] for _ in range(12)]
    post(client, "/stores/set", store="tri", keys=keys, values=[str(i) for i in range(12)])
    angle = {}
    for i, key in enumerate(keys):
        found = post(client, "/stores/find", store="tri", key=key, topk=12)
        for value, sim in zip(found["values"], found["similarities"], strict=True):
            angle[i, int(value)] = math.acos(max(-1.0, min(1.0, sim)))
    for a in range(12):
        for b in range(12):
            for c in range(12):
                assert angle[a, c] <= angle[a, b] + angle[b, c] + 1e-6


def test_get_upsert_and_missing_keys(client: TestClient) -> None:
    post(client, "/stores/set", keys=[[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]], values=["a", "b", "last wins"])
    got = post(client, "/stores/get", keys=[[3.0, 4.0], [9.0, 9.0], [1.0, 2.0]])
    assert got == {"keys": [[3.0, 4.0], [1.0, 2.0]], "values": ["b", "last wins"]}
    post(client, "/stores/set", keys=[[3.0, 4.0]], values=["replaced"])
    assert post(client, "/stores/get", keys=[[3.0, 4.0]])["values"] == ["replaced"]


def test_emptying_a_store_resets_its_dimension(client: TestClient) -> None:
    post(client, "/stores/set", store="s", keys=[[1.0, 0.0]], values=["a"])
    assert_error(client.post("/stores/set", json={"store": "s", "keys": [[1.0, 0.0, 0.0]], "values": ["b"]}), 400)
    post(client, "/stores/delete", store="s", keys=[[1.0, 0.0]])
    post(client, "/stores/set", store="s", keys=[[1.0, 0.0, 0.0]], values=["b"])
    assert post(client, "/stores/find", store="s", key=[1.0, 0.0, 0.0], topk=5)["values"] == ["b"]


def test_namespaces_are_separate_and_empty_is_default(client: TestClient) -> None:
    post(client, "/stores/set", keys=[[1.0]], values=["default"])
    post(client, "/stores/set", store="other", keys=[[1.0]], values=["other"])
    assert post(client, "/stores/get", store="", keys=[[1.0]])["values"] == ["default"]
    assert post(client, "/stores/get", store="other", keys=[[1.0]])["values"] == ["other"]


def test_topk_larger_than_the_store_and_empty_store(client: TestClient) -> None:
    assert post(client, "/stores/find", store="empty", key=[1.0, 0.0], topk=3) == {
        "keys": [], "values": [], "similarities": []
    }
    post(client, "/stores/set", keys=[[1.0, 0.0], [0.0, 1.0]], values=["a", "b"], backend="local-store")
    assert len(post(client, "/stores/find", key=[1.0, 0.0], topk=100)["values"]) == 2


def test_metadata_rides_along(client: TestClient) -> None:
    post(client, "/stores/set", keys=[[1.0, 0.0]], values=["doc"], metadata=[{"source": "a.txt", "page": 2}])
    found = post(client, "/stores/find", key=[1.0, 0.0], topk=1)
    assert found["metadata"] == [{"source": "a.txt", "page": 2}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/stores/set", {"keys": [[1.0]], "values": ["a", "b"]}),
        ("/stores/set", {"keys": [], "values": []}),
        ("/stores/set", {"keys": [[1.0, "x"]], "values": ["a"]}),
        ("/stores/set", {"keys": [[1.0]], "values": ["a"], "backend": "milvus"}),
        ("/stores/find", {"key": [1.0], "topk": 0}),
        ("/stores/find", {"key": [1.0]}),
        ("/stores/get", {}),
    ],
)
def test_bad_input_is_400(client: TestClient, path: str, body: dict) -> None:
    assert_error(client.post(path, json=body), 400)


def test_non_finite_numbers_are_refused(client: TestClient) -> None:
    body = b'{"keys": [[NaN, 1.0]], "values": ["a"]}'
    response = client.post("/stores/set", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400)


def test_create_list_drop(client: TestClient) -> None:
    created = post(client, "/stores/create", name="docs", embedding_model="all-minilm-l6-v2", embedding_dimension=384)
    assert created["name"] == "docs" and created["count"] == 0
    assert_error(client.post("/stores/create", json={"name": "docs"}), 409)
    post(client, "/stores/set", store="docs", keys=[[1.0, 0.0]], values=["a"])
    listed = {s["name"]: s for s in client.get("/stores").json()["stores"]}
    assert listed["docs"]["count"] == 1 and listed["docs"]["dimension"] == 2
    assert listed["docs"]["embedding_model"] == "all-minilm-l6-v2"
    post(client, "/stores/drop", name="docs")
    assert "docs" not in {s["name"] for s in client.get("/stores").json()["stores"]}
    assert_error(client.post("/stores/drop", json={"name": "docs"}), 404)


def test_a_query_naming_another_embedding_model_is_409(client: TestClient) -> None:
    post(client, "/stores/set", store="docs", keys=[[1.0, 0.0]], values=["a"], model="all-minilm-l6-v2")
    listed = {s["name"]: s for s in client.get("/stores").json()["stores"]}
    assert (listed["docs"]["embedding_model"], listed["docs"]["embedding_dimension"]) == ("all-minilm-l6-v2", 2)
    for path, body in [
        ("/stores/find", {"store": "docs", "key": [1.0, 0.0], "topk": 1, "model": "bge-small"}),
        ("/stores/set", {"store": "docs", "keys": [[0.0, 1.0]], "values": ["b"], "model": "bge-small"}),
    ]:
        error = assert_error(client.post(path, json=body), 409, code="model_mismatch", param="model")
        assert "all-minilm-l6-v2" in error["message"] and "bge-small" in error["message"]
    found = post(client, "/stores/find", store="docs", key=[1.0, 0.0], topk=5, model="all-minilm-l6-v2")
    assert found == {"keys": [[1.0, 0.0]], "values": ["a"], "similarities": [pytest.approx(1.0)]}
    # LocalAI's requests carry no model: never checked
    post(client, "/stores/set", store="docs", keys=[[0.0, 1.0]], values=["b"])
    assert post(client, "/stores/find", store="docs", key=[0.0, 1.0], topk=1)["values"] == ["b"]


def test_data_survives_a_restart(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as first:
        post(first, "/stores/set", store="keep", keys=[[0.6, 0.8], [1.0, 0.0]], values=["one", "two"])
    with TestClient(make_app()) as second:
        found = post(second, "/stores/find", store="keep", key=[0.6, 0.8], topk=2)
        assert found["values"] == ["one", "two"]
