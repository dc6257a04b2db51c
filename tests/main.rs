//! End-to-end tests of the `shardc` package.

mod propagate;
