//! Store and read blobs on a Morsa system.
