pub mod read;
pub mod repo;
