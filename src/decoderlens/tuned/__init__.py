"""Tuned DecoderLens: trained affine translators per encoder layer, and their training."""
