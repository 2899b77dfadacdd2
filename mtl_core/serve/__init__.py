"""Serving: the Predictor (every task from one forward pass), int8 quantization, saliency, ONNX export."""
