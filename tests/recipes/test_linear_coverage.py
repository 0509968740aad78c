"""Every pretraining recipe's linear evaluation: its own scripts/linear/<dataset>/<recipe>.sh, or the linear script
that evaluates it under another name (`recipe.linear_script`: a variant evaluated as its base, as the tables' rows run
it), or why it has none (`recipe.no_linear_script`: no zoo protocol is the paper's); and the protocol that script runs
is the one the recipe's targets name, and the one the tables run on it.

Parses the yaml files only: a config's `defaults: [/experiment/<base>, _self_]` merges its base under it as Hydra
does (dicts key by key, the rest replaced); test_the_parse_agrees_with_hydra composes a few to show it.
"""

import functools

import pytest
import yaml
from omegaconf import OmegaConf
from recipe_helpers import EXPERIMENTS, PRETRAIN_RECIPES, REPO, SCRIPTS, compose_linear, compose_recipe

from zoo.config import LinearConfig
from zoo.names import LinearProtocol

LINEAR_EXPERIMENTS = REPO / "zoo" / "configs" / "linear" / "experiment"
TABLES = REPO / "zoo" / "configs" / "tables"
LINEAR_SCRIPTS = frozenset(str(p.relative_to(SCRIPTS / "linear"))[:-3] for p in SCRIPTS.glob("linear/*/*.sh"))


def merge(base, over):
    """Hydra's merge of a config over its base: dicts key by key, anything else replaced."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


@functools.cache
def read(folder, name):
    """<folder>/<name>.yaml over the bases its defaults list names (/experiment/<dataset>/<recipe>)."""
    config = yaml.safe_load((folder / f"{name}.yaml").read_text())
    merged = {}
    for entry in config.pop("defaults", []):
        if isinstance(entry, str) and entry.startswith("/experiment/"):
            merged = merge(merged, read(folder, entry.removeprefix("/experiment/")))
    return merge(merged, config)


def protocol(script):
    """(linear.name, linear.protocol) of scripts/linear/<script>.sh's config."""
    linear = read(LINEAR_EXPERIMENTS, script).get("linear", {})
    return linear.get("name", LinearConfig.name), linear.get("protocol", LinearConfig.protocol.value)


def linear_script_of(recipe, linear_scripts=LINEAR_SCRIPTS):
    """The linear script that evaluates `recipe`: its own name's, else its recipe.linear_script; None if neither."""
    return recipe if recipe in linear_scripts else read(EXPERIMENTS, recipe)["recipe"].get("linear_script")


def what_to_add(recipe):
    return (f"{recipe}: no linear script and no reason. Add scripts/linear/{recipe}.sh with its protocol "
            f"zoo/configs/linear/experiment/{recipe}.yaml (and its rows in tests/recipe_helpers.py LINEAR and "
            f"tests/recipes/test_linear_values.py OFFICIAL), or in the recipe block of zoo/configs/experiment/{recipe}.yaml "
            "`linear_script: <dataset>/<name>` (another recipe's linear script evaluates it) or "
            "`no_linear_script: '<why no zoo protocol is the paper's>'`")


def coverage_problems(recipes, linear_scripts):
    """What is wrong with each recipe's linear evaluation, given the linear scripts that exist."""
    problems = []
    for recipe in recipes:
        block = read(EXPERIMENTS, recipe)["recipe"]
        other, reason = block.get("linear_script"), block.get("no_linear_script")
        if recipe in linear_scripts:
            if other or reason:
                problems.append(f"{recipe}: has scripts/linear/{recipe}.sh, so its recipe states neither linear_script "
                                f"nor no_linear_script (it states {other or reason!r})")
        elif other and reason:
            problems.append(f"{recipe}: states both linear_script ({other}) and no_linear_script; keep one")
        elif other:
            if other not in linear_scripts:
                problems.append(f"{recipe}: linear_script {other} is not a script: add scripts/linear/{other}.sh or name "
                                "an existing one")
            elif other.split("/")[0] != recipe.split("/")[0]:
                problems.append(f"{recipe}: linear_script {other} evaluates another data set")
        elif not (isinstance(reason, str) and reason.strip()):
            problems.append(what_to_add(recipe))
    return problems


# ---- tests ----------------------------------------------------------------------------------------
def test_every_pretraining_recipe_has_a_linear_script_or_says_why():
    problems = coverage_problems(PRETRAIN_RECIPES, LINEAR_SCRIPTS)
    assert not problems, "\n".join(problems)


def test_the_check_fails_when_a_linear_script_is_removed():
    """Without scripts/linear/cifar10/wmse.sh: the recipe is reported with what to add, and so is the variant
    evaluated by it (cifar10/wmse_2views)."""
    already = coverage_problems(PRETRAIN_RECIPES, LINEAR_SCRIPTS)
    problems = [p for p in coverage_problems(PRETRAIN_RECIPES, LINEAR_SCRIPTS - {"cifar10/wmse"}) if p not in already]
    assert problems == [what_to_add("cifar10/wmse"),
                        ("cifar10/wmse_2views: linear_script cifar10/wmse is not a script: add scripts/linear/cifar10/wmse.sh "
                         "or name an existing one")]
    assert "no_linear_script" in problems[0] and "zoo/configs/linear/experiment/cifar10/wmse.yaml" in problems[0]


def test_every_linear_script_has_its_protocol_config():
    configs = {str(p.relative_to(LINEAR_EXPERIMENTS))[:-5] for p in LINEAR_EXPERIMENTS.rglob("*.yaml")}
    assert configs == set(LINEAR_SCRIPTS)


def test_the_targets_name_the_protocol_of_the_recipes_linear_script():
    """A target's protocol (beside the online probe, COCO transfer and semi-supervised finetuning, which other
    scripts run) is the one the recipe's linear script runs; a recipe without a script names none of the zoo's."""
    zoo_protocols = {protocol(script)[0] for script in LINEAR_SCRIPTS if protocol(script)[1] != LinearProtocol.finetune.value}
    finetune = {protocol(script)[0] for script in LINEAR_SCRIPTS if protocol(script)[1] == LinearProtocol.finetune.value}
    problems = []
    for recipe in PRETRAIN_RECIPES:
        block = read(EXPERIMENTS, recipe)["recipe"]
        named = {t["protocol"] for t in block.get("targets") or []} - {"online"} - finetune
        named = {p for p in named if not p.startswith("coco_")}
        script = linear_script_of(recipe)
        if script:
            if named - {protocol(script)[0]}:
                problems.append(f"{recipe}: its targets name {sorted(named)}, its linear script {script} runs {protocol(script)[0]}")
        elif named & zoo_protocols:
            problems.append(f"{recipe}: its targets name {sorted(named & zoo_protocols)}, which the zoo's linear scripts run: "
                            f"add scripts/linear/{recipe}.sh (or linear_script) instead of no_linear_script")
    assert not problems, "\n".join(problems)


def test_the_tables_run_each_recipe_with_its_linear_script():
    """A table row's linear protocols (its finetuning ones aside) are the recipe's linear script."""
    problems = []
    for table in sorted(TABLES.glob("*/*.yaml")):
        for row in yaml.safe_load(table.read_text()).get("rows", []):
            for script in row.get("protocols", []):
                if protocol(script)[1] != LinearProtocol.finetune.value and script != linear_script_of(row["recipe"]):
                    problems.append(f"{table.relative_to(TABLES)}: {row['recipe']} runs {script}, its recipe's linear script "
                                    f"is {linear_script_of(row['recipe'])}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("recipe", ["imagenet/intl_m_ep200", "stl10/byol_whitening", "imagenet/simdino_vit_base",
                                    "cifar100/cwrgp_2views", "imagenet/mix_bt"])
def test_the_parse_agrees_with_hydra(recipe):
    """Inherited recipe blocks (two levels for cifar100/cwrgp_2views) and a linear config over another's, composed as
    the scripts compose them; composing also checks linear_script / no_linear_script against zoo.config.RecipeConfig."""
    composed = OmegaConf.to_container(compose_recipe([f"experiment={recipe}"]).recipe)
    parsed = read(EXPERIMENTS, recipe)["recipe"]
    for key in ("linear_script", "no_linear_script", "no_target", "targets", "protocol"):
        assert (composed[key] or None) == (parsed.get(key) or None), (recipe, key)
    script = linear_script_of(recipe)
    if script:
        linear = compose_linear([f"experiment={script}"]).linear
        assert (linear.name, getattr(linear.protocol, "value", linear.protocol)) == protocol(script)
