"""dlkit: train, evaluate and export Keras models from one YAML file."""

__version__ = "0.1.0"
