"""Models: the registry of bundled models and ``load_model`` (``registry``), what a loaded model is (``base``),
and the loaders: Hugging Face encoders (``hf``), the digits CNN (``digits``), Python modules and ONNX files (``files``).
"""
