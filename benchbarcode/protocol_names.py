"""The evaluation protocols' names, in a module that imports nothing (the CLI's parser and the
leaderboard read them without loading the data layer). What each protocol does:
:mod:`benchbarcode.data.protocols` (the data step) and each task's ``under(protocol)``."""

DEFAULT_PROTOCOL = "benchbarcode"
REFERENCE_PROTOCOL = "reference"  # the BIOSCAN-5M / BarcodeMAE reference code's
PROTOCOLS = (DEFAULT_PROTOCOL, REFERENCE_PROTOCOL)
