"""Pretraining runs as main_pretrain.py leaves them, for the report tests, and the report's table read back."""

import json

import yaml

from zoo.report import COLUMNS


def make_run(folder, method, dataset, epochs, views, batch, done=None, online=None, config=None, root=None):
    """A pretraining run as main_pretrain.py leaves it: config.yaml, summary.json, a checkpoint path."""
    folder.mkdir(parents=True)
    cfg = {"method": {"name": method}, "data": {"name": dataset, "root": root, "views": [{"count": views}]},
           "trainer": {"max_epochs": epochs}, "optimizer": {"scale_lr": True}, "eval": {"knn_k": 20}}
    for key, value in (config or {}).items():
        *parents, leaf = key.split(".")
        node = cfg
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {"method": method, "dataset": dataset, "epochs": epochs if done is None else done, "global_batch_size": batch,
               "effective_rank": 123.4, "checkpoint": str(folder / "checkpoints/last.ckpt"), **(online or {})}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def rows(table):
    """The table as dicts keyed by column name (one per row)."""
    lines = table.splitlines()
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    return [dict(zip(COLUMNS, line.strip("| ").split(" | "))) for line in lines[2:]]
