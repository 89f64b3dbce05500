"""The SavedModel directory unframe writes and the runtime that calls its signature."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.inputs import align_feeds
from unframe.shared_ir.output import is_regular_file

SERVING_SIGNATURE = "serving_default"
#: Entries a SavedModel directory holds (TF writes the first four; Keras may add its metadata).
SAVED_MODEL_FILES = frozenset(
    {
        "saved_model.pb",
        "saved_model.pbtxt",
        "variables",
        "assets",
        "fingerprint.pb",
        "keras_metadata.pb",
    }
)
#: tf.Module attributes holding the ONNX graph's input and output names, in graph order (a
#: signature's inputs and outputs are maps: their order is not kept by TF itself).
INPUT_NAMES_ATTR = "onnx_input_names"
OUTPUT_NAMES_ATTR = "onnx_output_names"
#: Signature keys of the inputs and outputs ``--layout nhwc`` made channels-last (NHWC where the
#: ONNX graph has NCHW); unframe feeds and reads them in ONNX's layout.
NHWC_INPUTS_ATTR = "onnx_nhwc_inputs"
NHWC_OUTPUTS_ATTR = "onnx_nhwc_outputs"


def is_saved_model_dir(path: Path) -> bool:
    """Whether ``path`` is a directory that holds a SavedModel and nothing else."""
    try:
        if path.is_symlink() or not path.is_dir():
            return False
        entries = list(path.iterdir())
        if not any(entry.name in ("saved_model.pb", "saved_model.pbtxt") for entry in entries):
            return False
        for entry in entries:
            if entry.name not in SAVED_MODEL_FILES or entry.is_symlink():
                return False
            if entry.is_dir():
                if entry.name not in ("variables", "assets"):
                    return False
            elif not is_regular_file(entry):
                return False
        return True
    except OSError:
        return False


def run_saved_model(
    path: Path, inputs: Mapping[str, np.ndarray], signature: str = SERVING_SIGNATURE
) -> dict[str, np.ndarray]:
    """Loads the SavedModel at ``path`` and calls ``signature`` on ``inputs``.

    Inputs are matched by name, else by position in the order unframe recorded (or the
    signature's own); outputs come back in the recorded ONNX order where there is one.
    """
    from unframe.backends.tensorflow.native.tf_import import import_tensorflow

    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError) as error:
        raise BadInputError(f"{path}: not a loadable SavedModel: {error}") from None
    signatures = loaded.signatures
    if signature not in signatures:
        raise BadInputError(
            f"{path}: the SavedModel has no signature {signature!r} "
            f"(it has: {', '.join(signatures) or 'none'})"
        )
    function = signatures[signature]
    input_order = _recorded(loaded, INPUT_NAMES_ATTR)
    output_order = _recorded(loaded, OUTPUT_NAMES_ATTR)
    specs = function.structured_input_signature[1]
    keys = list(specs)
    if input_order is not None and len(input_order) == len(keys):
        sanitized = [_key_for(name, keys, position) for position, name in enumerate(input_order)]
        fed = align_feeds(input_order, inputs)
        feeds = {key: fed[name] for key, name in zip(sanitized, input_order, strict=True)}
    else:
        feeds = align_feeds(keys, inputs)
    nhwc_inputs = set(_recorded(loaded, NHWC_INPUTS_ATTR) or ())
    nhwc_outputs = set(_recorded(loaded, NHWC_OUTPUTS_ATTR) or ())
    tensors = {
        key: tf.convert_to_tensor(
            np.asarray(array).transpose(0, 2, 3, 1) if key in nhwc_inputs else np.asarray(array),
            dtype=specs[key].dtype,
        )
        for key, array in feeds.items()
    }
    result = function(**tensors)
    outputs = {
        key: tensor.numpy().transpose(0, 3, 1, 2) if key in nhwc_outputs else tensor.numpy()
        for key, tensor in result.items()
    }
    if output_order is not None:
        ordered = {}
        for position, name in enumerate(output_order):
            key = name if name in outputs else _key_for(name, list(outputs), position)
            ordered[name] = outputs[key]
        return ordered
    return outputs


def _recorded(loaded: object, attr: str) -> list[str] | None:
    variable = getattr(loaded, attr, None)
    if variable is None:
        return None
    return [item.decode() for item in variable.numpy().tolist()]


def _key_for(name: str, keys: list[str], position: int) -> str:
    """The signature key a recorded ONNX name was sanitized to (same rule as the backend)."""
    from unframe.backends.tensorflow.native.names import tf_name

    for key in keys:
        if key == name:
            return key
    candidate = tf_name(name)
    matches = [key for key in keys if key == candidate or key.startswith(candidate + "_")]
    return matches[0] if len(matches) == 1 else keys[position]
