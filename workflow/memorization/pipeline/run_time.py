"""The time a finished run took, from its own files (Snakemake's log and the jobs' `benchmark:` files), and
how it compares with the cost plan's prediction (memorization.pipeline.plan)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..results.rundir import METRIC_BENCHMARK, TRAIN_BENCHMARK
from .plan import Job


def benchmark_seconds(path: Path) -> float:
    """The wall seconds of a job from its Snakemake `benchmark:` file (column `s` of its one row)."""
    return float(path.read_text().splitlines()[1].split("\t")[0])


def compare(job_list: list[Job], results: Path) -> str:
    """Predicted against measured (Snakemake's benchmark files of an actual run), per experiment and total."""
    measured: dict[tuple[str, str, str], float] = {}
    for job in job_list:
        if job.kind == "train":
            path = results.parent / TRAIN_BENCHMARK.format(run=job.run)
        elif job.kind.startswith("metric:"):
            found = sorted((results.parent).glob(METRIC_BENCHMARK.format(run=job.run, table=job.kind.split(":")[1],
                                                                          settings="*")))  # fmt: skip
            path = found[-1] if found else results.parent / "none"
        else:
            continue
        if path.exists():
            measured[(job.experiment, job.kind, job.run)] = benchmark_seconds(path)
    by_exp: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for job in job_list:
        key = (job.experiment, job.kind, job.run)
        if key in measured:
            by_exp[job.experiment][0] += job.seconds
            by_exp[job.experiment][1] += measured[key]
    lines = [f"{'experiment':<22} {'planned':>9} {'measured':>9} {'ratio':>6}"]
    for exp, (planned, got) in sorted(by_exp.items()):
        lines.append(f"{exp:<22} {planned:>8.0f}s {got:>8.0f}s {planned / got:>6.2f}")
    planned, got = sum(v[0] for v in by_exp.values()), sum(v[1] for v in by_exp.values())
    lines.append(f"{'total':<22} {planned:>8.0f}s {got:>8.0f}s {planned / got:>6.2f}")
    return "\n".join(lines) + "\n"


def where_time_went(workdir) -> str:
    """The time of an actual run, from its files: Snakemake's elapsed time (its newest log in
    .snakemake/log/) and the job times of the `benchmark:` files, summed per job kind."""
    workdir = Path(workdir)
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    elapsed = "?"
    for line in logs[-1].read_text().splitlines() if logs else []:
        if line.startswith("Elapsed time"):
            elapsed = line.split(": ", 1)[1].split(".")[0]
    kinds: dict[str, list[float]] = defaultdict(list)
    for kind, pattern in (("train", TRAIN_BENCHMARK), ("metric", METRIC_BENCHMARK)):
        for path in workdir.glob(pattern.format(run="*", table="*", settings="*")):
            kinds[kind if kind == "train" else f"metric:{path.name.split('.')[0]}"].append(benchmark_seconds(path))
    lines = [
        f"Snakemake's elapsed time: {elapsed}. Job time (from the `benchmark:` files), per job kind:",
        "",
        "| jobs | count | job-seconds |",
        "|---|---|---|",
    ]
    for kind, times in sorted(kinds.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {kind} | {len(times)} | {sum(times):.0f} |")
    lines.append(f"| all of them | {sum(len(t) for t in kinds.values())} | {sum(sum(t) for t in kinds.values()):.0f} |")
    return "\n".join(lines) + "\n"
