//! HTTP/1.1 over a byte stream.
