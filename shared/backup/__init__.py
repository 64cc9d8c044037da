"""The backup engine, used by the backup worker, the CLI and the benchmarks."""
