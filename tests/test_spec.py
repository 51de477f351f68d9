import pytest

from memorization import configuration as S

from .conftest import TINY


def experiments(**exp):
    return {"experiments": {"e": exp}}


@pytest.mark.parametrize(
    "config, path, allowed",
    [
        (experiments(spec={"lr": -0.1}), "experiments.e.spec.lr", "number > 0"),
        (experiments(spec={"input_noise_fraction": 1.5}), "experiments.e.spec.input_noise_fraction", "<= 1"),
        (experiments(spec={"dataset": "imagenet"}), "experiments.e.spec.dataset", '"digits", "mnist"'),
        (experiments(spec={"arch": "resnet"}), "experiments.e.spec.arch", '"mlp", "cnn"'),
        (experiments(spec={"width": "wide"}), "experiments.e.spec.width", "integer or null"),
        (experiments(spec={"lr_rate": 0.1}), "experiments.e.spec", "allowed keys: adversarial_alpha, adversarial_beta"),
        (
            experiments(grid={"w": [{"width": 8}, {"label_noise": "flipped"}]}),
            "experiments.e.grid.w[1].label_noise",
            '"none", "random", "identity"',
        ),
        (experiments(grid={"width": [8, 0]}), "experiments.e.grid.width[1].width", ">= 1"),
        ({"experiments": {"e": {}}, "devise": "cpu"}, "<top level>", "allowed keys: analyses, base, data_root"),
        (experiments(seeds=0), "experiments.e.seeds", None),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(config, path, allowed):
    with pytest.raises(S.ConfigError) as err:
        S.validate(config)
    message = str(err.value)
    assert f"config key {path}" in message
    if allowed:
        assert allowed in message


def test_cross_key_mistakes_are_caught():
    with pytest.raises(S.ConfigError, match="label_noise_fraction must be 1"):
        S.validate(experiments(spec={"label_noise": "identity", "label_noise_fraction": 0.5}))
    with pytest.raises(S.ConfigError, match="use input_noise: none"):
        S.validate(experiments(spec={"input_noise": "gaussian", "input_noise_fraction": 0}))


def test_defaults_fill_and_grid_is_a_cartesian_product():
    config = S.validate(
        experiments(spec={"width": 8}, grid={"lr": [0.1, 0.2], "noise": [{}, {"label_noise": "random"}]}, seeds=3)
    )
    assert config["device"] == "auto" and config["download"] is False
    runs = S.expand(config)["e"]
    assert len(runs) == 4
    assert {(r["lr"], r["label_noise"]) for r in runs} == {
        (0.1, "none"),
        (0.2, "none"),
        (0.1, "random"),
        (0.2, "random"),
    }
    assert all(r["seeds"] == [0, 1, 2] and r["width"] == 8 and r["momentum"] == 0.0 for r in runs)
    assert [r["label_noise_fraction"] for r in runs] == [0.0, 1.0, 0.0, 1.0]  # randY means 100 % by default


def test_run_ids_ignore_defaults_and_int_float_spelling_but_not_values():
    base = S.resolve({"width": 8})
    assert S.run_id(base) == S.run_id(S.resolve({"width": 8, "momentum": 0}))  # stating a default
    assert S.run_id(S.resolve({"width": 8, "label_noise": "random", "label_noise_fraction": 1})) == S.run_id(
        S.resolve({"width": 8, "label_noise": "random", "label_noise_fraction": 1.0})
    )
    assert S.run_id(base) != S.run_id(S.resolve({"width": 8, "lr": 0.02}))
    # An option the schema gains later, at its default, leaves the id unchanged.
    assert S.run_id({**base, "future_option": None}) == S.run_id(base)
    # Data set ids depend on the data keys only.
    assert S.dataset_id(base) == S.dataset_id(S.resolve({"width": 64, "lr": 0.3}))
    assert S.dataset_id(base) != S.dataset_id(S.resolve({"width": 8, "noise_seed": 1}))


def test_duplicate_grid_points_train_once():
    config = S.validate(experiments(spec={"width": 8}, grid={"noise": [{}, {"input_noise": "none"}]}))
    assert len(S.expand(config)["e"]) == 1


def test_tiny_test_config_is_valid():
    assert set(S.expand(S.validate(TINY))) == {"difficulty", "widths"}


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ({"unit": "epoch", "every": 2}, [0, 20, 40, 50]),
        ({"unit": "step", "at": [3, 7, 999]}, [3, 7, 50]),
        ({"unit": "step", "log_count": 4}, [1, 4, 14, 50]),
    ],
)
def test_schedules_always_end_at_the_last_step(schedule, expected):
    from memorization.sgd import schedule_steps

    assert schedule_steps(schedule, steps_per_epoch=10, total_steps=50) == expected


def test_a_noise_draw_per_seed_makes_one_run_per_seed_with_one_configuration():
    base = {"spec": {"width": 8, "label_noise": "random", "label_noise_fraction": 0.4}, "seeds": 3}
    shared = S.expand(S.validate({"experiments": {"e": base}}))["e"]
    per_seed = S.expand(S.validate({"experiments": {"e": {**base, "noise_draws": "per_seed"}}}))["e"]
    assert len(shared) == 1 and shared[0]["seeds"] == [0, 1, 2]
    assert [(r["seeds"], r["noise_seed"]) for r in per_seed] == [([0], 0), ([1], 1), ([2], 2)]
    assert len({S.run_id(r) for r in per_seed}) == 3 and len({S.dataset_id(r) for r in per_seed}) == 3
    assert {S.config_id(r) for r in per_seed} == {S.config_id(shared[0])}  # one configuration
    clean = S.expand(S.validate({"experiments": {"e": {"spec": {"width": 8}, "seeds": 2, "noise_draws": "per_seed"}}}))
    assert S.config_id(clean["e"][0]) == S.config_id(clean["e"][1]) != S.config_id(shared[0])


def test_seeds_split_across_jobs_keep_their_shared_noise_draw():
    base = {"spec": {"width": 8, "label_noise": "random", "label_noise_fraction": 0.4}, "seeds": 5}
    whole = S.expand(S.validate({"experiments": {"e": base}}))["e"]
    split = S.expand(S.validate({"experiments": {"e": {**base, "seeds_per_job": 2}}}))["e"]
    assert [r["seeds"] for r in split] == [[0, 1], [2, 3], [4]]
    assert {S.dataset_id(r) for r in split} == {S.dataset_id(whole[0])}  # one noise draw
    assert {S.config_id(r) for r in split} == {S.config_id(whole[0])} and len({S.run_id(r) for r in split}) == 3
    assert S.run_id(S.expand(S.validate({"experiments": {"e": {**base, "seeds_per_job": 5}}}))["e"][0]) == S.run_id(
        whole[0]
    )  # a job that holds them all is the run it always was
    with pytest.raises(S.ConfigError, match="seeds_per_job"):
        S.validate({"experiments": {"e": {**base, "seeds_per_job": 0}}})
