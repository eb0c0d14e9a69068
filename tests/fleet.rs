//! Placeholder; filled in by the source step.
