//! Command-line options shared by the `imgsearch` command and the evaluation binaries, so
//! that every program builds instances and runs models the same way: the extractor of a
//! new instance ([`ExtractorArgs`]) and the runtime that executes models ([`RuntimeArgs`]).

mod extractor;
mod runtime;

pub use extractor::ExtractorArgs;
pub use runtime::RuntimeArgs;
