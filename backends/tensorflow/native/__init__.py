"""What both directions of the TensorFlow adapter share: importing TF quietly, the SavedModel
directory's files, the dtype table and the runtime that calls a SavedModel's signature.

Importing this package does not import tensorflow (``import_tensorflow`` does, on first use), so
the adapter can tell a SavedModel directory apart without it. The frontend imports only this
package of the backend.
"""

from __future__ import annotations

from unframe.backends.tensorflow.native.names import signature_key, signature_keys, tf_name
from unframe.backends.tensorflow.native.saved_model import (
    INPUT_NAMES_ATTR,
    NHWC_INPUTS_ATTR,
    NHWC_OUTPUTS_ATTR,
    OUTPUT_NAMES_ATTR,
    SAVED_MODEL_FILES,
    SERVING_SIGNATURE,
    is_saved_model_dir,
    run_saved_model,
)
from unframe.backends.tensorflow.native.tf_import import import_tensorflow, tf_dtype

__all__ = [
    "INPUT_NAMES_ATTR",
    "NHWC_INPUTS_ATTR",
    "NHWC_OUTPUTS_ATTR",
    "OUTPUT_NAMES_ATTR",
    "SAVED_MODEL_FILES",
    "SERVING_SIGNATURE",
    "import_tensorflow",
    "is_saved_model_dir",
    "run_saved_model",
    "signature_key",
    "signature_keys",
    "tf_dtype",
    "tf_name",
]
