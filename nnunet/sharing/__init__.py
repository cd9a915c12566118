"""Sharing trained models: export to a zip, install a zip (from a file or a URL) into ``nnUNet_results``."""
