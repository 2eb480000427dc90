//! Blobs in an S3 server.
