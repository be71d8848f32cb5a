//! The coordination service (in progress).
