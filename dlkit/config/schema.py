"""The config schema: the one description of a dlkit config (pydantic v2, ``extra="forbid"``).

The JSON Schema (``dlkit config schema``), the rendered config and the docs are generated from these
models. Component parameters (layers, optimizers, losses, ...) are Keras' own argument names; their
names and keyword arguments are checked against the live Keras signatures by ``dlkit.models.registry``,
not here, because this package never imports TensorFlow.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from dlkit.config.suggest import did_you_mean

RUN_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
EXPORT_FORMATS = ("saved_model", "tflite", "keras", "onnx")
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
STRATEGIES = ("none", "mirrored", "multi_worker_mirrored", "tpu")
CLIP_ARGS = ("clipnorm", "clipvalue", "global_clipnorm")

# strict: YAML already types numbers, so `epochs: true` or `epochs: "10"` is a mistake, not a 1 or a 10.
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
NonNegativeFloat = Annotated[float, Field(ge=0, strict=True)]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def _bare_to_component(value: Any) -> Any:
    """``"adam"`` -> ``{"type": "adam"}`` so a component may be a bare string."""
    return {"type": value} if isinstance(value, str) else value


def config_error(message: str, key: str | None = None, suggestion: str | None = None) -> PydanticCustomError:
    """A validation error the loader renders as-is, located at sub-key ``key`` of the model that raised it."""
    return PydanticCustomError("dlkit", "{message}", {"message": message, "key": key, "suggestion": suggestion})


_IMPORT_PATH_RE = re.compile(r"[.:/\\()\s]")


def _check_name(value: str, allow_empty: bool = False) -> str:
    """A component ``type`` is a registered name, never an import path or expression."""
    if not value.strip() and not allow_empty:
        raise config_error("component type must not be empty")
    if _IMPORT_PATH_RE.search(value):
        tail = value.strip().rsplit(".", 1)[-1]
        keras_path = value.startswith(("keras.", "tf.keras.", "tensorflow.keras.")) and tail.isidentifier()
        raise config_error(
            f"import paths are not allowed; name a registered component (got '{value}')",
            suggestion=tail if keras_path else None,
        )
    return value


class Component(BaseModel):
    """A Keras object by name plus its Keras constructor arguments, verbatim.

    ``type`` is a Keras class name (``Conv2D``) or a snake_case alias (``conv2d``); every other key is
    passed to the constructor and checked against its signature before anything is built.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Keras class name or snake_case alias, e.g. Conv2D or conv2d.")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        return _bare_to_component(value)

    @field_validator("type")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return _check_name(value)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The bare-string form (`- Flatten`, `optimizer: adam`) is valid too; say so to editors.
        schema = handler(core_schema)
        return {"anyOf": [{"type": "string", "description": "A component that takes no arguments."}, schema]}

    @property
    def kwargs(self) -> dict[str, Any]:
        """The Keras constructor arguments (everything but ``type``)."""
        return dict(self.model_extra or {})


class LayerSpec(Component):
    """One entry of ``model.layers`` (or of a block).

    Either a Keras layer (``type`` + arguments; optional ``name`` and ``inputs`` for graph models) or a
    use of a named block: ``{block: NAME, repeat: N}``.
    """

    type: str = Field("", description="Keras layer class name; empty when `block` is used.")
    name: str | None = Field(None, description="Layer name, referenced by later layers' `inputs`.")
    inputs: list[str] | None = Field(
        None, description="Names of earlier layers (or `input`) this layer takes; default: the previous layer."
    )
    block: str | None = Field(None, description="Name of a block from `model.blocks` to insert here.")
    repeat: PositiveInt = Field(1, description="How many times to repeat the block. Defaults to 1.")

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_input(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("type")
    @classmethod
    def _plain_name(cls, value: str) -> str:  # empty allowed when `block` is set
        return _check_name(value, allow_empty=True)

    @model_validator(mode="after")
    def _type_or_block(self) -> LayerSpec:
        if self.block is None and not self.type:
            for key in self.model_extra or {}:
                near = did_you_mean(key, ["type", "block"])
                if near:
                    raise config_error(
                        "a layer needs a `type` (a Keras layer name) or a `block`", key=key, suggestion=near
                    )
            raise ValueError("a layer needs a `type` (a Keras layer name) or a `block`")
        if self.block is not None and self.type:
            raise ValueError("give either `type` or `block`, not both")
        if self.block is None and self.repeat != 1:
            raise ValueError("`repeat` applies to `block` entries only")
        return self


class Regularization(Strict):
    """Default kernel regularizer for layers that have a kernel and set none."""

    l1: NonNegativeFloat = Field(0.0, description="L1 factor. Defaults to 0.")
    l2: NonNegativeFloat = Field(0.0, description="L2 factor. Defaults to 0.")


class ModelConfig(Strict):
    """The network: an input shape and a list of Keras layers (sequential or graph)."""

    input_shape: list[Annotated[int, Field(ge=1)] | None] = Field(
        description="Shape of one sample, without the batch dimension, e.g. [32, 32, 3]."
    )
    layers: list[LayerSpec] = Field(min_length=1, description="Keras layers, in order.")
    outputs: list[str] | None = Field(None, description="Names of the output layers. Defaults to the last layer.")
    blocks: dict[str, list[LayerSpec]] = Field(
        default_factory=dict, description="Reusable named layer lists, used as `{block: NAME, repeat: N}`."
    )
    regularization: Regularization | None = Field(None, description="Default kernel regularizer (l1/l2).")
    input_dtype: str | None = Field(
        None, description="dtype of the model input (e.g. string for text/categorical). Defaults to float32."
    )

    @field_validator("outputs", mode="before")
    @classmethod
    def _one_output(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class OptimizerConfig(Component):
    """A Keras optimizer by name with its own arguments (``learning_rate``, ``clipnorm``, ``weight_decay`` ...).

    ``learning_rate`` may be a number or a schedule component such as
    ``{type: CosineDecay, initial_learning_rate: 0.001, decay_steps: 1000}``.
    """

    learning_rate: float | Component | None = Field(None, description="A positive number or a schedule.")
    clipnorm: float | None = Field(None, gt=0, strict=True, description="Clip each gradient to this norm.")
    clipvalue: float | None = Field(None, gt=0, strict=True, description="Clip each gradient element to [-v, v].")
    global_clipnorm: float | None = Field(
        None, gt=0, strict=True, description="Clip all gradients to this global norm."
    )

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _lr(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("learning_rate must be a positive number or a schedule")
        if isinstance(value, str):
            try:  # a quoted number ('1e-3') is a number, not a schedule named '1e-3'
                value = float(value)
            except ValueError:
                return value
        if isinstance(value, int | float):
            if value <= 0:
                raise ValueError("learning_rate must be greater than 0")
            return float(value)
        return value

    @model_validator(mode="after")
    def _one_clip(self) -> OptimizerConfig:
        given = [name for name in CLIP_ARGS if getattr(self, name) is not None]
        if len(given) > 1:
            raise config_error(
                f"give only one of clipnorm, clipvalue, global_clipnorm (got {', '.join(given)})", key=given[-1]
            )
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        """All constructor arguments except ``type`` (schedules left as components)."""
        out: dict[str, Any] = {
            k: getattr(self, k) for k in ("learning_rate", *CLIP_ARGS) if getattr(self, k) is not None
        }
        out.update(self.model_extra or {})
        return out


class FeatureSpec(Strict):
    """One feature of a TFRecord example."""

    dtype: Literal["float32", "int64", "string"] = Field("float32", description="Stored dtype.")
    shape: list[int] = Field(default_factory=list, description="Fixed shape; [] for a scalar.")


class DataConfig(Strict):
    """Where the data comes from and how it is split, preprocessed and batched."""

    source: str = Field(
        "synthetic",
        description="keras:NAME | sklearn:NAME | csv | npz | images | tfrecord | tfds:NAME | synthetic",
    )
    path: str | None = Field(
        None, description="Local archive (keras:), folder (images) or file, when one file holds all."
    )
    train: str | None = Field(None, description="Training file or folder, used as given.")
    validation: str | None = Field(None, description="Validation file or folder, used as given (no re-splitting).")
    test: str | None = Field(None, description="Test file or folder, used as given.")
    label: str | None = Field(None, description="csv: the label column; tfrecord: the label feature.")
    features: list[str] | None = Field(None, description="csv: feature columns. Defaults to every other column.")
    x_key: str = Field("x", description="npz: name of the features array. Defaults to x.")
    y_key: str = Field("y", description="npz: name of the labels array. Defaults to y.")
    image_size: list[PositiveInt] | None = Field(None, description="images: [height, width] to resize to.")
    color_mode: Literal["rgb", "grayscale", "rgba"] = Field("rgb", description="images: channels. Defaults to rgb.")
    feature_spec: dict[str, FeatureSpec] | None = Field(None, description="tfrecord: features to parse.")
    samples: PositiveInt = Field(1024, description="synthetic: number of samples. Defaults to 1024.")
    num_classes: PositiveInt | None = Field(
        None, description="Number of classes. Defaults to the model's output width."
    )
    validation_split: float = Field(
        0.1, ge=0, lt=1, strict=True, description="Held-out fraction when no validation set is given."
    )
    test_split: float = Field(
        0.0, ge=0, lt=1, strict=True, description="Held-out test fraction when no test set is given."
    )
    batch_size: PositiveInt = Field(32, description="Global batch size. Defaults to 32.")
    shuffle: bool = Field(True, description="Reshuffle the training set every epoch (seeded). Defaults to true.")
    cache: bool | Literal["auto"] = Field("auto", description="Cache the decoded data in memory. Defaults to auto.")
    nan_policy: Literal["error", "drop"] = Field("error", description="What to do with rows holding NaN/Inf.")
    preprocessing: list[Component] = Field(
        default_factory=list, description="Keras preprocessing layers; part of the saved and exported model."
    )
    augmentation: list[Component] = Field(default_factory=list, description="Keras augmentation layers; training only.")

    @model_validator(mode="after")
    def _splits(self) -> DataConfig:
        if self.validation_split + self.test_split >= 1:
            raise ValueError("validation_split + test_split must be less than 1")
        return self


class DistributionConfig(Strict):
    """Which tf.distribute strategy to train under."""

    strategy: Literal["none", "mirrored", "multi_worker_mirrored", "tpu"] = Field(
        "none", description="Defaults to none."
    )
    devices: list[str] | None = Field(None, description="mirrored: devices to use, e.g. ['/gpu:0', '/gpu:1'].")


class TrainingConfig(Strict):
    """How to train."""

    epochs: PositiveInt = Field(10, description="Number of epochs. Defaults to 10.")
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = Field(
        "auto", description="auto: bf16 on Ampere+ GPUs/TPUs, fp16 on 7.x GPUs, float32 on CPU."
    )
    deterministic: bool = Field(False, description="Also enable TensorFlow op determinism. Defaults to false.")
    steps_per_execution: PositiveInt | Literal["auto"] = Field("auto", description="Batches per graph call.")
    jit_compile: bool | Literal["auto"] = Field("auto", description="XLA. auto: Keras' default (off on CPU).")
    gradient_monitor: bool | Literal["auto"] = Field(
        "auto", description="Log gradient norm and clipped fraction. auto: on when clipping is set."
    )
    nan_recovery: int = Field(
        0, ge=0, strict=True, description="Retries from the last good checkpoint with a lower LR on NaN."
    )
    class_weight: dict[int, float] | Literal["balanced"] | None = Field(None, description="Per-class loss weights.")
    distribution: DistributionConfig = Field(default_factory=DistributionConfig)


ExportFormat = Literal["saved_model", "tflite", "keras", "onnx"]
Quantization = Literal["none", "dynamic", "float16", "int8"]


def _default_formats() -> list[ExportFormat]:
    return ["saved_model", "tflite"]


def _default_quantize() -> list[Quantization]:
    return ["none"]


class ExportConfig(Strict):
    """What ``dlkit export`` produces by default and how strictly it verifies."""

    formats: list[ExportFormat] = Field(default_factory=_default_formats, description="Artifact formats.")
    quantize: list[Quantization] = Field(default_factory=_default_quantize, description="TFLite quantizations.")
    calibration_samples: PositiveInt = Field(500, description="int8 calibration samples from the training split.")
    verify: bool = Field(True, description="Run every artifact on the test split and compare. Defaults to true.")
    tolerance: float = Field(1e-4, gt=0, description="Max |output difference| for float artifacts.")
    max_metric_drop: float = Field(
        0.01, ge=0, description="Largest metric loss allowed for quantized artifacts (0.01 = 1 point)."
    )

    @field_validator("formats", "quantize", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Config(Strict):
    """A whole dlkit experiment."""

    name: str = Field("run", description="Run name: letters, digits, '.', '_' and '-'.")
    seed: int = Field(
        42, ge=0, strict=True, description="Seeds Python, NumPy, TensorFlow and the data order. Defaults to 42."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    optimizer: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(type="adam"))
    loss: Component
    metrics: list[Component] = Field(default_factory=list)
    callbacks: list[Component] = Field(default_factory=list)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @field_validator("name")
    @classmethod
    def _run_name(cls, value: str) -> str:
        if not RUN_NAME_RE.match(value) or value in (".", ".."):
            raise ValueError("run name must be a plain name: letters, digits, '.', '_' and '-', no path separators")
        return value
