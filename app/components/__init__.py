"""Views: take predictions/tensors/tokens, return plotly figures or render widgets; never load models."""
