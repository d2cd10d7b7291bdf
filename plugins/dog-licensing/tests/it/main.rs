//! The dog-licensing plugin's stories, driven through the shared `TestHost` (one test binary).

mod common;
mod incidents;
mod kpis;
mod licence;
mod registration;
