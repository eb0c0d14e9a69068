pub mod keys;
pub mod zap;
