//! Fuzz target `params`: the body is `imgsearch::fuzzing::params` (replayed on stable by the
//! library's tests over `fuzz/corpus/params` and `fuzz/regressions/params`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgsearch::fuzzing::params(data));
