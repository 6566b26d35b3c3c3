"""Evaluate, export (with verification), predict and plot.

``evaluate.evaluate``, ``exporter.export_run``, ``predict.predict`` and ``plot.plot_run`` are the entry points;
``formats`` is the one table of export formats and quantizations; ``runtime`` loads a model or artifact in
its own runtime (Keras, SavedModel, LiteRT, ONNX Runtime). Importing this package does not import TensorFlow.
"""
