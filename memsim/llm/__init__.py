"""LLM inference: model presets, prefill/decode operator expansion, roofline, footprint,
KV-cache memory management and KV-cache policies."""
from .model import FfnSpec, ModelSpec, load_model, model_from_data, model_names

__all__ = ["FfnSpec", "ModelSpec", "load_model", "model_from_data", "model_names"]
