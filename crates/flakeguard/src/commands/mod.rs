//! One module per command.

pub(crate) mod analyze;
pub(crate) mod jobs;
pub(crate) mod migrate;
pub(crate) mod policy;
pub(crate) mod quarantine;
pub(crate) mod rescore;
pub(crate) mod run;
pub(crate) mod seed;
pub(crate) mod serve;
pub(crate) mod token;
pub(crate) mod upload;
pub(crate) mod validate;
