//! Blobs in files.
