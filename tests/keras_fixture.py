"""The ``keras`` fixture of the TensorFlow tests: Keras 3, imported once per test module after
TensorFlow is imported quietly. A test module imports it after skipping itself without the
tensorflow extra: ``from tests.keras_fixture import keras_fixture`` (the function is named apart
from the fixture so that the tests' ``keras`` parameters shadow no import)."""

from __future__ import annotations

from typing import Any

import pytest

from unframe.frontends.tensorflow.quiet import import_tensorflow


@pytest.fixture(scope="module", name="keras")
def keras_fixture() -> Any:
    import_tensorflow()
    import keras

    return keras
