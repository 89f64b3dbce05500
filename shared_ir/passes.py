"""The common pass pipeline every conversion runs between a frontend and a backend.

Built from onnx_ir's passes and onnxscript's optimizer rather than our own rewrites.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import onnx_ir as ir
import onnx_ir.passes.common as common
from onnx_ir.passes import PassManager


def cleanup_passes() -> PassManager:
    """Identity and dead-code elimination, then a topological sort; cheap and always safe."""
    return PassManager(
        [
            common.IdentityEliminationPass(),
            common.RemoveUnusedNodesPass(),
            common.RemoveUnusedFunctionsPass(),
            common.TopologicalSortPass(),
        ]
    )


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    # onnxscript and onnx_ir log a line per skipped rewrite; a converter's CLI must stay quiet.
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def optimize(model: ir.Model, *, fold_constants: bool = True) -> ir.Model:
    """Folds constants (onnxscript's optimizer), drops identities and dead nodes, in place.

    Graph inputs, outputs and their names are kept: scripts and validation match on them.
    """
    with _quiet_loggers():
        if fold_constants:
            from onnxscript import optimizer

            # Folding is an optimization: a model the optimizer cannot handle passes unchanged.
            try:
                optimizer.optimize_ir(
                    model, num_iterations=2, onnx_shape_inference=False, inline=True
                )
            except Exception:  # noqa: BLE001
                pass
        cleanup_passes()(model)
    return model


def infer_shapes(model: ir.Model, *, data_prop: bool = False) -> ir.Model:
    """ONNX shape and type inference, filling in the IR values' types and shapes in place.

    onnx_ir's pass hands onnx the graph without the weights' data, so this neither copies nor
    serializes large models. Inference is best effort: where it fails, the model is unchanged.
    """
    with _quiet_loggers():
        try:
            common.ShapeInferencePass(check_type=False, strict_mode=False, data_prop=data_prop)(
                model
            )
        except Exception:  # noqa: BLE001 - a partial model still converts
            pass
    return model
