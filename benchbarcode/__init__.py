"""benchbarcode: a benchmark suite for DNA-barcode encoders."""

__version__ = "0.1.0"
