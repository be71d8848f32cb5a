//! A local Morsa cluster of real processes.
