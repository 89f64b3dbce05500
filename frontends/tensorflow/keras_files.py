"""Keras files (``.keras`` of Keras 3, legacy ``.h5`` of Keras 2) -> a concrete TF function.

Nothing in a file runs: before any loader sees it, its model config is read as JSON and a
``Lambda`` layer carrying Python bytecode is refused, and the weights of a ``.keras`` archive are
read with pickling off. Keras 3 then loads with ``safe_mode=True``; a legacy ``.h5`` Keras 3
cannot read is loaded by tf_keras (the model's metadata says which loader read it). The model is
traced through ``tf.function(...).get_concrete_function`` with an explicit input signature (not
tf2onnx's ``from_keras``, which fails on every Keras 3 ``Sequential``).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unframe.frontends.tensorflow.quiet import import_tensorflow, quiet_tensorflow
from unframe.shared_ir.errors import BadInputError, UnsupportedError
from unframe.shared_ir.inputs import InputSpec

FRAMEWORK = "tensorflow"
KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")

_LAMBDA_HINT = (
    "rebuild the model in Python with that step written as Keras ops or a registered layer "
    "(keras.saving.register_keras_serializable), save it again, or pass the model object to "
    "unframe.frontends.tensorflow.from_keras"
)

_CUSTOM_HINT = (
    "load the model in Python with those classes imported (registered with "
    "keras.saving.register_keras_serializable), then export a SavedModel (model.export('dir')) "
    "and convert that directory, or pass the model object to unframe.frontends.tensorflow.from_keras"
)

# -- reading configs without running anything -------------------------------------------------


def _layers(config: Any) -> Iterator[Mapping[str, Any]]:
    """Every serialized object (``{"class_name": ..., "config": ...}``) in a Keras config."""
    if isinstance(config, Mapping):
        if "class_name" in config:
            yield config
        for value in config.values():
            yield from _layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from _layers(value)


def refuse_code(config: Any, path: Path) -> None:
    """Refuses a model whose config holds Python bytecode (a ``Lambda`` of a Python function).

    Raises:
        UnsupportedError: naming the first such layer, why it is refused and how to rebuild it.
    """
    for layer in _layers(config):
        layer_config = layer.get("config")
        if layer.get("class_name") != "Lambda" or not isinstance(layer_config, Mapping):
            continue
        function = layer_config.get("function")
        carries_code = isinstance(function, Mapping) and function.get("class_name") in (
            "__lambda__",
            "function",
        )
        # Keras 2 wrote (bytecode, defaults, closure) with function_type "lambda".
        carries_code = carries_code or layer_config.get("function_type") == "lambda"
        if carries_code:
            raise UnsupportedError(
                f"Lambda layer {layer_config.get('name', '?')!r} holds Python bytecode; loading it "
                "would run code from the file, which unframe never does",
                path=str(path),
                framework=FRAMEWORK,
                hint=_LAMBDA_HINT,
            )


#: Keras 3's markers for values that are not classes (tensors, arrays, slices, lambdas).
_NOT_A_CLASS_PREFIX = "__"
_KERAS_MODULES = ("keras", "tf_keras")


def custom_classes(config: Any) -> list[str]:
    """The classes a Keras 3 config names outside Keras itself, as ``Class (layer 'name')``.

    Keras 3 writes ``module`` on every serialized object: ``keras.layers`` and the like for its
    own, the user's module (or null) and a ``registered_name`` for a custom class. Nothing is
    imported: this only reads the JSON, so the message can name what the file needs.
    """
    found: dict[str, None] = {}
    if isinstance(config, Mapping):
        # A custom loss or metric there does not stop loading: files load with compile=False.
        config = {key: value for key, value in config.items() if key != "compile_config"}
    for item in _layers(config):
        class_name = item.get("class_name")
        if not isinstance(class_name, str) or class_name.startswith(_NOT_A_CLASS_PREFIX):
            continue
        if "module" not in item:
            continue  # a Keras 2 config: no module recorded, nothing to tell built-ins apart
        module = item.get("module")
        if isinstance(module, str) and module.split(".")[0] in _KERAS_MODULES:
            continue
        registered = item.get("registered_name")
        item_config = item.get("config")
        name = item_config.get("name") if isinstance(item_config, Mapping) else None
        if class_name == "function" and isinstance(item_config, str):
            class_name, name = f"function {item_config}", None
        where = [f"registered as {registered!r}"] if registered and registered != class_name else []
        if item is config:
            where.append("the model itself")
        elif isinstance(name, str):
            where.append(f"layer {name!r}")
        found[f"{class_name} ({', '.join(where)})" if where else class_name] = None
    return list(found)


def _keras_archive_config(path: Path) -> Any:
    """The ``config.json`` of a ``.keras`` zip; its weights checked to need no unpickling."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise BadInputError(
                    "not a Keras 3 archive: it has no config.json",
                    path=str(path),
                    hint="save the model with model.save('model.keras')",
                )
            config = json.loads(archive.read("config.json"))
            for name in sorted(names):
                if name.endswith(".npz"):
                    _refuse_pickled_weights(archive, name, path)
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInputError(
            f"not a readable Keras 3 archive (.keras is a zip with config.json): {error}",
            path=str(path),
        ) from None
    return config


def _refuse_pickled_weights(archive: zipfile.ZipFile, name: str, path: Path) -> None:
    with archive.open(name) as stream:
        try:
            with np.load(stream, allow_pickle=False) as weights:
                for key in weights.files:
                    weights[key]  # noqa: B018 - reading is the check: object arrays raise
        except ValueError as error:
            if "allow_pickle" not in str(error):
                raise BadInputError(
                    f"{name} in the archive is not readable weights: {error}", path=str(path)
                ) from None
            raise BadInputError(
                f"{name} in the archive holds pickled Python objects; unframe never unpickles "
                "weights, as unpickling can run any code",
                path=str(path),
                hint="save the weights as numeric arrays (model.save('model.keras') does)",
            ) from None


def _h5_config(path: Path) -> Any:
    """The ``model_config`` attribute of a legacy ``.h5`` file (None for a weights-only file)."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            raw = file.attrs.get("model_config")
    except OSError as error:
        raise BadInputError(f"not a readable HDF5 file: {error}", path=str(path)) from None
    if raw is None:
        raise BadInputError(
            "this .h5 file holds no model config (weights only?)",
            path=str(path),
            hint="save the whole model (model.save('model.h5')), or rebuild it and save as .keras",
        )
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInputError(
            f"the model config in the file is not JSON: {error}", path=str(path)
        ) from None


# -- loading ----------------------------------------------------------------------------------


def load_keras_file(path: Path) -> tuple[Any, str]:
    """Loads a ``.keras`` or ``.h5`` model safely; returns it and which loader read it.

    Raises:
        UnsupportedError: Python bytecode in the file, or custom objects that cannot be rebuilt.
        BadInputError: the file is not a readable Keras model.
    """
    is_h5 = path.name.lower().endswith(H5_SUFFIXES)
    config = _h5_config(path) if is_h5 else _keras_archive_config(path)
    refuse_code(config, path)
    customs = custom_classes(config)
    import_tensorflow()
    import keras

    try:
        with quiet_tensorflow():
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        return model, f"Keras {keras.__version__} ({path.suffix} file)"
    except Exception as error:  # noqa: BLE001 - the loader's reason is reported below
        if isinstance(error, MemoryError):
            raise
        keras_error: Exception = error
    if is_h5:
        try:
            import tf_keras
        except ImportError:
            tf_keras = None
        if tf_keras is not None:
            try:
                with quiet_tensorflow():
                    model = tf_keras.models.load_model(str(path), compile=False, safe_mode=True)
                return model, f"tf_keras {tf_keras.__version__} (legacy Keras 2 .h5 file)"
            except Exception as error:  # noqa: BLE001 - both loaders' reasons are reported
                if isinstance(error, MemoryError):
                    raise
    raise _load_error(keras_error, path, customs)


def _load_error(error: Exception, path: Path, customs: list[str]) -> Exception:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if customs and "safe_mode" not in str(error):
        # Keras' own message names the outermost model it failed on ("Sequential could not be
        # deserialized"), not the class it lacked; the config says which ones those are.
        return UnsupportedError(
            f"the model uses custom classes whose code is not in the file: {', '.join(customs)}; "
            "unframe never imports code to rebuild them",
            path=str(path),
            framework=FRAMEWORK,
            hint=_CUSTOM_HINT,
        )
    if "safe_mode" in str(error) or "arbitrary code" in str(error):
        return UnsupportedError(
            f"the model holds Python code that Keras' safe mode refuses to load: {text}",
            path=str(path),
            framework=FRAMEWORK,
            hint=_LAMBDA_HINT,
        )
    if "Could not locate" in str(error) or "Unknown layer" in str(error):
        return UnsupportedError(
            f"the model uses custom objects unframe cannot rebuild: {text}",
            path=str(path),
            framework=FRAMEWORK,
            hint=_CUSTOM_HINT,
        )
    return BadInputError(
        f"Keras cannot load the model: {type(error).__name__}: {text}", path=str(path)
    )


# -- tracing ----------------------------------------------------------------------------------


def keras_signature(
    model: Any, specs: Mapping[str, InputSpec], dynamic: Mapping[str, tuple[int, ...]]
) -> tuple[list[Any], list[str]]:
    """The model's input ``TensorSpec``s (from its Input layers, ``--input`` overriding shapes)."""
    tf = import_tensorflow()
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        if not specs:
            raise BadInputError(
                "the model has no Input layers (a subclassed model), so its input shapes are unknown",
                framework=FRAMEWORK,
                hint="give them with --input NAME=D1,D2,...:DTYPE (? for a dynamic dim)",
            )
        return [
            tf.TensorSpec(spec.shape, tf.as_dtype(spec.dtype or np.float32), name=name)
            for name, spec in specs.items()
        ], list(specs)
    names = [_input_name(tensor, i) for i, tensor in enumerate(inputs)]
    unknown = sorted(set(specs) - set(names))
    if unknown:
        raise BadInputError(
            f"--input names {', '.join(unknown)}, which the model does not take",
            framework=FRAMEWORK,
            hint=f"inputs: {', '.join(names)}",
        )
    signature = []
    for name, tensor in zip(names, inputs, strict=True):
        shape = list(tensor.shape)
        spec = specs.get(name)
        if spec is not None and spec.shape is not None:
            shape = [dim if isinstance(dim, int) else None for dim in spec.shape]
        for axis in dynamic.get(name, ()):
            shape[axis] = None
        dtype = spec.dtype if spec is not None and spec.dtype is not None else tensor.dtype
        signature.append(tf.TensorSpec(shape, tf.as_dtype(dtype), name=name))
    return signature, names


def _input_name(tensor: Any, index: int) -> str:
    name = str(getattr(tensor, "name", "") or "")
    return name.split(":")[0] or f"input_{index}"


def output_names(model: Any, count: int) -> list[str]:
    """The layer names that make the model's outputs (Keras' own output names), deduplicated."""
    names: list[str] = []
    for i, tensor in enumerate(list(getattr(model, "outputs", None) or [])[:count]):
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history[0], "name", None) if history else None
        names.append(str(layer) if layer else f"output_{i}")
    names += [f"output_{i}" for i in range(len(names), count)]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name] - 1}")
    return unique


def trace_keras(model: Any, signature: list[Any]) -> Any:
    """``model`` in inference mode as one concrete function of ``signature``."""
    tf = import_tensorflow()

    def serve(*tensors: Any) -> Any:
        return model(tensors[0] if len(tensors) == 1 else list(tensors), training=False)

    with quiet_tensorflow():
        return tf.function(serve).get_concrete_function(*signature)


def run_keras_file(path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Loads a Keras file as :func:`load_keras_file` does and calls the model (inference mode).

    ``inputs`` are keyed by the names the frontend gives the IR's inputs (matched by position
    where they differ); outputs are keyed by the IR's output names, in the model's order.
    """
    from unframe.shared_ir.inputs import align_feeds

    tf = import_tensorflow()
    model, _ = load_keras_file(path)
    tensors = list(getattr(model, "inputs", None) or [])
    names = [_input_name(tensor, i) for i, tensor in enumerate(tensors)] or list(inputs)
    feeds = align_feeds(names, inputs)
    arrays = [tf.constant(np.asarray(feeds[name])) for name in names]
    with quiet_tensorflow():
        result = model(arrays[0] if len(arrays) == 1 else arrays, training=False)
    flat = [np.asarray(tensor) for tensor in tf.nest.flatten(result)]
    return dict(zip(output_names(model, len(flat)), flat, strict=True))
