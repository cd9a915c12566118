"""Inference: sliding-window prediction with trained models and export back to the original image geometry.

``nnunet.inference.predictor.nnUNetPredictor`` is the entry point, a facade over ``coercion`` (what programs hand
it, converted and checked), ``items`` (a call's cases as preprocessed items) and ``fold_runners`` (the folds of
the loaded model as runners, per backend). The pieces live in ``engine`` (the sliding window for every runner,
in memory and in slabs; ``torch_engine`` for torch), ``tiling`` (tile positions, importance map), ``cases`` (one
case after another), ``export`` / ``slab_export`` (logits -> files) and ``data_iterators`` (preprocessing of the
inputs in background processes). documentation/inference.md describes them.
"""
