//! The lessons' models and experiments, shared by the programs (`diagnose`,
//! `makemore`) and the peer comparison in `bench-harness`.

pub mod models;
