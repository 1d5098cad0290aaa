//! One module per command.

pub(crate) mod analyze;
pub(crate) mod validate;
