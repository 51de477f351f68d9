"""benchmarks/gpu.py, the device script, where there is no GPU: it says so and exits 0, and a finished run's JSON
becomes the GPU section of docs/performance.md and the README's GPU plan, every figure taken from the JSON."""

import copy
import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
import torch

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("gpu_script", ROOT / "benchmarks" / "gpu.py")
gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu)

RUN = {
    "device": "NVIDIA Test Card",
    "date": "2026-12-04",
    "torch": "2.11.0",
    "cuda": "13.0",
    "tests": {"returncode": 0, "summary": ["5 passed in 12.00s"]},
    "matmul_peak": {"n": 8192, "fp32_tflops": 51.5, "tf32_tflops": 377.2},
    "workflow": {
        "cpu": {"returncode": 0, "seconds": 20.1, "jobs_on_gpu": 0, "jobs_that_waited_for_a_lease": 0},
        "gpu": {"returncode": 0, "seconds": 30.2, "jobs_on_gpu": 9, "jobs_that_waited_for_a_lease": 3},
        "gpu_tf32": {"returncode": 0, "seconds": 29.8, "jobs_on_gpu": 9, "jobs_that_waited_for_a_lease": 2},
        "gpu_vs_cpu": {
            "tiny/training": {
                "rows": 18,
                "other_columns_differ": [],
                "max_abs_diff": 3.1e-7,
                "column": "train_loss",
                "column_max_abs": 2.3,
            },
            "tiny/csr": {
                "rows": 36,
                "other_columns_differ": [],
                "max_abs_diff": 0.0,
                "column": "csr",
                "column_max_abs": 0.4,
            },
        },
        "gpu_tf32_vs_cpu": {
            "tiny/training": {
                "rows": 18,
                "other_columns_differ": ["critical"],
                "max_abs_diff": 4.4e-4,
                "column": "train_loss",
                "column_max_abs": 2.3,
            },
            "tiny/csr": {"mismatch": "(36, 9) vs (35, 9)"},
        },
    },
    "mlp_step": {
        "width": 4096,
        "1_seeds": {"eager": {"ms": 0.61, "tflops": 5.1, "of_peak": 0.099}, "graph": {"ms": 0.2, "tflops": 15.5}},
        "30_seeds": {"eager": {"ms": 9.9, "tflops": 9.4, "of_peak": 0.183}, "graph_error": "RuntimeError: x"},
    },
    "plan": {"returncode": 0, "config": "configs/paper.yaml", "text": "Cost plan on NVIDIA_Test_Card\ntotal 12.5 h\n"},
    "replay": {
        "window": 500,
        "T=1000": 2.0,
        "T=2000": 4.1,
        "ms_per_replayed_step": 2.05,
        "extrapolated_T=100000_seconds": 205,
    },
    "fig1": {"returncode": 1, "width": 4096, "output": [], "stderr": "boom"},
}


def outside(text, begin="<!-- gpu: generated", end="<!-- end of gpu -->"):
    return text[: text.index(begin)] + text[text.index(end) :]


def test_without_cuda_it_says_so_and_exits_0():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = subprocess.run([sys.executable, ROOT / "benchmarks" / "gpu.py"], capture_output=True, text=True)
    assert proc.returncode == 0 and "no CUDA device here" in proc.stdout


def test_a_runs_json_becomes_the_docs_gpu_section_and_the_readmes_gpu_plan(tmp_path):
    docs, readme = tmp_path / "performance.md", tmp_path / "README.md"
    shutil.copy(ROOT / "docs" / "performance.md", docs)
    shutil.copy(ROOT / "README.md", readme)
    (tmp_path / "gpu.json").write_text(json.dumps(RUN))
    gpu.render(json.loads((tmp_path / "gpu.json").read_text()), docs, readme)
    text = docs.read_text()
    section = text[text.index("<!-- gpu: generated") : text.index("<!-- end of gpu -->")]
    assert "NVIDIA Test Card" in section and "51.5 TFLOP/s" in section and "377.2" in section
    assert "5 passed" in section
    assert "9 jobs leased the GPU" in section and "3 waited for the lease" in section
    assert (
        "| tiny/training | 18 | 3.1e-07 in train_loss (of 2.3) | 0.00044 in train_loss (of 2.3); critical differ |"
        in (section)
    )
    assert "| tiny/csr | 36 | equal | shape (36, 9) vs (35, 9) |" in section
    assert "| 1 | 0.61 | 5.1 (10%) | 0.2 | 15.5 |" in section  # no share of the peak where the run had none
    assert "| 30 | 9.9 | 9.4 (18%) | – | – |" in section
    assert (
        "window 500 at stride 2: T=1000 2.0 s, T=2000 4.1 s; 2.05 ms per replayed step, so T = 100,000 in about 205 s"
        in (section)
    )
    assert "could not be captured at 30 seeds (RuntimeError: x)" in section
    assert "calibrated on this card (the README has it whole): total 12.5 h." in section
    assert "failed in this run: fig1 (" in section  # a failed section is named, not drawn
    broken = copy.deepcopy(RUN)
    broken["workflow"]["gpu_tf32"]["returncode"] = 1  # a failed run inside a section names the section
    assert "failed in this run: workflow, fig1 (" in gpu.report(broken)
    original = (ROOT / "docs" / "performance.md").read_text()
    assert outside(text) == outside(original)  # nothing but the section changed
    plan = readme.read_text()
    assert "On one NVIDIA Test Card (2026-12-04" in plan and "total 12.5 h" in plan
    assert plan.index("<!-- end of plan -->") < plan.index("Cost plan on NVIDIA_Test_Card")
