//! Devices: the only code that reads and writes datagrams.
