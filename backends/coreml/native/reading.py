"""Opening a Core ML model for reading: which kind it is, checked before anything is converted.

``open_coreml`` tells an ML Program package from a NeuralNetwork ``.mlmodel`` and refuses, with one
clear message, what cannot be read: a compiled ``.mlmodelc`` bundle, a directory that is not an
mlpackage, a package whose spec names weights that are not there, a spec coremltools cannot parse.
``numpy_dtype`` is the one table from MIL's element types to numpy's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unframe.backends.coreml.native._loading import coremltools, quiet_stderr
from unframe.backends.coreml.native.package import SPEC_FILE, WEIGHTS_DIR, is_mlpackage
from unframe.shared_ir.errors import BadInputError, UnsupportedError

FRAMEWORK = "coreml"

#: The model types whose layers the frontend reads (``Model.WhichOneof("Type")``).
NEURAL_NETWORK_TYPES = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")
#: The pipeline model types; they import where every stage does (``frontends/coreml/pipeline.py``).
PIPELINE_TYPES = ("pipeline", "pipelineClassifier", "pipelineRegressor")
#: The newest Core ML specification version read (10: iOS26/macOS26, the newest coremltools 9
#: knows). A newer spec may hold fields this protobuf schema silently drops, so it is refused.
NEWEST_SPEC_VERSION = 10

#: MIL element type names (``types.builtin_to_string``) and the numpy types that hold them.
_MIL_NUMPY = {
    "fp16": np.float16,
    "fp32": np.float32,
    "fp64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
}


@dataclass
class CoreMLSource:
    """A Core ML model opened for reading.

    Attributes:
        kind: ``"mlprogram"`` or one of ``NEURAL_NETWORK_TYPES``.
        spec: the ``Model`` protobuf.
        program: the MIL ``Program`` (ML Programs only), read by coremltools' milproto reader.
    """

    kind: str
    spec: Any
    program: Any = None


def open_coreml(path: Path) -> CoreMLSource:
    """Reads the spec (and for an ML Program the MIL program) of the model at ``path``.

    Raises:
        BadInputError: a compiled bundle, a directory that is not an mlpackage, a missing weight
            file, a spec that does not parse.
        UnsupportedError: a model type the frontend does not read (tree ensembles...), or a
            specification version newer than ``NEWEST_SPEC_VERSION``.
    """
    where = str(path)
    if path.suffix.lower() == ".mlmodelc" or (path.is_dir() and (path / "coremldata.bin").exists()):
        raise BadInputError(
            "is a compiled Core ML bundle (.mlmodelc), which holds no readable spec",
            path=where, framework=FRAMEWORK,
            hint="convert the .mlmodel or .mlpackage it was compiled from",
        )  # fmt: skip
    if path.is_dir():
        if not is_mlpackage(path) or not (path / SPEC_FILE).is_file():
            raise BadInputError(
                f"is a directory but not an mlpackage (no Manifest.json naming {SPEC_FILE})",
                path=where, framework=FRAMEWORK,
            )  # fmt: skip
    elif not path.is_file():
        raise BadInputError("does not exist", path=where, framework=FRAMEWORK)
    spec = _parse_spec(path)
    check_spec_version(spec, where)
    kind = spec.WhichOneof("Type")
    if kind == "mlProgram":
        return CoreMLSource("mlprogram", spec, load_program(path, spec))
    if kind in NEURAL_NETWORK_TYPES or kind in PIPELINE_TYPES:
        return CoreMLSource(kind, spec)
    raise UnsupportedError(
        f"is a Core ML {kind or 'empty'} model (spec version {spec.specificationVersion}); the "
        "coreml frontend reads ML Programs, NeuralNetwork, NeuralNetworkClassifier and "
        "NeuralNetworkRegressor models, and pipelines of them",
        path=where, framework=FRAMEWORK,
    )  # fmt: skip


def check_spec_version(spec: Any, where: str, what: str = "") -> None:
    """Refuses a spec (``what``: which part, e.g. a pipeline stage) newer than the frontend reads.

    Raises:
        UnsupportedError: ``specificationVersion`` above ``NEWEST_SPEC_VERSION`` (exit 3).
    """
    version = int(spec.specificationVersion)
    if version > NEWEST_SPEC_VERSION:
        raise UnsupportedError(
            f"{what + ' ' if what else ''}has Core ML specification version {version}; the coreml "
            f"frontend reads versions 1 to {NEWEST_SPEC_VERSION} (iOS26/macOS26 and older)",
            path=where, framework=FRAMEWORK,
            hint="save the model for an older minimum deployment target, or update unframe",
        )  # fmt: skip


def numpy_dtype(mil_dtype: Any) -> np.dtype | None:
    """The numpy type of a MIL element type (a ``types`` builtin), None where numpy has none."""
    coremltools()
    from coremltools.converters.mil.mil import types

    found = _MIL_NUMPY.get(types.builtin_to_string(mil_dtype))
    return None if found is None else np.dtype(found)


def mil_type_name(mil_dtype: Any) -> str:
    """MIL's name of an element type (``fp32``, ``int32``...), for messages."""
    coremltools()
    from coremltools.converters.mil.mil import types

    return str(types.builtin_to_string(mil_dtype))


def _parse_spec(path: Path) -> Any:
    ct = coremltools()
    spec_path = path / SPEC_FILE if path.is_dir() else path
    try:
        with quiet_stderr():
            spec = ct.proto.Model_pb2.Model()
            spec.ParseFromString(spec_path.read_bytes())
    except Exception as error:  # noqa: BLE001 - any parse failure is a malformed file
        raise BadInputError(
            f"is not a Core ML model spec that parses ({type(error).__name__}: {error})",
            path=str(path), framework=FRAMEWORK,
        ) from error  # fmt: skip
    return spec


def _weight_files(program: Any) -> set[str]:
    """The weight files (base names) that the program's constants read."""
    names: set[str] = set()

    def walk_value(value: Any) -> None:
        if value.HasField("blobFileValue"):
            names.add(value.blobFileValue.fileName.split("/")[-1])

    def walk_block(block: Any) -> None:
        for operation in block.operations:
            for value in operation.attributes.values():
                walk_value(value)
            for argument in operation.inputs.values():
                for binding in argument.arguments:
                    if binding.HasField("value"):
                        walk_value(binding.value)
            for inner in operation.blocks:
                walk_block(inner)

    for function in program.functions.values():
        for block in function.block_specializations.values():
            walk_block(block)
    return names


def load_program(path: Path, spec: Any, what: str = "the ML Program") -> Any:
    """The MIL program of ``spec`` (a package's model, or an ML Program stage of its pipeline),
    its weights read from the package at ``path``.

    Raises:
        BadInputError: ``path`` is no package, or a weight file the program reads is missing.
    """
    where = str(path)
    if not path.is_dir():
        raise BadInputError(
            f"{what} reads its weights from an .mlpackage, and this is a lone spec file",
            path=where, framework=FRAMEWORK, hint="convert the whole .mlpackage directory",
        )  # fmt: skip
    missing = sorted(
        name for name in _weight_files(spec.mlProgram) if not (path / WEIGHTS_DIR / name).is_file()
    )
    if missing:
        raise BadInputError(
            f"{what} reads weights from {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not in {WEIGHTS_DIR}",
            path=where, framework=FRAMEWORK,
            hint="copy the whole .mlpackage directory, weights included",
        )  # fmt: skip
    return _load_program(path, spec)


def _load_program(path: Path, spec: Any) -> Any:
    coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load

    try:
        with quiet_stderr():
            return load(
                spec,
                specification_version=spec.specificationVersion,
                file_weights_dir=str(path / WEIGHTS_DIR),
            )
    except (ValueError, TypeError, NotImplementedError, KeyError, RuntimeError) as error:
        raise BadInputError(
            f"coremltools cannot read its ML Program ({type(error).__name__}: {error})",
            path=str(path), framework=FRAMEWORK,
        ) from error  # fmt: skip
