"""The built-in tables: the training job's, the metric tables computed from a run's files, the summary
tables computed from another table, and the per-example scores, each declared once (`SCORES`). Each table's
columns, types and meanings are the contract of results/tables/ (docs/tables.md is generated from here); its
implementation, cost and memory models are named by path, so reading these declarations imports no torch."""

from __future__ import annotations

from .entries import Score, Table, columns, register_table

SENSITIVITY_SETTINGS = columns(
    ("window", "int64", "steps averaged before each checkpoint", "SGD steps"),
    ("stride", "int64", "every stride-th step of the window", "SGD steps"),
    ("norm", "string", "l1 (mean absolute value over input dimensions) | l2 | linf"),
    ("horizon", "Int64", "steps unrolled before the window; null = from initialisation", "SGD steps"),
)

# The per-example scores of the papers that followed Arpit et al. (docs/science.md §10), and the counts and
# settings beside them, in the `scores` table's column order. Each is computed with its siblings by one
# function of memorization.measures.scores; `direction` says which way it marks an example as hard.
_SCORES = "memorization.measures.scores:"
PRESENTED, DATA_MAP, EARLY, VOG = (
    f"{_SCORES}{f}" for f in ("presented", "data_map_of", "early", "variance_of_gradients")
)
SCORES = (
    Score("presentations", "int64", "mini-batch presentations of the example during training", PRESENTED),
    Score(
        "forgetting_events",
        "int64",
        "Toneva et al. 2019: changes from correct to wrong between consecutive presentations, as the training "
        "step classified it (train mode)",
        PRESENTED,
    ),
    Score("never_learned", "bool", "never classified as labelled on any presentation", PRESENTED),
    Score(
        "forgetting",
        "float64",
        "the forgetting score: forgetting_events, or presentations where never learned (the most forgotten, as "
        "Toneva et al.'s code ranks them)",
        PRESENTED,
        direction=1,
    ),
    Score(
        "first_learned_epoch",
        "Float64",
        "epoch of the first presentation classified as labelled; null if never",
        PRESENTED,
        direction=1,
    ),
    Score(
        "aum",
        "float64",
        "Pleiss et al. 2020: area under the margin, the label's logit minus the largest other logit (before the "
        "softmax) averaged over the presentations",
        PRESENTED,
        direction=-1,
    ),
    Score(
        "confidence",
        "float64",
        "Swayamdipta et al. 2020: mean over the end-of-epoch evaluations of the probability of the label",
        DATA_MAP,
        direction=-1,
    ),
    # Low, as the data map's hard-to-learn region (low confidence, low variability), where Swayamdipta et al.
    # find the mislabeled examples; high variability marks their ambiguous examples, learned in some epochs.
    Score("variability", "float64", "its standard deviation over those evaluations (ddof 0)", DATA_MAP, direction=-1),
    Score(
        "correctness",
        "float64",
        "fraction of those evaluations that classify the example as labelled",
        DATA_MAP,
        direction=-1,
    ),
    Score(
        "el2n",
        "float64",
        "Paul et al. 2021: ||softmax - onehot(label)||_2 at early_step (eval mode)",
        EARLY,
        direction=1,
    ),
    Score(
        "grand",
        "float64",
        "Paul et al. 2021: norm of its loss gradient over all parameters at early_step",
        EARLY,
        direction=1,
    ),
    Score("early_step", "int64", "the checkpoint of el2n and grand: the one nearest the setting early_epoch", EARLY),
    Score(
        "vog",
        "Float64",
        "Agarwal et al. 2022: variance of gradients, the per-pixel std over the checkpoints (after the "
        "initialisation) of d(label logit)/dx averaged over pixels, normalised within its label's class; null "
        "with fewer than 2 checkpoints",
        VOG,
        direction=1,
    ),
    Score("vog_unnormalized", "Float64", "vog before the normalisation within the class", VOG),
    Score("vog_checkpoints", "int64", "checkpoints vog is taken over", VOG),
)

for _table in (
    Table(
        "training",
        "train",
        columns(
            ("epoch", "float64", "step / steps per epoch; 0 is the initialisation", "epochs"),
            ("step", "int64", "SGD steps taken", "SGD steps"),
            ("train_loss", "float64", "eval-mode mean loss on the training set as trained (noise included)", "nats"),
            ("train_acc", "float64", "eval-mode accuracy on the training set against its training labels", "fraction"),
            ("val_loss", "float64", "mean loss on the clean validation split (NaN for identity labels)", "nats"),
            ("val_acc", "float64", "accuracy on the clean validation split (NaN for identity labels)", "fraction"),
            (
                "batch_loss",
                "float64",
                "what a training loop reports: the train-mode loss (regulariser active) "
                "averaged over the epoch's batches so far; NaN at initialisation",
            ),
            ("batch_acc", "float64", "train-mode accuracy averaged likewise over the epoch's batches", "fraction"),
        ),
        "run, seed, evaluation",
        "Loss and accuracy at every evaluation (every `log_every` epochs and the end).",
    ),
    Table(
        "convergence",
        "train",
        columns(
            ("epochs_to_fit", "Float64", "first evaluated epoch at 100% training accuracy; null if never", "epochs"),
            ("max_epochs", "float64", "the training budget in epochs (the cap of a run that stops at fit)", "epochs"),
        ),
        "run, seed",
        "Time to convergence (Fig. 6).",
    ),
    Table(
        "examples",
        "metric",
        columns(
            ("epoch", "float64", "as in training", "epochs"),
            ("step", "int64", "as in training", "SGD steps"),
            ("example", "int64", "index of the training example"),
            ("correct", "bool", "eval-mode prediction equals the training label"),
            (
                "is_noisy",
                "bool",
                "the example's input or label was replaced (a random label may equal the true "
                "one by chance: about 1/C of them do)",
            ),
        ),
        "run, seed, evaluation, training example",
        "Per-example correctness (Fig. 1).",
        compute="memorization.measures.metrics:examples_frame",
    ),
    Table(
        "filters",
        "metric",
        columns(
            ("step", "int64", "checkpoint step (the first and the last)", "SGD steps"),
            ("filter", "int64", "CNN filter, or MLP first-layer unit"),
            ("channel", "int64", "input channel"),
            ("row", "int64", "row of the 5x5 filter (MLP: of the input image)"),
            ("col", "int64", "column"),
            ("value", "float64", "the weight"),
        ),
        "run, seed, checkpoint, weight",
        "First-layer weights at the first and last checkpoint (Fig. 2).",
        compute="memorization.measures.metrics:filters_frame",
        checkpoints="ends",
    ),
    Table(
        "sensitivity",
        "metric",
        columns(
            ("step", "int64", "checkpoint step T", "SGD steps"),
            ("example", "int64", "index of the training example x"),
            ("sensitivity", "float64", "loss sensitivity: mean over the window of ||dL_t/dx|| through the SGD updates"),
            ("is_noisy", "bool", "as in examples"),
            *SENSITIVITY_SETTINGS,
        ),
        "run, seed, checkpoint, training example",
        "Loss sensitivity of every training example (Fig. 3).",
        compute="memorization.measures.metrics:sensitivity_frame",
        settings="sensitivity_settings",
        device=True,
        cost="memorization.measures.metrics:sensitivity_cost",
        memory="memorization.engine.memory:sensitivity_bytes",
        checkpoints="schedule",
    ),
    Table(
        "gini",
        "summary",
        columns(
            ("step", "int64", "checkpoint step T", "SGD steps"),
            ("gini", "float64", "Gini coefficient of the loss sensitivity over the run's training examples"),
            *SENSITIVITY_SETTINGS,
        ),
        "run, seed, checkpoint",
        "Concentration of loss sensitivity (Fig. 3).",
        compute="memorization.measures.gini:gini_frame",
        board="memorization.measures.gini:gini_board",
        source="sensitivity",
    ),
    Table(
        "class_sensitivity",
        "metric",
        columns(
            ("step", "int64", "checkpoint step T", "SGD steps"),
            ("class_i", "int64", "class of the loss term differentiated"),
            ("class_j", "int64", "class of the training inputs it is differentiated against"),
            (
                "value",
                "float64",
                "mean over the window and over inputs of class j of ||dL_t(y=i)/dx|| (NaN: "
                "no example of class i in the authors' variant's batch)",
            ),
            *SENSITIVITY_SETTINGS,
            ("variant", "string", "paper (the paper's formula) | authors (the authors' code)"),
        ),
        "run, seed, checkpoint, class pair",
        "Per-class loss sensitivity (Fig. 4).",
        compute="memorization.measures.metrics:class_sensitivity_frame",
        settings="class_sensitivity_settings",
        device=True,
        cost="memorization.measures.metrics:class_sensitivity_cost",
        memory="memorization.engine.memory:class_sensitivity_bytes",
        checkpoints="schedule",
    ),
    Table(
        "csr",
        "metric",
        columns(
            ("epoch", "float64", "checkpoint epoch", "epochs"),
            ("step", "int64", "checkpoint step", "SGD steps"),
            ("split", "string", "val | train"),
            ("csr", "float64", "critical sample ratio: n_critical / n_points", "fraction"),
            ("n_points", "int64", "points searched"),
            ("n_critical", "int64", "points whose prediction LASS flipped within the box"),
            ("mean_iterations", "float64", "mean LASS iteration of the flips (NaN if none)", "LASS iterations"),
            (
                "max_distance",
                "float64",
                "largest |x_hat - x| found, 0-255 scale (<= lass_r, checked)",
                "pixel value (0-255)",
            ),
            ("lass_r", "float64", "box radius, 0-255 scale", "pixel value (0-255)"),
            ("lass_alpha", "float64", "sign-step size, 0-255 scale", "pixel value (0-255)"),
            ("lass_beta", "float64", "noise std, 0-255 scale", "pixel value (0-255)"),
            ("lass_max_iter", "int64", "iteration cap"),
            ("lass_stop", "string", "example (Algorithm 1) | global (the authors' code)"),
        ),
        "run, seed, checkpoint, split",
        "Critical sample ratio by LASS (Figs 7-9).",
        compute="memorization.measures.metrics:csr_frame",
        board="memorization.measures.metrics:csr_board",
        settings="csr_settings",
        device=True,
        cost="memorization.measures.metrics:csr_cost",
        checkpoints="schedule",
    ),
    Table(
        "scores",
        "metric",
        columns(
            ("example", "int64", "index of the training example"),
            ("label", "int64", "its training label (after label noise): the label every score is taken against"),
            ("is_noisy", "bool", "as in examples"),
            *SCORES,
        ),
        "run, seed, training example",
        "Per-example memorization and difficulty scores of the literature since the paper (docs/science.md §10).",
        compute="memorization.measures.scores:scores_frame",
        board="memorization.measures.scores:scores_board",
        settings="scores_settings",
        device=True,
        cost="memorization.measures.scores:scores_cost",
        memory="memorization.engine.memory:scores_bytes",
        checkpoints="schedule",
    ),
    Table(
        "heldout",
        "metric",
        columns(
            ("example", "int64", "index of the training example"),
            ("label", "int64", "its training label"),
            ("is_noisy", "bool", "as in examples"),
            (
                "subset_fraction",
                "float64",
                "the fraction of the training set each seed of the run trained on",
                "fraction",
            ),
            ("in_subset", "bool", "the seed trained on the example (its subset mask)"),
            ("correct", "bool", "the seed's final model (eval mode) classifies the example as labelled"),
            ("p_label", "float64", "its softmax probability of the label", "probability"),
        ),
        "run, seed, training example",
        "Each model of a subset training on every training example: held-out memorization (Feldman & Zhang "
        "2020) and the C-score (Jiang et al. 2021) are estimated from it across seeds (docs/science.md §10).",
        compute="memorization.measures.scores:heldout_frame",
    ),
):
    register_table(_table)
