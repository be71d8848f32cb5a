//! Durable storage engine (filled in by the coordination and node issues).
