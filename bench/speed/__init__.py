"""Speed: latency, throughput, int8, ONNX, attention/explain paths, training and GPU speed (bench/README.md)."""
