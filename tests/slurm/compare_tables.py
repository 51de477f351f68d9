"""Whether two results/ folders hold the same tables (row for row, column for column): the SLURM run's and
the local run's of tests/slurm/tiny.yaml. Exits non-zero, naming the first difference."""

import sys
from pathlib import Path

import pandas as pd


def main(a: str, b: str) -> None:
    ours = sorted(p.relative_to(a) for p in Path(a).glob("results/*/tables/*/*.parquet"))
    theirs = sorted(p.relative_to(b) for p in Path(b).glob("results/*/tables/*/*.parquet"))
    if ours != theirs or not ours:
        sys.exit(f"different table files: {ours} vs {theirs}")
    for rel in ours:
        pd.testing.assert_frame_equal(pd.read_parquet(Path(a) / rel), pd.read_parquet(Path(b) / rel), obj=str(rel))
    print(f"{len(ours)} tables equal: {', '.join(map(str, ours))}")


if __name__ == "__main__":
    main(*sys.argv[1:])
