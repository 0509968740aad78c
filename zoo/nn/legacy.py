"""State-dict names of the layout before components, and today's: the key map that lets checkpoints written by
that layout load (Lightning resume, `load_from_checkpoint`, `zoo.checkpoint`); and the harness's key map, from
the layout where the method's keys had no "method." prefix.

Then an EMA target was two attributes of the method and a feature queue two buffers of it:
  target_backbone.*  -> target.backbone.*      (zoo.nn.EMA named "target")
  target_projector.* -> target.projector.*
  queue              -> queue.keys             (zoo.nn.FeatureQueue named "queue")
  queue_ptr          -> queue.ptr
"""

OLD_PREFIXES = {"target_backbone.": "target.backbone.", "target_projector.": "target.projector."}
OLD_NAMES = {"queue": "queue.keys", "queue_ptr": "queue.ptr"}


def new_key(key, prefix=""):
    """Today's name of state-dict key `key` of a module at `prefix` (`key` itself where it is not an old name)."""
    if not key.startswith(prefix):
        return key
    local = key[len(prefix):]
    if local in OLD_NAMES:
        return prefix + OLD_NAMES[local]
    for old, new in OLD_PREFIXES.items():
        if local.startswith(old):
            return prefix + new + local[len(old):]
    return key


def renamed_keys(state_dict, prefix=""):
    """`state_dict` with the old layout's names under `prefix` renamed to today's (a new dict, order kept)."""
    return {new_key(key, prefix): value for key, value in state_dict.items()}


def rename_old_layout_keys(module, state_dict, prefix, *_):
    """A load_state_dict pre-hook (torch's signature): renames the old layout's keys in place, before the
    module's children read theirs."""
    for key in [key for key in state_dict if new_key(key, prefix) != key]:
        state_dict[new_key(key, prefix)] = state_dict.pop(key)


# The harness (zoo.train.harness.Pretrainer) holds the method at "method." and its own probe at "classifier.";
# before the method was apart from its harness, the method's keys had no prefix.
METHOD_PREFIX = "method."
HARNESS_PREFIXES = ("classifier.",)


def harness_key(key, prefix=""):
    """Today's harness name of key `key` of a checkpoint of the layout before the harness ("backbone.*" ->
    "method.backbone.*"); `key` itself where it is already today's or the harness's own (the probe)."""
    if not key.startswith(prefix):
        return key
    local = key[len(prefix):]
    if local.startswith(METHOD_PREFIX) or local.startswith(HARNESS_PREFIXES):
        return key
    return prefix + METHOD_PREFIX + local


def rename_harness_layout_keys(module, state_dict, prefix, *_):
    """The harness's load_state_dict pre-hook (torch's signature): the method's keys of a checkpoint of the layout
    before the harness move under "method." (the method's own pre-hook then renames older names)."""
    for key in [key for key in state_dict if harness_key(key, prefix) != key]:
        state_dict[harness_key(key, prefix)] = state_dict.pop(key)


def method_state(state_dict):
    """The method's part of a harness state dict of any layout, under today's names without the "method." prefix."""
    keys = {harness_key(key): value for key, value in state_dict.items()}
    return renamed_keys({key[len(METHOD_PREFIX):]: value for key, value in keys.items() if key.startswith(METHOD_PREFIX)})
