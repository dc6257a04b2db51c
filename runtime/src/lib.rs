//! The runtime (to come): CPU kernels for every op, the reference executor (one device, the
//! oracle), the device-mesh executor with its communicator backends (threads; MPI and CUDA+NCCL
//! behind cargo features).
//!
//! The runtime executes what it is given; it never decides a sharding.

#![forbid(unsafe_code)]
