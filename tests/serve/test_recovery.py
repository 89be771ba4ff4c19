"""A killed model replica is replaced by Serve and requests succeed again."""

from __future__ import annotations

import time

import httpx

from aime.client import Client, ClientError

SERVE_LENSES = False  # this module's server has no lens pack


def test_concepts_without_a_lens_pack_is_a_404_naming_it(server):
    frames, actions, _ = server.inputs()
    try:
        Client(server.url).concepts(frames, actions)
    except ClientError as error:
        assert error.status == 404 and "no lens pack" in error.message
    else:
        raise AssertionError("/v1/concepts answered without a lens pack")


def test_killing_the_model_replica_recovers_within_a_minute(server):
    import ray
    from ray.util.state import list_actors

    frames, actions, future = server.inputs()
    client = Client(server.url, timeout=30)
    expected = client.imagine(frames, actions, future, seed=5)
    (replica,) = list_actors(
        filters=[("class_name", "=", "ServeReplica:aime:WorldModelServer"), ("state", "=", "ALIVE")]
    )
    ray.kill(ray.get_actor(replica.name, namespace="serve"), no_restart=True)
    deadline, answered = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        try:
            answered = client.imagine(frames, actions, future, seed=5)
            break
        except (ClientError, httpx.HTTPError):  # 500/503 while the replacement loads, or a dropped connection
            time.sleep(0.5)
    assert answered is not None, "no successful request within 60 s of killing the replica"
    assert (answered == expected).all()  # the replacement serves the same checkpoint, same seed
    alive = list_actors(
        filters=[("class_name", "=", "ServeReplica:aime:WorldModelServer"), ("state", "=", "ALIVE")]
    )
    assert [a.actor_id for a in alive] != [replica.actor_id]
