"""Research studies on the benchmark (not product code): each answers a stated question with the
package's own tasks and registry. Run them from the repository root as
``python -m experiments.NAME``; see experiments/README.md."""
