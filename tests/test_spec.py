"""The config's front door and its runs: messages that name the key, defaults, grids, the typed run spec and
the ids that must never move."""

import dataclasses

import pytest

from memorization import config as S
from memorization.config.spec import identity, schema_file, short_hash

from .conftest import ROOT, TINY


def validate(config: dict) -> S.Config:
    return S.load_config(config, repository=ROOT)


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
        (experiments(spec={"lr_rate": 0.1}), "experiments.e.spec.lr_rate", "did you mean 'lr'?"),
        (
            experiments(grid={"w": [{"width": 8}, {"label_noise": "flipped"}]}),
            "experiments.e.grid.w[1].label_noise",
            '"none", "random", "identity"',
        ),
        (experiments(grid={"width": [8, 0]}), "experiments.e.grid.width[1].width", ">= 1"),
        ({"experiments": {"e": {}}, "devise": "cpu"}, "devise", "did you mean 'device'? (allowed keys: analyses, base"),
        (experiments(seeds=0), "experiments.e.seeds", None),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(config, path, allowed):
    with pytest.raises(S.ConfigError) as err:
        validate(config)
    message = str(err.value)
    assert f"config key {path}" in message
    if allowed:
        assert allowed in message


def test_cross_key_mistakes_are_caught():
    with pytest.raises(S.ConfigError, match="label_noise_fraction must be 1"):
        validate(experiments(spec={"label_noise": "identity", "label_noise_fraction": 0.5}))
    with pytest.raises(S.ConfigError, match="use input_noise: none"):
        validate(experiments(spec={"input_noise": "gaussian", "input_noise_fraction": 0}))


def test_defaults_fill_and_grid_is_a_cartesian_product():
    config = validate(
        experiments(spec={"width": 8}, grid={"lr": [0.1, 0.2], "noise": [{}, {"label_noise": "random"}]}, seeds=3)
    )
    assert config.values["device"] == "auto" and config.values["download"] is False
    runs = config.experiments["e"]
    assert len(runs) == 4
    assert {(r.lr, r.label_noise) for r in runs} == {
        (0.1, "none"),
        (0.2, "none"),
        (0.1, "random"),
        (0.2, "random"),
    }
    assert all(r.seeds == (0, 1, 2) and r.width == 8 and r.momentum == 0.0 for r in runs)
    assert [r.label_noise_fraction for r in runs] == [0.0, 1.0, 0.0, 1.0]  # randY means 100 % by default


def test_run_ids_ignore_defaults_and_int_float_spelling_but_not_values():
    base = S.resolve({"width": 8})
    assert base.run_id == S.resolve({"width": 8, "momentum": 0}).run_id  # stating a default
    assert (
        S.resolve({"width": 8, "label_noise": "random", "label_noise_fraction": 1}).run_id
        == S.resolve({"width": 8, "label_noise": "random", "label_noise_fraction": 1.0}).run_id
    )
    assert base.run_id != S.resolve({"width": 8, "lr": 0.02}).run_id
    # An option the schema gains later, at its default, leaves the id unchanged.
    assert short_hash(identity({**base.as_dict(), "future_option": None})) == base.run_id
    # Data set ids depend on the data keys only.
    assert base.data.dataset_id == S.resolve({"width": 64, "lr": 0.3}).data.dataset_id
    assert base.data.dataset_id != S.resolve({"width": 8, "noise_seed": 1}).data.dataset_id


# Ids computed by the code before the typed spec (fda2584): results trained then keep their folders.
GOLDEN_IDS = [
    ({"width": 8}, "88b0b0a83112", "f28e78fe8d52", "digits-a4e56992cca2"),
    ({"dataset": "digits", "arch": "cnn", "train_size": 200, "epochs": 3}, "0b05f8de469c", "d109968506be",
     "digits-30e1ecd3b268"),
    ({"dataset": "mnist5k", "width": 512, "label_noise": "random", "label_noise_fraction": 0.4,
      "regularizer": "dropout_adversarial", "reg_strength": 0.5},
     "902db64ed2bd", "6998832782ea", "mnist5k-7b5ddefcdfae"),
    ({"dataset": "cifar10", "arch": "cnn", "lr_decay_every": 15, "checkpoints": {"unit": "step", "log_count": 5}},
     "d6be79568533", "3f0cb1fad19c", "cifar10-4f5d72f6d49c"),
    ({"dataset": "mnist14", "label_noise": "identity", "steps": 5000, "loss": "smoothed_log", "subset_fraction": 0.5},
     "8a8d5c598e6a", "70692fc76bc5", "mnist14-0c58beffccd4"),
]  # fmt: skip


@pytest.mark.parametrize("keys, run, config, dataset", GOLDEN_IDS)
def test_ids_do_not_move(keys, run, config, dataset):
    spec = S.resolve(keys, seeds=[0, 1, 2])
    assert (spec.run_id, spec.config_id, spec.data.dataset_id, spec.dataset_id) == (run, config, dataset, dataset)


def test_the_typed_spec_has_every_key_of_the_schema_and_its_values_round_trip():
    keys = set(schema_file()["$defs"]["partial_spec"]["properties"])
    assert {f.name for f in dataclasses.fields(S.RunSpec)} == keys | {"seeds"}
    for spec in validate(TINY).runs.values():
        values = spec.as_dict()
        assert S.RunSpec.from_dict(values) == spec and S.RunSpec.from_dict(values).run_id == spec.run_id
        assert list(values) == sorted(values) and isinstance(values["seeds"], list)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.lr = 1.0


def test_duplicate_grid_points_train_once():
    config = validate(experiments(spec={"width": 8}, grid={"noise": [{}, {"input_noise": "none"}]}))
    assert len(config.experiments["e"]) == 1


def test_tiny_test_config_is_valid():
    assert set(validate(TINY).experiments) == {"difficulty", "widths"}


@pytest.mark.parametrize(
    "times, expected",
    [
        ({"unit": "epoch", "every": 2}, [0, 20, 40, 50]),
        ({"unit": "step", "at": [3, 7, 999]}, [3, 7, 50]),
        ({"unit": "step", "log_count": 4}, [1, 4, 14, 50]),
    ],
)
def test_checkpoint_times_always_end_at_the_last_step(times, expected):
    from memorization.engine.timeline import steps_at

    assert steps_at(times, steps_per_epoch=10, total_steps=50) == expected


def test_a_noise_draw_per_seed_makes_one_run_per_seed_with_one_configuration():
    base = {"spec": {"width": 8, "label_noise": "random", "label_noise_fraction": 0.4}, "seeds": 3}
    shared = validate({"experiments": {"e": base}}).experiments["e"]
    per_seed = validate({"experiments": {"e": {**base, "noise_draws": "per_seed"}}}).experiments["e"]
    assert len(shared) == 1 and shared[0].seeds == (0, 1, 2)
    assert [(r.seeds, r.noise_seed) for r in per_seed] == [((0,), 0), ((1,), 1), ((2,), 2)]
    assert len({r.run_id for r in per_seed}) == 3 and len({r.data.dataset_id for r in per_seed}) == 3
    assert {r.config_id for r in per_seed} == {shared[0].config_id}  # one configuration
    clean = validate({"experiments": {"e": {"spec": {"width": 8}, "seeds": 2, "noise_draws": "per_seed"}}})
    assert clean.experiments["e"][0].config_id == clean.experiments["e"][1].config_id != shared[0].config_id


def test_seeds_split_across_jobs_keep_their_shared_noise_draw():
    base = {"spec": {"width": 8, "label_noise": "random", "label_noise_fraction": 0.4}, "seeds": 5}
    whole = validate({"experiments": {"e": base}}).experiments["e"]
    split = validate({"experiments": {"e": {**base, "seeds_per_job": 2}}}).experiments["e"]
    assert [r.seeds for r in split] == [(0, 1), (2, 3), (4,)]
    assert {r.data.dataset_id for r in split} == {whole[0].data.dataset_id}  # one noise draw
    assert {r.config_id for r in split} == {whole[0].config_id} and len({r.run_id for r in split}) == 3
    all_in_one = validate({"experiments": {"e": {**base, "seeds_per_job": 5}}}).experiments["e"][0]
    assert all_in_one.run_id == whole[0].run_id  # a job that holds them all is the run it always was
    with pytest.raises(S.ConfigError, match="seeds_per_job"):
        validate({"experiments": {"e": {**base, "seeds_per_job": 0}}})


def test_every_error_is_reported_at_once_with_the_nearest_name():
    """A misspelt data set, an impossible value, a misspelt key and a key in the wrong place: four lines,
    each naming its key; resolution errors of several grid points are reported together too."""
    with pytest.raises(S.ConfigError) as err:
        validate({"experiments": {"e": {"spec": {"dataset": "mnis", "epochs": 0, "widht": 8}}}, "lr": 0.1})
    lines = str(err.value).splitlines()
    assert lines[0] == "4 errors:"
    assert any("experiments.e.spec.dataset: 'mnis' is not allowed; did you mean 'mnist'?" in line for line in lines)
    assert any("experiments.e.spec.epochs: 0 is less than the minimum of 1" in line for line in lines)
    assert any("experiments.e.spec.widht: not a key here; did you mean 'width'?" in line for line in lines)
    assert any("config key lr: not a key here (a run-spec key: under defaults: or an experiment's spec:)" in line
               for line in lines)  # fmt: skip
    with pytest.raises(S.ConfigError) as err:
        validate(experiments(spec={"width": 8}, grid={"r": [{"regularizer": "dropout"}, {"reg_strength": 0.5}]}))
    assert str(err.value).startswith("2 errors:") and "reg_strength 0.5 without a regularizer" in str(err.value)


def test_a_config_is_named_by_its_file_or_its_name_key_never_by_its_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("name: shared\nexperiments:\n  e: {spec: {width: 8}}\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\n")
    assert S.load_config(files=[base], workdir=tmp_path).name == "shared"
    assert S.load_config(files=[child], workdir=tmp_path).name == "child"
    assert S.load_config(files=[child], overrides={"name": "mine"}, workdir=tmp_path).name == "mine"
    with pytest.raises(S.ConfigError, match="config key name: 'runs' is not a folder name"):
        S.load_config(files=[child], overrides={"name": "runs"}, workdir=tmp_path)
