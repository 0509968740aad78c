"""The spectral-transformation study runs end to end (a smoke run: one epoch of 3 steps, five settings)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.batch_size=32", "data.num_workers=0", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
        "data.eval_batch_size=32",
        "method.proj_hidden=[128]", "method.proj_out=64"]


def test_spectral_study_writes_the_table_and_plots(tmp_path):
    out = tmp_path / "study"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "spectral_study.py"), "--epochs", "1", "--powers", "0.5",
         "--iters", "4", "--trade-offs", "0.4", "--out", str(out), "--", *TINY],
        capture_output=True, text=True, cwd=REPO, timeout=900, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / "table.md").read_text()
    for row in ("| st p=0.5 | yes |", "| st p=0.5 | no |", "| intl iters=4 | yes |", "| intl iters=4 | no |",
                "| intl iters=4 | 0.4 |"):
        assert row in table
    assert (out / "accuracy_rank_vs_p.png").stat().st_size > 10_000
    assert (out / "intl_spread.png").stat().st_size > 10_000
