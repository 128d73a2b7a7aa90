"""The offline engine: runs the Pulumi program on the mock runtime and turns what it registers
into records, rendered manifests, a summary, and (later) policy reports and diffs."""
