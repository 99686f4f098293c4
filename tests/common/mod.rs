#![allow(dead_code)] // each test crate uses its own part of this module
pub mod mint;
pub mod scenario;
pub mod world;
