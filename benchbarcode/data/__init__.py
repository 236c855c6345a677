"""Data layer: readers, cleaning, splits, the embedded simulator, export. Knows no model."""

from benchbarcode.data.cleaning import SPLITS
from benchbarcode.data.dataset import BarcodeDataset, describe, load_barcodes

__all__ = ["SPLITS", "BarcodeDataset", "describe", "load_barcodes"]
