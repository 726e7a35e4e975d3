"""The agent's pieces: the environment contract, PPO's policy, its ONNX export and its server.

One short PPO run (one iteration on a small batch) is shared by the tests; the full pipeline
is ``dvc repro``. The server is the project's own, started as the serving image starts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from {{ cookiecutter.package }} import environment
from {{ cookiecutter.package }}.config import Paths, StageError
from {{ cookiecutter.package }}.environment import AgentParams, EnvironmentParams
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.frameworks import rllib
from {{ cookiecutter.package }}.gates import decide
from {{ cookiecutter.package }}.publish import parity, publish
from {{ cookiecutter.package }}.serve.bundle import EXAMPLE_FILE
from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.serve.settings import ServeSettings
from {{ cookiecutter.package }}.smoke import free_port, request, smoke_test, wait_ready
from {{ cookiecutter.package }}.stages.validate_agent import INAPPLICABLE
from {{ cookiecutter.package }}.verdict import Baseline

PROJECT = Path(__file__).resolve().parents[1]
CARTPOLE = EnvironmentParams(id="CartPole-v1")


@pytest.fixture(scope="session")
def params() -> AgentParams:
    return AgentParams.load(PROJECT / "params.yaml")


@pytest.fixture(scope="session")
def env() -> Any:
    return environment.make(CARTPOLE)


@pytest.fixture(scope="session")
def schema(env: Any) -> Any:
    return environment.schema(env, CARTPOLE)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, float]], Path]:
    """One PPO iteration on 400 steps, saved and loaded back.

    On a local Ray although RAY_ADDRESS names a cluster (as CI's may): agents train locally.
    """
    small = rllib.Params(iterations=1, train_batch_size=400, minibatch_size=100, epochs=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ADDRESS", "ray://ray-head.example:10001")
        module, curves = rllib.fit(CARTPOLE, small, seed=7)
    folder = tmp_path_factory.mktemp("native")
    rllib.save(module, folder)
    return rllib.load(folder), curves, folder


@pytest.fixture(scope="session")
def observations(env: Any, trained: tuple[Any, Any, Path]) -> np.ndarray:
    return environment.episodes(env, rllib.act(trained[0]), [0, 1])[1]


@pytest.fixture(scope="session")
def bundle(
    tmp_path_factory: pytest.TempPathFactory,
    trained: tuple[Any, Any, Path],
    schema: Any,
    observations: np.ndarray,
) -> Paths:
    """The policy exported as export does it, into a scratch project layout."""
    paths = Paths().at(tmp_path_factory.mktemp("project"))
    module = trained[0]
    onnx_bytes = rllib.to_onnx(module, schema)
    model = OnnxModel(onnx_bytes, {"schema": schema.model_dump(mode="json"), "framework": "rllib"})
    columns = {name: observations[:, i] for i, name in enumerate(schema.features)}
    result = parity(model, rllib.probabilities(module, observations), columns)
    rows = [dict(zip(schema.features, map(float, row), strict=True)) for row in observations[:3]]
    publish(paths, model, onnx_bytes, rows, result)
    return paths


def test_the_shipped_params_load_with_their_defaults(params: AgentParams) -> None:
    assert params.environment == CARTPOLE
    assert rllib.Params.model_validate(params.train).iterations == 10
    assert params.validate_.gates().fairness is None


@pytest.mark.parametrize(
    ("given", "named", "says"),
    [
        ({"id": "CartPoleX-v9"}, "environment.id: 'CartPoleX-v9'", "doesn't exist"),
        ({"config": {"no_such_option": 1}}, "environment.config:", "no_such_option"),
        ({"module": "no_such_module_here"}, "environment.module:", "no_such_module_here"),
    ],
)
def test_an_environment_that_cannot_be_made_names_the_param(
    given: dict[str, Any], named: str, says: str
) -> None:
    with pytest.raises(StageError) as raised:
        environment.make(EnvironmentParams(**given))
    message = str(raised.value)
    assert message.startswith(f"params.yaml: {named}")
    assert says in message
    assert "\n" not in message


def test_a_custom_environment_registers_itself_in_the_module_params_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_worlds.py").write_text(
        "import gymnasium\n"
        "gymnasium.register(id='LongPole-v0', max_episode_steps=50,\n"
        "                   entry_point='gymnasium.envs.classic_control.cartpole:CartPoleEnv')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    params = EnvironmentParams(id="LongPole-v0", module="my_worlds")
    env = environment.make(params)
    assert env.spec.max_episode_steps == 50
    assert environment.schema(env, params).features == ["obs_0", "obs_1", "obs_2", "obs_3"]


@pytest.mark.parametrize(
    ("environment_id", "says"),
    [
        ("FrozenLake-v1", "observes Discrete(16); this project serves flat Box observations"),
        (
            "Pendulum-v1",
            "acts in Box(-2.0, 2.0, (1,), float32); "
            "this project serves Discrete actions numbered from 0",
        ),
    ],
)
def test_an_environment_the_server_cannot_speak_is_refused(environment_id: str, says: str) -> None:
    params = EnvironmentParams(id=environment_id)
    with pytest.raises(StageError) as raised:
        environment.schema(environment.make(params), params)
    assert str(raised.value) == f"params.yaml: environment.id: {environment_id!r} {says}"


def test_the_request_schema_is_the_observation_space(schema: Any) -> None:
    columns = {name: (column.min, column.max) for name, column in schema.columns.items()}
    # CartPole: cart position and pole angle are bounded, the velocities are not.
    assert columns == {
        "obs_0": (pytest.approx(-4.8), pytest.approx(4.8)),
        "obs_1": (None, None),
        "obs_2": (pytest.approx(-0.41887903), pytest.approx(0.41887903)),
        "obs_3": (None, None),
    }
    assert (schema.target.name, schema.target.classes) == ("action", [0, 1])


def test_episodes_are_fixed_by_their_seeds(env: Any) -> None:
    def always_left(observations: np.ndarray) -> np.ndarray:
        return np.zeros(len(observations), dtype=int)

    first = environment.episodes(env, always_left, [3, 4])
    again = environment.episodes(env, always_left, [3, 4])
    returns, observations, actions = first
    assert returns == again[0]
    np.testing.assert_array_equal(observations, again[1])
    # CartPole pays 1 per step: the returns count the recorded observations.
    assert sum(returns) == len(observations) == len(actions)
    assert set(actions.tolist()) == {0}


def test_return_metrics() -> None:
    assert environment.return_metrics([10.0, 20.0, 30.0, 40.0]) == {
        "mean_return": 25.0,
        "std_return": 11.18034,
        "min_return": 10.0,
        "episodes": 4.0,
    }


def test_training_reports_its_curves_and_the_policy_survives_save_and_load(
    trained: tuple[Any, list[dict[str, float]], Path], observations: np.ndarray
) -> None:
    module, curves, folder = trained
    assert len(curves) == 1
    assert sorted(curves[0]) == sorted(rllib.CURVES)
    assert curves[0]["episode_return_mean"] > 0
    again = rllib.load(folder)
    np.testing.assert_array_equal(
        rllib.probabilities(module, observations), rllib.probabilities(again, observations)
    )


def test_the_onnx_policy_reproduces_the_native_one(bundle: Paths, observations: np.ndarray) -> None:
    result = read_json(bundle.parity)
    assert result["label_agreement"] == 1.0
    assert result["max_abs_diff"] <= 1e-5
    assert result["rows"] == len(observations)


def test_a_policy_that_played_worse_than_the_threshold_is_rejected(params: AgentParams) -> None:
    threshold = params.validate_.thresholds["mean_return"].min
    parity_ = {"max_abs_diff": 0.0, "label_agreement": 1.0, "rows": 10}
    for mean, passed in ((threshold - 1, False), (threshold, True)):
        verdict = decide(
            {"mean_return": mean},
            {},
            parity_,
            params.validate_.gates(),
            Baseline("none"),
            inapplicable=INAPPLICABLE,
        )
        assert verdict.passed is passed
        assert [gate.name for gate in verdict.failed] == ([] if passed else ["thresholds"])
        statuses = {gate.name: gate.status for gate in verdict.gates}
        assert {name: statuses[name] for name in INAPPLICABLE} == dict.fromkeys(
            INAPPLICABLE, "not_applicable"
        )


@pytest.fixture(scope="module")
def server(bundle: Paths) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SERVE_PORT": str(port), "SERVE_MODEL_DIR": str(bundle.bundle)}
    process = subprocess.Popen([sys.executable, "-m", "{{ cookiecutter.package }}.serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 30)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_the_server_answers_observations_with_the_policys_actions(
    server: str, bundle: Paths, trained: tuple[Any, Any, Path], observations: np.ndarray
) -> None:
    name = ServeSettings.model_fields["model_name"].default
    smoke_test(server, bundle.bundle / EXAMPLE_FILE, name, 30)
    rows = [{f"obs_{i}": float(value) for i, value in enumerate(row)} for row in observations]
    answer = request(f"{server}/predict", {"rows": rows})
    assert answer.status == 200
    served = [prediction["label"] for prediction in answer.body["predictions"]]
    assert served == rllib.act(trained[0])(observations).tolist()


@pytest.mark.parametrize(
    ("row", "field", "says"),
    [
        ({"obs_0": 0.0, "obs_1": 0.0, "obs_2": 0.0}, "obs_3", "Field required"),
        ({"obs_0": 0.0, "obs_1": 0.0, "obs_2": 0.0, "obs_3": 0.0, "obs_4": 0.0}, "obs_4", "Extra"),
        ({"obs_0": 9.0, "obs_1": 0.0, "obs_2": 0.0, "obs_3": 0.0}, "obs_0", "less than or equal"),
    ],
)
def test_an_observation_of_the_wrong_shape_gets_422_naming_the_component(
    server: str, row: dict[str, float], field: str, says: str
) -> None:
    answer = request(f"{server}/predict", {"rows": [row]})
    assert answer.status == 422
    [problem] = answer.body["detail"]
    assert problem["loc"] == ["rows", 0, field]
    assert says in problem["msg"]
