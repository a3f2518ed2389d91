//! quota-alert's integration tests, one binary.

mod emf;
mod helpers;
mod lambda;
mod local;
mod moto;
mod start;
