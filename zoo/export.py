"""Export a pretraining checkpoint's backbone for another library.

    python -m zoo.export --ckpt RUN/checkpoints/last.ckpt --to timm|torchvision|detectron2|hf [--out DIR] [--push REPO]

writes into DIR (default RUN/export):
- `<arch>-<target>.safetensors` (timm, torchvision): the backbone's plain state dict, float32,
  which loads with strict=True into `timm.create_model(<arch>, num_classes=0)` or into
  torchvision's model of that name with its classifier set to `Identity()`;
  `<arch>-detectron2.pkl`: the pickle detectron2's DetectionCheckpointer reads (MoCo's names);
- `<file>.sha256` in `sha256sum -c` format;
- `<arch>-<target>.json`: the file, its sha256, how to load it (a small-image stem names the
  modules to set before loading), the input normalisation and how the backbone was trained.

Every exported key must map to one key of the target's model with the same shape (checked on
the meta device), so a backbone the target cannot build is refused in one line, never written.
A backbone ending in a whitening layer (backbone.whitening_layer) exports it in eval mode, folded into an
`nn.Linear(D, D)` in the classifier's place that the load lines set (timm, torchvision); detectron2's
export leaves it out (detection reads the stages' maps), `--to hf` refuses it.
downstream/detection/convert.py uses the same checks and detectron2 renaming.

`--to hf` writes timm's Hugging Face Hub layout into DIR (default RUN/export/<arch>-hf): config.json
(the architecture, its arguments and the pretrained_cfg: input size, crop, interpolation, mean / std,
num_features), model.safetensors and a README.md model card (method, recipe, data, epochs, the run's
evaluations beside the paper's numbers, provenance). `timm.create_model("local-dir:DIR", pretrained=True)`
loads it (strictly), and once uploaded (`--push REPO`, through huggingface_hub) `"hf-hub:REPO"`.
"""

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path

import torch

from zoo.atomic import atomic_write_bytes, write_json
from zoo.backbones import classifier_name, set_classifier, whitening_layer
from zoo.checkpoint import complete_config, read_checkpoint
from zoo.data import data_spec
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.common import load_backbone, run_folder
from zoo.report import COLUMNS, find_runs, load_targets, report_rows

TARGETS = ("timm", "torchvision", "detectron2", "hf")
# detectron2's build_resnet_backbone builds these depths with torchvision's block layout.
DETECTRON2_RESNETS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101, "resnet152": 152}
# The keys of a timm pretrained_cfg that describe the architecture rather than a set of weights.
ARCHITECTURE_CFG = ("architecture", "input_size", "first_conv", "classifier", "fixed_input_size", "pool_size", "min_input_size")
STEM_MODULES = ("conv1", "maxpool")  # where the zoo's small-image stem differs from a ResNet's
CLASSIFIER_HEADS = ("fc", "classifier", "head", "heads")  # torchvision's names; the zoo backbone has none


def architecture(name):
    """timm names may carry a pretrained tag ("resnet50.a1_in1k"); the architecture is the part before it."""
    return name.split(".")[0]


# ---- the target's model, built on the meta device (no memory) ---------------------------------
def torchvision_model(arch, fix=""):
    """torchvision's `arch` (no weights, on the meta device) with its classifier head set to Identity,
    and the head's name; ZooError when torchvision has no such model."""
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ZooError(f"torchvision has no classification model '{arch}'{fix}")
    with torch.device("meta"):
        model = torchvision.models.get_model(arch, weights=None)
    head = next((name for name in CLASSIFIER_HEADS if hasattr(model, name)), None)
    if head is not None:
        setattr(model, head, torch.nn.Identity())
    return model, head


def timm_model(arch, **model_args):
    import timm

    with torch.device("meta"):
        return timm.create_model(arch, pretrained=False, **{**model_args, "num_classes": 0})


def shapes(model):
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _preview(keys, limit=3):
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "") if keys else "none"


def check_state_dict(state_dict, expected, source, reference, fix=""):
    """ZooError unless `state_dict` has exactly the keys of `expected` (key -> shape), each of that shape.
    `reference` names the model in the message, `fix` is appended to it."""
    missing = sorted(expected.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected.keys())
    if missing or unexpected:
        raise ZooError(
            f"{source}: backbone keys do not match {reference}: missing {_preview(missing)}; "
            f"unexpected {_preview(unexpected)}{fix}"
        )
    for key, shape in expected.items():
        if tuple(state_dict[key].shape) != shape:
            raise ZooError(
                f"{source}: backbone {key} has shape {tuple(state_dict[key].shape)}, {reference} has {shape} "
                f"(a small-image stem or another architecture?){fix}"
            )


# ---- detectron2's names (MoCo's detection/convert-pretrain-to-detectron2.py) -------------------
def detectron2_key(torchvision_key):
    """'bn1.weight' -> 'stem.conv1.norm.weight', 'layer1.0.downsample.1.bias' -> 'res2.0.shortcut.norm.bias'."""
    key = torchvision_key if torchvision_key.startswith("layer") else "stem." + torchvision_key
    for stage in (1, 2, 3, 4):
        key = key.replace(f"layer{stage}.", f"res{stage + 1}.")
    for conv in (1, 2, 3):
        key = key.replace(f"bn{conv}.", f"conv{conv}.norm.")
    return key.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


def to_detectron2(state_dict):
    """The pickled object detectron2's DetectionCheckpointer reads: numpy arrays under detectron2's
    names; matching_heuristics lets it find `res5.*` under `roi_heads.res5` of a C4 model by suffix."""
    model = {detectron2_key(key): value.numpy() for key, value in state_dict.items()}
    return {"model": model, "__author__": "zoo", "matching_heuristics": True}


# ---- the export -------------------------------------------------------------------------------
def stem_changes(backbone, reference):
    """`model.<name> = torch.nn.<module>` lines that give `reference` the backbone's stem (empty for a
    standard stem); the module reprs are valid constructor calls."""
    return [
        f"model.{name} = torch.nn.{getattr(backbone, name)!r}"
        for name in STEM_MODULES
        if hasattr(backbone, name) and hasattr(reference, name) and repr(getattr(backbone, name)) != repr(getattr(reference, name))
    ]


def with_stem_of(reference, backbone, changes):
    """`reference` with the stem modules named in `changes` taken from `backbone` (for the shape check)."""
    for name in STEM_MODULES:
        if any(line.startswith(f"model.{name} =") for line in changes):
            setattr(reference, name, getattr(backbone, name))
    return reference


def float32(state_dict):
    return {key: (value.float() if value.is_floating_point() else value).contiguous() for key, value in state_dict.items()}


def reference_model(target, arch, source):
    """The model `target` builds for `arch` (on the meta device, classifier head set to Identity) and
    the head's name; ZooError, before any weights are read, when the target cannot build it."""
    if target == "timm":
        return timm_model(arch), None
    if target == "detectron2" and arch not in DETECTRON2_RESNETS:
        raise ZooError(f"{source}: backbone is {arch!r}; detectron2 builds only {', '.join(DETECTRON2_RESNETS)}: "
                       "export it with --to timm")
    return torchvision_model(arch, fix=f" (the backbone of {source}): export it with --to timm")


def load_lines(target, arch, head, changes, whitening=None):
    """The Python lines that build the model the export loads into (before its load_state_dict); `whitening`: the
    line that puts the whitening layer's Linear in the classifier's place (`fold_whitening_layer`)."""
    if target == "timm":
        return ["import timm, torch", f"model = timm.create_model({arch!r}, num_classes=0)", *changes,
                *([whitening] if whitening else [])]
    head_line = [f"model.{head} = torch.nn.Identity()  # the backbone has no classifier"] if head else []
    if whitening:
        head_line = [whitening]
    return ["import torch, torchvision", f"model = torchvision.models.{arch}(weights=None)", *head_line, *changes]


def fold_whitening_layer(backbone, target, reference, head):
    """A backbone with a whitening layer (backbone.whitening_layer) exported: for timm and torchvision the layer in
    eval mode, a fixed affine map of its running statistics, becomes an `nn.Linear(D, D)` in the classifier's place
    (in `backbone` and on the meta `reference`), so the exported model's features are the ones the zoo's evaluations
    read, and it loads strictly without the zoo; detectron2 reads the stages' feature maps, never the pooled features
    the layer whitens, so the layer is left out there. Returns (the load line of the Linear or None, a note or None)."""
    layer = whitening_layer(backbone)
    if layer is None:
        return None, None
    if target == "detectron2":
        set_classifier(backbone, torch.nn.Identity())
        return None, "left out: detectron2 reads the stages' feature maps; the layer whitens the pooled features only"
    slot = classifier_name(backbone) if target == "timm" else head
    set_classifier(backbone, layer.as_linear())
    with torch.device("meta"):
        linear = torch.nn.Linear(layer.dim, layer.dim)
    if target == "timm":
        set_classifier(reference, linear)
    else:
        setattr(reference, slot, linear)
    line = (f"model.{slot} = torch.nn.Linear({layer.dim}, {layer.dim})  # the whitening layer ({layer.kind}) in eval mode: "
            "(x - running_mean) @ running_matrix")
    return line, f"{layer.kind}, folded into {slot} = Linear({layer.dim}, {layer.dim}) (its running statistics)"


def check_target(target, arch, reference, backbone, source):
    """ZooError unless the backbone's keys and shapes are the reference model's once its stem is the
    backbone's; return the stem changes (`model.<name> = ...` lines)."""
    changes = stem_changes(backbone, reference)
    library = "timm" if target == "timm" else "torchvision"
    if target == "detectron2" and changes:
        raise ZooError(
            f"{source}: {arch} has the small-image stem ({'; '.join(changes)}); detectron2's ResNet stem is the 7x7 "
            "stride-2 conv with max-pool and cannot take it: export it with --to timm or --to torchvision"
        )
    fix = "" if target == "timm" else ": export it with --to timm"
    check_state_dict(backbone.state_dict(), shapes(with_stem_of(reference, backbone, changes)), source,
                     f"{library}'s {arch}", fix)
    return changes


def detectron2_options(arch, mean, std):
    """The detectron2 config options these weights need (torchvision layout, RGB, the training normalisation)."""
    options = [f"MODEL.RESNETS.DEPTH {DETECTRON2_RESNETS[arch]}", "MODEL.RESNETS.STRIDE_IN_1X1 False", "INPUT.FORMAT RGB",
               f"MODEL.PIXEL_MEAN {[round(255 * m, 3) for m in mean]}", f"MODEL.PIXEL_STD {[round(255 * s, 3) for s in std]}"]
    if DETECTRON2_RESNETS[arch] < 50:
        options.append("MODEL.RESNETS.RES2_OUT_CHANNELS 64")  # detectron2's basic-block ResNets need it
    return options


def training_record(checkpoint, ckpt_path):
    """How the backbone was trained (from the run config), and the run's own evaluation when its
    summary.json describes this checkpoint."""
    config = checkpoint["config"]
    data, optimizer = config.get("data", {}), config.get("optimizer", {})
    record = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "method": config["method"],
        "dataset": data.get("name"),
        "views": data.get("views"),
        "global_batch_size": data.get("global_batch_size") or data.get("batch_size", 0) * checkpoint["world_size"],
        "optimizer": {key: optimizer.get(key) for key in ("name", "lr", "lr_scaled", "weight_decay")},
        "max_epochs": config.get("trainer", {}).get("max_epochs"),
        "recipe": (config.get("recipe") or {}).get("name"),
        "seed": config.get("seed"),
    }
    summary_path = run_folder(ckpt_path) / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("checkpoint") and Path(summary["checkpoint"]).resolve() == Path(ckpt_path).resolve():
            record["evaluation"] = {key: summary.get(key) for key in ("epochs", "steps", "knn_top1", "linear_top1", "effective_rank")}
    return record


def export(ckpt_path, target, out_dir=None):
    """Write the backbone of `ckpt_path` for `target` into `out_dir` (default RUN/export) with its sha256 and
    the JSON record next to it (file, sha256, how to load it, how it was trained): (record path, record)."""
    if target not in TARGETS:
        raise ZooError(f"--to must be one of {', '.join(TARGETS)}, not '{target}'")
    checkpoint = read_checkpoint(ckpt_path)
    config = complete_config(checkpoint["config"])
    arch = architecture(config.backbone.name)
    reference, head = reference_model(target, arch, ckpt_path)
    backbone = load_backbone(checkpoint)
    whitening, whitening_note = fold_whitening_layer(backbone, target, reference, head)
    changes = check_target(target, arch, reference, backbone, ckpt_path)
    state_dict = float32(backbone.state_dict())
    inputs = data_spec(config.data)
    mean, std = list(inputs.mean), list(inputs.std)

    name = f"{arch}-{target}"
    if target == "detectron2":
        file_name = f"{name}.pkl"
        data = pickle.dumps(to_detectron2(state_dict))
        how_to_load = [f"MODEL.WEIGHTS {file_name}", *detectron2_options(arch, mean, std)]
    else:
        from safetensors.torch import save

        file_name = f"{name}.safetensors"
        data = save(state_dict, metadata={"format": "pt"})
        how_to_load = [*load_lines(target, arch, head, changes, whitening), "from safetensors.torch import load_file",
                       f"model.load_state_dict(load_file({file_name!r}), strict=True)"]
    sha256 = hashlib.sha256(data).hexdigest()
    out_dir = Path(out_dir) if out_dir else run_folder(ckpt_path) / "export"
    atomic_write_bytes(out_dir / file_name, data)
    atomic_write_bytes(out_dir / f"{file_name}.sha256", f"{sha256}  {file_name}\n".encode())
    record = {
        "file": file_name,
        "sha256": sha256,
        "target": target,
        "architecture": arch,
        "tensors": len(state_dict),
        "feature_dim": backbone.num_features,
        "stem": "small-image" if changes else "standard",
        "stem_changes": changes,  # what to set on the target's model before loading
        "whitening_layer": whitening_note,  # None: the backbone has none
        "load": how_to_load,
        "input": {"crop_size": max(group.size for group in inputs.views), "mean": mean, "std": std},
        "trained": training_record(checkpoint, ckpt_path),
    }
    write_json(out_dir / f"{name}.json", record)
    return out_dir / f"{name}.json", record


# ---- timm's Hugging Face Hub layout ------------------------------------------------------------
def hub_token(repo):
    """The user's Hugging Face token, or one `error:` line saying how to log in (before anything is written)."""
    try:
        from huggingface_hub import get_token
    except ImportError:
        raise ZooError("--push needs huggingface_hub: pip install -e '.[hub]'") from None
    token = get_token()
    if not token:
        raise ZooError(f"--push {repo}: not logged in to the Hugging Face Hub (run `hf auth login` or set HF_TOKEN)")
    return token


def eval_input(data_cfg):
    """timm's data config of the zoo's evaluation transform: resize to size / crop_pct, centre-crop size."""
    data = data_spec(data_cfg)
    return {"input_size": (3, data.image_size, data.image_size), "crop_pct": 1 / data.eval_resize_ratio,
            "interpolation": data.eval_interpolation, "mean": data.mean, "std": data.std}


def evaluation_table(run_dir):
    """The run's evaluations beside the paper's numbers, as zoo.report prints them (a few of its columns)."""
    shown = ["protocol", "k-NN", "top-1", "top-5", "target top-1", "Δ top-1", "target source"]
    runs, _ = find_runs(run_dir)  # the runs left out are not this checkpoint's
    rows = report_rows(runs, load_targets(), run_dir.resolve())
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    return "\n".join(lines + ["| " + " | ".join(row[COLUMNS.index(c)] for c in shown) + " |" for row in rows])


def model_card(checkpoint, ckpt_path, arch, backbone, data_input):
    """README.md: timm's model card (front matter, details, usage) with the run's evaluations and provenance."""
    from timm.models._hub import generate_readme

    config, record = checkpoint["config"], training_record(checkpoint, ckpt_path)
    recipe = config.get("recipe") or {}
    run_dir = run_folder(ckpt_path)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    details = {
        "Model Type": "Image feature backbone (self-supervised pretraining, no classifier)",
        "Method": record["method"]["name"],
        "Recipe": f"{recipe['name']}: {recipe.get('title', '')}" if recipe.get("name") else "none (a run with its own settings)",
        "Dataset": record["dataset"],
        "Epochs": f"{summary.get('epochs', '?')} of {record['max_epochs']}",
        "Global batch": record["global_batch_size"],
        "Optimizer": ", ".join(f"{k} {v}" for k, v in record["optimizer"].items() if v is not None),
        "Seed": record["seed"],
        "Params (M)": round(sum(p.numel() for p in backbone.parameters()) / 1e6, 2),
        "Features": backbone.num_features,
        "Image size": data_input["input_size"][1],
    }
    name = f"{arch}.{record['method']['name']}_{record['dataset']}"
    usage = """```python
import timm
model = timm.create_model('hf-hub:<repo>', pretrained=True)  # or 'local-dir:<folder>'
config = timm.data.resolve_data_config({}, model=model)
transform = timm.data.create_transform(**config)
features = model(transform(image).unsqueeze(0))  # (1, num_features)
```"""
    text = generate_readme({"description": f"{arch} pretrained with {record['method']['name']} by the zoo "
                            f"(self-supervised, {record['dataset']}); the backbone without projector or classifier.",
                            "details": details, "usage": usage, "tags": ["image-feature-extraction", "timm", "self-supervised"],
                            "license": "other"},  # the weights' licence is their owner's to state (their data's terms apply)
                           name, task_name="image-feature-extraction")
    if summary:
        text += f"\n## Evaluation (this run; the paper's number where the zoo has one)\n{evaluation_table(run_dir)}\n"
    provenance = summary.get("provenance")
    if provenance:
        kept = {k: provenance.get(k) for k in ("zoo", "versions", "accelerator", "devices", "nodes", "precision", "training",
                                              "wall_seconds", "command")}
        text += f"\n## Provenance\n```json\n{json.dumps(kept, indent=2)}\n```\n"
    return text


def export_hf(ckpt_path, out_dir=None, push=None):
    """timm's hub folder for the backbone of `ckpt_path` (config.json, model.safetensors, README.md), checked
    to load back with timm strictly; uploaded to `push` (a Hub repo id) when given: (folder, record)."""
    import timm
    from timm.models._hub import save_for_hf

    token = hub_token(push) if push else None
    checkpoint = read_checkpoint(ckpt_path)
    config = complete_config(checkpoint["config"])
    arch = architecture(config.backbone.name)
    backbone = load_backbone(checkpoint)
    if whitening_layer(backbone) is not None:
        raise ZooError(f"{ckpt_path}: the backbone ends in a whitening layer (backbone.whitening_layer), which timm's hub "
                       "config cannot describe: export it with --to timm, which folds the layer into a Linear and names it")
    model_args = getattr(backbone, "_model_args", {})
    changes = stem_changes(backbone, timm_model(arch, **model_args))
    if changes:
        raise ZooError(f"{ckpt_path}: {arch} has the small-image stem ({'; '.join(changes)}), which timm's hub config cannot "
                       "describe (timm would build the standard stem): export it with --to timm, which names the modules to set")
    check_target("timm", arch, timm_model(arch, **model_args), backbone, ckpt_path)
    data_input = eval_input(config.data)
    out_dir = Path(out_dir) if out_dir else run_folder(ckpt_path) / "export" / f"{arch}-hf"
    # timm's default pretrained_cfg describes its own supervised weights (tag, license, paper, url): keep what
    # describes the architecture, name these weights, and let the data config describe their input
    backbone.pretrained_cfg = {k: v for k, v in backbone.pretrained_cfg.items() if k in ARCHITECTURE_CFG}
    backbone.pretrained_cfg["tag"] = f"{config.method.name}_{config.data.name}"
    save_for_hf(backbone.float().eval(), out_dir, safe_serialization=True, data_config=dict(data_input))
    (out_dir / "README.md").write_text(model_card(checkpoint, ckpt_path, arch, backbone, data_input), encoding="utf-8")
    reloaded = timm.create_model(f"local-dir:{out_dir.resolve()}", pretrained=True)  # timm loads strictly
    check_state_dict(reloaded.state_dict(), shapes(backbone), f"{out_dir}", "the exported backbone")
    record = {"folder": str(out_dir), "architecture": arch, "files": ["config.json", "model.safetensors", "README.md"]}
    if push:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()  # its retry warnings would bury the one error line below
        try:
            api = HfApi(token=token)
            repo = api.create_repo(push, exist_ok=True).repo_id
            api.upload_folder(repo_id=repo, folder_path=str(out_dir), commit_message=f"{arch} from the zoo ({ckpt_path})")
        except Exception as err:  # noqa: BLE001 (no network, a rejected token, another's repo: huggingface_hub's many types)
            raise ZooError(f"--push {push}: {str(err).splitlines()[0]} (the folder {out_dir} is written; push it again "
                           "once the Hub is reachable)") from None
        record["repo"] = repo
    return out_dir, record


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m zoo.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by main_pretrain.py")
    parser.add_argument("--to", required=True, choices=TARGETS, help="the library to load the backbone into")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/export; --to hf: <run>/export/<arch>-hf)")
    parser.add_argument("--push", metavar="REPO", help="--to hf: upload the folder to this Hugging Face Hub repo (logged in)")
    args = parser.parse_args(argv)
    if args.push and args.to != "hf":
        parser.error("--push goes with --to hf")
    return args


@exit_on_user_error
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.to == "hf":
        folder, record = export_hf(args.ckpt, args.out, args.push)
        print(f"wrote {folder}: {', '.join(record['files'])} (timm's Hugging Face Hub layout)")
        print(f"load it with: timm.create_model('local-dir:{folder.resolve()}', pretrained=True)")
        if record.get("repo"):
            print(f"pushed to https://huggingface.co/{record['repo']}: timm.create_model('hf-hub:{record['repo']}', pretrained=True)")
        return
    record_path, record = export(args.ckpt, args.to, args.out)
    print(f"wrote {record_path.parent / record['file']} ({record['tensors']} tensors, sha256 {record['sha256']})")
    if record["stem_changes"]:
        print(f"note: the backbone has the small-image stem; set {'; '.join(record['stem_changes'])} before loading")
    if record["whitening_layer"]:
        print(f"note: the whitening layer: {record['whitening_layer']}")
    print("detectron2 options:" if args.to == "detectron2" else "load it with:")
    print("\n".join("    " + line for line in record["load"]))
    print(f"how it was trained: {record_path}")


if __name__ == "__main__":
    main()
